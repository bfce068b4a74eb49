"""`python -m engine tiny-models`: the tiny random-weight models written where asked."""
from __future__ import annotations

from engine.cli import main


def test_tiny_models_command(tmp_path, capsys):
    assert main(["tiny-models", str(tmp_path / "m"), "--roles", "diffusion"]) == 0
    assert (tmp_path / "m" / "diffusion" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "m" / "diffusion" / "tokenizer" / "vocab.json").is_file()
