"""The stop-motion loop: one edited photo per frame, written atomically, resumable.

Planning (main thread, bpy: blender/frames.py ``plan_frames``) turns each frame of the scene's
range into a ``FramePlan`` (frame, edit, output path, key) with the code path every frame goes
through. Running (any thread, no bpy, here) renders only what is needed:

- a frame whose file exists, unchanged since it was written (SHA-256), and whose recorded key
  matches is kept (an interrupted run resumes after its last finished frame; a changed
  trajectory or setting re-renders what changed, and so does a frame file changed since);
- a frame whose key equals an earlier frame's (the object did not move) reuses that file (the
  engine's one rule for equal frames, `engine.transforms.first_occurrences`);
- every file is written to a temporary name and renamed, so a cancel or crash leaves no partial
  file. The keys live in the engine's frame manifest (`engine.output.FrameManifest`, one per
  output folder, frames named by file name) in ``.dh_frames.json`` next to the frames; it never
  deletes a file: the folder is the user's, and frames outside this run's range stay.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from ..engine.transforms import FrameEdit, first_occurrences

# The add-on's frame manifest: dot-named, since the folder is the user's. A file of the format
# that came before FrameManifest (name -> key and hash) is not read: its frames render again.
MANIFEST = ".dh_frames.json"
# Each frame's key (session.frames.frame_key) already covers everything that decides its pixels,
# so the run key only names this key scheme.
RUN_KEY = "dh-addon-frames/1"
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
    out_of_view: dict = field(default_factory=dict)  # frame -> its visibility notes (FrameRenderer.out_of_view)
    note: str = ""  # how the photo was loaded, when worth a line (a rebuilt cache)

    def describe(self):
        text = (f"{len(self.paths)} frames: {len(self.rendered)} rendered, {len(self.reused)} reused "
                f"(object did not move), {len(self.kept)} kept from an earlier run")
        if self.out_of_view:
            text += "; " + ", ".join(f"frame {f}: {'; '.join(n)}" for f, n in sorted(self.out_of_view.items()))
        return text


def _place(path):
    """(folder, file name) of a frame file: its manifest's folder and the frame's label there."""
    return os.path.dirname(path) or ".", os.path.basename(path)


def _manifests(plan):
    """{folder: FrameManifest} of the plan's output folders (created; Blender's frame paths can
    differ in folder): a folder's frames are the plan's files there, named by file name."""
    from ..engine.output import FrameManifest

    folders = {}
    for item in plan:
        folder, name = _place(item.path)
        folders.setdefault(folder, {})[name] = item.key
    manifests = {}
    for folder, keys in folders.items():
        os.makedirs(folder, exist_ok=True)
        manifests[folder] = FrameManifest(folder, RUN_KEY, keys, name=MANIFEST, owns_folder=False)
    return manifests


def run_frames(plan, renderer, progress=None, should_cancel=None, write=None):
    """Render the plan; returns a Summary. Raises CancelledError between frames when asked."""
    from ..engine.errors import CancelledError
    from ..engine.io import atomic_output, save_image

    write = write or save_image
    progress = progress or (lambda stage, step, total: None)
    should_cancel = should_cancel or (lambda: False)
    summary = Summary(paths=[item.path for item in plan])
    manifests = _manifests(plan)
    # resuming also removes the temporaries a killed run left (atomic writes' dot-named files)
    finished = {folder: set(m.resume()) for folder, m in manifests.items()}

    def commit(item, write_file):
        folder, name = _place(item.path)
        manifests[folder].commit(name, [(name, write_file)])  # the writer renames into place

    def copy_of(source):
        def copy(path):
            with atomic_output(path) as tmp:
                shutil.copyfile(source, tmp)
        return copy

    # frames finished by an earlier run are kept (and can be reused); with them first, each
    # pending frame's first occurrence is the file it copies (itself: it is rendered)
    kept = [item for item in plan if _place(item.path)[1] in finished[_place(item.path)[0]]]
    summary.kept = [item.frame for item in kept]
    items = kept + [item for item in plan if item.frame not in summary.kept]
    first = first_occurrences([item.key for item in items])
    pending = list(range(len(kept), len(items)))
    total = len(pending)
    step = 0
    while pending:
        if should_cancel():
            raise CancelledError("stop-motion render cancelled")
        n = pending[0]
        if first[n] != n:  # its first occurrence is kept or came earlier: finished
            commit(items[n], copy_of(items[first[n]].path))
            summary.reused.append(items[n].frame)
            pending.pop(0)
            step += 1
            progress("frames", step, total)
            continue
        # a batch of frames with distinct new content (frames repeating it are reused afterwards)
        batch = [m for m in pending if first[m] == m][:getattr(renderer, "batch_size", 1)]
        images = renderer([items[m].edit for m in batch], progress=None, should_cancel=should_cancel)
        for m, rgb in zip(batch, images):
            b = items[m]
            hidden = renderer.out_of_view(b.edit) if hasattr(renderer, "out_of_view") else []
            if hidden:  # not a failure: the frame renders without them, and the summary says so
                summary.out_of_view[b.frame] = hidden
            commit(b, lambda path, rgb=rgb: write(path, rgb))  # atomic: temporary name, then rename
            summary.rendered.append(b.frame)
            pending.remove(m)
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
