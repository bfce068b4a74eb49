"""`python -m engine prepare` with an object query instead of a mask and estimated depth (tiny
perception models), and its refusal of a mask and a query together."""
from __future__ import annotations

import json

from cli_photo import FAST
from engine.cli import main


def test_prepare_with_object_query_and_estimated_depth(photo, tiny_models_dir, tmp_path, capsys):
    """No --depth and --object instead of --mask: the perception models (tiny, from disk through
    the registry) estimate depth and find the object; candidates are written next to the cache."""
    prep = tmp_path / "prep"
    rc = main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--object", "the box", "--out", str(prep), "--models", str(tiny_models_dir), *FAST])
    assert rc == 0, capsys.readouterr().err
    rows = json.loads((prep / "candidates.json").read_text())
    rows = rows["candidates"] if isinstance(rows, dict) else rows
    assert rows and (prep / "candidate_0.png").is_file()
    assert (prep / "prepared.json").is_file()
    assert "candidate 0" in capsys.readouterr().out


def test_prepare_rejects_mask_and_object_together(photo, tiny_models_dir, tmp_path, capsys):
    rc = main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--mask", str(photo / "mask.png"), "--object", "the box", "--out", str(tmp_path / "p"),
               "--models", str(tiny_models_dir), *FAST])
    assert rc == 2
    assert "either --mask or --object" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
