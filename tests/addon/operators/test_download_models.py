"""Download Models for real: the add-on operator, in a fresh Blender, downloads through the model
registry (the one download path) from a stand-in Hub on 127.0.0.1 (tests/hub_server.py)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import HubServer, repo_with_large_file

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[2]
ROLES = ("diffusion", "depth", "detector", "sam")  # the default pipeline's roles

SCRIPT = r'''
import importlib, json, os, sys
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon, ADDON_MODULE
enable_addon()
deps = importlib.import_module(ADDON_MODULE + ".blender.addon")
jobs = importlib.import_module(ADDON_MODULE + ".session.jobs")
prefs = deps.preferences()
for role in {roles!r}:
    setattr(prefs, role + "_model", "dh-test/" + role)
prefs.sam_model = "dh-test/sam"
system = bpy.context.preferences.system
system.use_online_access = False
try:
    bpy.ops.dh.download_models()
    print("NOT REFUSED")
except RuntimeError as exc:
    print("REFUSED", str(exc).replace("\n", " "))
system.use_online_access = True
stages = []
report = jobs.JobState.report_progress
def record(self, stage, step, total):
    stages.append([stage, step, total])
    report(self, stage, step, total)
jobs.JobState.report_progress = record
print("RESULT", bpy.ops.dh.download_models())
print("STAGES", json.dumps(stages))
os.environ["HF_HUB_OFFLINE"] = "1"
registry = importlib.import_module(ADDON_MODULE + ".engine.registry")
for role in {roles!r}:
    result = registry.verify(role, "dh-test/" + role)
    print("VERIFY", role, result.ok, result.checked_files, result.problems)
'''


def test_download_models_operator(tmp_path, tiny_models_dir):
    repos = {f"dh-test/{role}": tiny_models_dir / role for role in ROLES}
    repos["dh-test/diffusion"], large = repo_with_large_file(tiny_models_dir / "diffusion", tmp_path / "diffusion")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    with HubServer(repos, interrupt={large}) as hub:
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
        result = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(TESTS), roles=ROLES)],
                                capture_output=True, text=True, env=env, timeout=600, cwd=str(tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # online access off in Blender: refused, one clear line, nothing fetched before it was allowed
    assert "REFUSED" in out and "Online access is disabled" in out.split("REFUSED", 1)[1].split("\n")[0]
    assert "RESULT {'FINISHED'}" in out
    stages = json.loads(out.split("STAGES ", 1)[1].split("\n")[0])
    byte_stages = [s for s in stages if "B of" in s[0]]
    assert byte_stages and any(s[0].startswith("diffusion (1/4)") for s in byte_stages)
    assert any(s[1] == s[2] > 20 << 20 for s in byte_stages)  # the large file reported to its end
    for role in ("diffusion", "depth"):  # verified: files present, content hashes equal their blobs
        assert re.search(rf"VERIFY {role} True \d+ \[\]", out), out
    for role in ("detector", "sam"):  # tiny stand-ins lack the real layouts' file names; hashes still hold
        problems = out.split(f"VERIFY {role} ", 1)[1].split("\n")[0]
        assert "content hash" not in problems and "empty" not in problems, problems
    repos_asked = {m.group(1) for _, path, _ in hub.requests
                   for m in [re.match(r"/(?:api/models/)?(dh-test/[a-z]+)/", path)] if m}
    assert repos_asked == {f"dh-test/{role}" for role in ROLES}  # the default roles only, no options
    assert hub.ranges(large)[-1] == f"bytes={10 << 20}-"  # the dropped transfer resumed
