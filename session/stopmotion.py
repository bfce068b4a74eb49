"""The stop-motion loop: one edited photo per frame, written atomically, resumable.

Planning (main thread, bpy: blender/frames.py ``plan_frames``) turns each frame of the scene's
range into a ``FramePlan`` (frame, edit, output path, key) with the code path every frame goes
through. Running (any thread, no bpy, here) renders only what is needed:

- a frame whose file exists, unchanged since it was written (SHA-256), and whose recorded key
  matches is kept (an interrupted run resumes after its last finished frame; a changed
  trajectory or setting re-renders what changed, and so does a frame file changed since);
- a frame whose key equals an earlier frame's (the object did not move) reuses that file;
- every file is written to a temporary name and renamed, so a cancel or crash leaves no partial
  file. The keys live in ``.dh_frames.json`` next to the frames.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

from ..engine.transforms import FrameEdit

MANIFEST = ".dh_frames.json"
MOVIE_NAME = "stop_motion.mp4"


@dataclass
class FramePlan:
    frame: int
    edit: FrameEdit
    path: str
    key: str


@dataclass
class Summary:
    rendered: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    out_of_view: dict = field(default_factory=dict)  # frame -> 1-based objects it renders without

    def describe(self):
        text = (f"{len(self.paths)} frames: {len(self.rendered)} rendered, {len(self.reused)} reused "
                f"(object did not move), {len(self.kept)} kept from an earlier run")
        if self.out_of_view:
            text += "; " + ", ".join(f"frame {f}: object {'/'.join(map(str, n))} out of view"
                                     for f, n in sorted(self.out_of_view.items()))
        return text


class Manifest:
    """frame file name -> {"key": what made it, "sha256": its bytes}, per output folder; saved
    atomically after every frame. A file whose bytes changed since (edited, replaced, damaged by
    another program) no longer matches and is rendered again; so are the entries of manifests
    written before the hashes (a plain key)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, MANIFEST)
        try:
            with open(self.path) as f:
                self.entries = {name: e for name, e in dict(json.load(f)).items() if isinstance(e, dict)}
        except (OSError, ValueError, TypeError):
            self.entries = {}

    def matches(self, path, key):
        from ..engine.output import file_digest

        entry = self.entries.get(os.path.basename(path))
        return (entry is not None and entry.get("key") == key and os.path.isfile(path)
                and entry.get("sha256") == file_digest(path))

    def record(self, path, key):
        from ..engine.output import file_digest, write_text

        self.entries[os.path.basename(path)] = {"key": key, "sha256": file_digest(path)}
        write_text(self.path, json.dumps(self.entries, indent=0, sort_keys=True))


def _copy_atomic(source, destination):
    from ..engine.io import atomic_output

    with atomic_output(destination) as tmp:
        shutil.copyfile(source, tmp)


def run_frames(plan, renderer, progress=None, should_cancel=None, write=None):
    """Render the plan; returns a Summary. Raises CancelledError between frames when asked."""
    from ..engine.errors import CancelledError
    from ..engine.io import save_image
    from ..engine.output import clean_temporaries

    write = write or save_image
    progress = progress or (lambda stage, step, total: None)
    should_cancel = should_cancel or (lambda: False)
    summary = Summary(paths=[item.path for item in plan])
    manifests = {}
    done = {}  # key -> a finished file with that content

    def manifest_for(path):
        directory = os.path.dirname(path) or "."
        if directory not in manifests:
            os.makedirs(directory, exist_ok=True)
            clean_temporaries(directory)  # what a killed earlier run left (atomic writes' temporaries)
            manifests[directory] = Manifest(directory)
        return manifests[directory]

    for item in plan:  # frames finished by an earlier run are kept (and can be reused)
        if manifest_for(item.path).matches(item.path, item.key):
            summary.kept.append(item.frame)
            done.setdefault(item.key, item.path)
    pending = [item for item in plan if item.frame not in summary.kept]
    total = len(pending)
    step = 0
    while pending:
        if should_cancel():
            raise CancelledError("stop-motion render cancelled")
        item = pending[0]
        if item.key in done:
            _copy_atomic(done[item.key], item.path)
            manifest_for(item.path).record(item.path, item.key)
            summary.reused.append(item.frame)
            pending.pop(0)
            step += 1
            progress("frames", step, total)
            continue
        # a batch of frames with distinct new content (frames repeating it are reused afterwards)
        batch, keys = [], set()
        for candidate in pending:
            if len(batch) >= getattr(renderer, "batch_size", 1):
                break
            if candidate.key not in done and candidate.key not in keys:
                batch.append(candidate)
                keys.add(candidate.key)
        images = renderer([b.edit for b in batch], progress=None, should_cancel=should_cancel)
        for b, rgb in zip(batch, images):
            hidden = renderer.out_of_view(b.edit) if hasattr(renderer, "out_of_view") else []
            if hidden:  # not a failure: the frame renders without them, and the summary says so
                summary.out_of_view[b.frame] = hidden
            write(b.path, rgb)  # atomic: temporary name, then rename
            manifest_for(b.path).record(b.path, b.key)
            done[b.key] = b.path
            summary.rendered.append(b.frame)
            pending.remove(b)
            step += 1
            progress("frames", step, total)
    return summary


def default_movie_path(first_frame):
    """The movie of a stop-motion run when none is named: next to its frames."""
    return os.path.join(os.path.dirname(first_frame), MOVIE_NAME)


# --- farm nodes: one node renders a frame ---------------------------------------------------------
FRAME_CLAIM_STALE_SECONDS = 300  # a claim not renewed this long (its node crashed) is taken over


def frame_claim_path(frame_path):
    """The claim file of a frame file: dot-named, next to it (shared storage of a farm)."""
    directory, name = os.path.split(os.path.abspath(frame_path))
    return os.path.join(directory, f".{name}.dh-claim")


def _finished_frame(frame_path):
    """The frame file as uint8 (H, W, 3) when another node has finished it (not a placeholder), else None."""
    try:
        if os.path.getsize(frame_path) == 0:
            return None
        from ..engine.io import load_image
        from ..engine.images import to_uint8

        return to_uint8(load_image(frame_path))
    except Exception:  # noqa: BLE001 - missing, a placeholder, or being written: not finished
        return None


def claim_frame(frame_path, should_cancel=None, poll=0.2, stale_after=FRAME_CLAIM_STALE_SECONDS):
    """Before a farm node renders ``frame_path``: ("claimed", claim file) when this node renders it,
    or ("finished", uint8 frame) when another node that claimed it first has finished it (Blender's
    placeholder check is not atomic, so two nodes can start the same frame: the second waits and
    hands Blender the first one's pixels instead of computing the edit again). A claim whose node
    stopped renewing it is taken over. Raises CancelledError when ``should_cancel()``."""
    import time

    from ..engine.errors import CancelledError
    from ..engine.output import claim_is_stale, try_claim

    claim = frame_claim_path(frame_path)
    os.makedirs(os.path.dirname(claim), exist_ok=True)  # Blender makes it only when it saves
    while True:
        if not os.path.exists(claim) or claim_is_stale(claim, stale_after):
            done = _finished_frame(frame_path)
            if done is not None:
                return "finished", done
            if try_claim(claim, what=f"rendering {frame_path}", stale_after=stale_after):
                return "claimed", claim
        if should_cancel is not None and should_cancel():
            raise CancelledError("cancelled while another node renders this frame")
        time.sleep(poll)


def release_frame(frame_path):
    """Drop this node's claim on ``frame_path`` (after Blender wrote it, or when the frame failed)."""
    from ..engine.output import release_claim

    release_claim(frame_claim_path(frame_path))
