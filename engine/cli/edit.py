"""``python -m engine edit``: edit a prepared photo with the transforms of a JSON file.

Writes, for frame k (1-based, 4 digits): ``frame_k.png``, ``target_mask_k.png``,
``edited_depth_k.exr`` (the frame at the photo's size by default, see engine.composite;
``--output-size working`` for the model's working size; masks and depth at the working size),
each as soon as its frame batch is sampled (under a temporary name, then renamed); edited from
the photo, ``prepared/`` (the prepared photo, reused by a rerun); ``manifest.json`` records every
finished frame with the key of what made it, so an interrupted run, rerun with the same command,
skips the finished frames and computes the rest (without preparing the photo again). ``report.json`` (per-stage wall times, UNet forward / backward counts, peak memory,
settings) is written at the end. Every input, option and the output folder are checked before
any folder is created or any model is loaded.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import EngineError, InputError
from .prepare import (add_input_arguments, add_model_arguments, check_models_available, complete_photo,
                      engine_from_args, load_photo_args, settings_changes, settings_from_args)

HELP = "edit a prepared photo (or prepare it first) with 3D transforms; writes frames and a report"

# Names edit writes into its folder (an input with one of these names there would be overwritten).
OUTPUTS = (r"frame_\d+\.png", r"target_mask_\d+(_\d+)?\.png", r"edited_depth_\d+\.exr", r"report\.json",
           r"manifest\.json", r"candidates\.json", r"candidate_\d+\.png", r"prepared")

# Edited from the photo (no --prepared), the prepared photo is kept here in the output folder, so
# a rerun after an interruption (or with other transforms) skips the inversion: `Engine.prepare`
# reuses it only when its content key matches the inputs, model and prepare-time settings.
PREPARED_DIR = "prepared"


def add_arguments(p) -> None:
    from ..transforms import CONVENTIONS

    p.add_argument("--prepared", metavar="PREP_DIR", help="a directory written by `engine prepare`")
    add_input_arguments(p, required=False)
    p.add_argument("--transforms", required=True, metavar="T.json",
                   help='transforms file: {"frames": [{"matrix": 4x4}, ...]} or translation/rotation')
    p.add_argument("--convention", choices=CONVENTIONS, default=CONVENTIONS[0],
                   help="frame of the transforms (camera = Blender camera frame; pytorch3d = the "
                        "reference release's data)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--output-size", choices=("photo", "working"), default="photo",
                   help="size of the written frames: the photo's own (default; unchanged pixels are "
                        "the photo's) or the model's working resolution")
    add_model_arguments(p)


def _settings_for_prepared(args, prepared):
    """The settings of an edit of ``prepared``: its prepare-time settings, the edit-time options
    given; an option that contradicts the prepared photo is refused, never silently dropped.
    Without --preset the prepared photo's own settings are the base (the preset it was prepared
    with, and any edit-time choice made then), so `prepare --preset fast` then `edit --prepared`
    runs what `edit --preset fast` from the photo runs."""
    from .. import checks
    from ..settings import EditSettings

    fixed = prepared.settings
    prepare_fields = EditSettings.prepare_fields()
    changes = checks.settings_types(settings_changes(args))
    for name, value in changes.items():
        if name in prepare_fields and value != fixed.to_dict()[name]:
            option = f"--{name.replace('_', '-')}" if name in vars(args) and getattr(args, name) is not None \
                else f"{name} in --settings"
            raise InputError(f"{option} {value!r}: the prepared photo was made with {name}="
                             f"{fixed.to_dict()[name]!r}; this setting is fixed at prepare time (prepare "
                             f"again with it, or leave it out)")
    if args.preset:
        preset = EditSettings.preset(args.preset)
        _note_prepare_mismatch(preset, prepared)  # a preset is a bundle: its edit-time part applies
        base = preset.for_prepared(fixed)
    else:
        base = fixed
    return checks.settings_from(changes={k: v for k, v in changes.items() if k not in prepare_fields}, base=base)


def _preset_name(args, prepared) -> str | None:
    """The preset an edit runs: the one named, else the prepared photo's (None: not recorded)."""
    return args.preset or (prepared.preset if args.prepared else "default")


def _note_prepare_mismatch(requested, prepared) -> None:
    """A prepared photo fixes the prepare-time settings (steps, inversion, ...): say so when the
    preset asked for others (e.g. --preset fast on a photo prepared with the default)."""
    from .. import console

    want, have = requested.prepare_dict(), prepared.settings.prepare_dict()
    diff = [k for k in want if want[k] != have[k] and k != "resolution"]
    if diff:
        console.say("note: the prepared photo fixes " + ", ".join(f"{k}={have[k]}" for k in diff) +
                    " (the preset has " + ", ".join(f"{k}={want[k]}" for k in diff) + "); its other "
                    "settings apply; prepare the photo again to use all of the preset's")


def _read_transforms(args, centroid):
    from .. import checks
    from ..transforms import load_transforms

    checks.transforms_json(args.transforms, "--transforms")  # strict JSON, bounded, no booleans
    return load_transforms(args.transforms, convention=args.convention, centroid=centroid)


def _run_key(prepared, settings, args) -> str:
    from ..output import digest_json

    return digest_json({"prepared": prepared.key, "settings": settings.to_dict(), "convention": args.convention,
                        "output_size": args.output_size,
                        "outputs": ["frame", "target_mask", "edited_depth"]})


def _frame_keys(mats) -> list:
    return [e.key() for e in mats]


def _resume_from(done, n, batch) -> int:
    """Index of the first frame to compute: the start of the batch holding the first unfinished
    frame, so every batch is sampled exactly as in an uninterrupted run."""
    todo = [k for k in range(n) if k + 1 not in done]
    return (todo[0] // batch) * batch if todo else n


def run(args) -> int:
    import contextlib

    with contextlib.ExitStack() as claims:  # the output folder's one-writer claim, once taken
        return _run(args, claims)


def _run(args, claims) -> int:
    import numpy as np

    from .. import console, io
    from ..inputs import check_visible, input_files
    from ..output import FrameManifest, check_inputs_not_in, check_output_dir, folder_writer, write_json
    from ..composite import to_photo_size
    from ..pipeline import Engine, pivots
    from ..prepared import Prepared
    from ..settings import EditSettings

    t_all = time.perf_counter()
    out = Path(args.out)
    stages = {}
    # 1. Every input, option and the output folder, before any folder is made or model loaded
    if args.prepared:
        if args.image or args.prompt is not None:
            raise InputError("give either --prepared or the photo arguments (--image, --prompt, ...), not both")
        t0 = time.perf_counter()
        prepared = Prepared.load(args.prepared)
        stages["prepare"] = time.perf_counter() - t0
        settings = _settings_for_prepared(args, prepared)
        mats = _read_transforms(args, prepared.centroids)
        Engine(settings=settings).check_frames(prepared, mats)  # no model is loaded for this
        from ..diffusion.backbones import check_prepared

        check_prepared(prepared.backbone, args.backbone)
        sources = [args.prepared, args.transforms]
        photo = None
    else:
        settings = settings_from_args(args)
        photo = load_photo_args(args)
        centroid = (pivots(photo.depth, photo.mask) if photo.complete_without_models
                    else np.array([0.0, 0.0, -2.0]))  # a stand-in to check the file; re-read below
        mats = _read_transforms(args, centroid)
        if photo.complete_without_models:
            check_visible(photo, mats)
        sources = [*input_files(photo), args.transforms]
    if args.settings:
        sources.append(args.settings)
    check_models_available(args, photo)
    check_output_dir(out, "--out")
    check_inputs_not_in(out, sources, "--out", OUTPUTS)
    if photo is not None and (out / PREPARED_DIR).exists() and not (out / PREPARED_DIR).is_dir():
        raise InputError(f"--out: {out / PREPARED_DIR} is not a folder; edit keeps the prepared photo there "
                         f"(move that file away)")

    # 2. Prepare (from the photo), or resume from the prepared photo without loading the model;
    # one run at a time writes the folder (a second is refused while the first lives)
    claims.enter_context(folder_writer(out, "--out"))
    engine = engine_from_args(args, settings)
    if photo is not None:
        t0 = time.perf_counter()
        complete_photo(args, photo, candidates_dir=out)
        with console.Progress() as progress:
            prepared = engine.prepare(**photo.prepare_arguments(), progress=progress, cache_dir=out / PREPARED_DIR,
                                      preset=args.preset or "default")
        stages["prepare"] = time.perf_counter() - t0
        if prepared.reused_from:
            console.say(f"using the photo prepared by an earlier run ({prepared.reused_from})")
        # the pivots of the completed photo at its own size, as --prepared, preview and batch.py use
        mats = _read_transforms(args, prepared.centroids)
        engine.check_frames(prepared, mats)
        prepare_report = {"reused": prepared.reused_from is not None, **prepared.report}
    else:
        prepare_report = {"loaded_from": str(args.prepared), **prepared.report}
    n = len(mats)
    manifest = FrameManifest(out, _run_key(prepared, settings, args), _frame_keys(mats))
    if len(manifest.finished()) < n:
        engine.check_model(prepared)  # loads it; another model than the prepared photo's is refused
    out.mkdir(parents=True, exist_ok=True)
    done = set(manifest.resume())
    (out / "report.json").unlink(missing_ok=True)  # describes another run until this one ends
    start = _resume_from(done, n, engine.runtime.frame_batch_size)
    if done:
        console.say(f"resuming: {len(done)} of {n} frame(s) already finished in {out} "
                    f"({', '.join(map(str, sorted(done)[:8]))}{', ...' if len(done) > 8 else ''}); "
                    f"computing the other {n - len(done)}")

    # 3. Frames, each written as soon as it is sampled
    def frame_image(r):
        return to_photo_size(prepared, r) if args.output_size == "photo" else r.image

    counts = {"unet_forward": 0, "unet_backward": 0}
    frames, peak = [], prepare_report.get("peak_memory_bytes", 0)
    t0 = time.perf_counter()
    stages["write"] = 0.0
    if start < n:
        counts0 = dict(engine.counts)
        with console.Progress(f"{n - start} frame(s)") as progress:
            for j, r in enumerate(engine.iter_edit(prepared, mats[start:], settings, progress=progress)):
                k = start + j + 1
                peak = max(peak, r.stats.peak_memory_bytes)
                if k in done:
                    continue
                if not np.isfinite(r.image).all():
                    raise EngineError(f"frame {k}: the model produced NaN or inf pixels (with fp16, try "
                                      f"--dtype fp32; or lower the guidance weights)")
                tw = time.perf_counter()
                # the frame image last: once it is there, the frame is finished and recorded
                writers = [(f"target_mask_{k:04d}.png", lambda p, r=r: io.save_mask(p, r.target_mask))]
                writers += [(f"target_mask_{k:04d}_{n}.png", lambda p, m=m: io.save_mask(p, m))  # per object, then per copy
                            for n, m in enumerate(r.target_masks if len(r.target_masks) > 1 else [], start=1)]
                writers += [(f"edited_depth_{k:04d}.exr", lambda p, r=r: io.save_depth_exr(p, r.edited_depth)),
                            (f"frame_{k:04d}.png", lambda p, r=r: io.save_image(p, frame_image(r)))]
                manifest.commit(k, writers)
                if r.stats.notes:  # out of view, hidden behind another object, too small, filling the frame
                    console.say(f"frame {k}: {'; '.join(r.stats.notes)}")
                stages["write"] += time.perf_counter() - tw
                st = r.stats
                energy = st.energy
                frames.append({"frame": k, "batch_frames": st.batch_frames, "batch_seconds": st.batch_seconds,
                               "unet_forward": st.unet_forward, "unet_backward": st.unet_backward,
                               "visible_objects": st.visible_objects,
                               "reused": st.reused,  # "reconstruction" / "frame K": not sampled
                               "energy_first": energy[0]["energy"] if energy else 0.0,
                               "energy_last": energy[-1]["energy"] if energy else 0.0})
        counts = {k: v - counts0[k] for k, v in engine.counts.items()}
    stages["edit"] = time.perf_counter() - t0 - stages["write"]
    edit_settings = settings.for_prepared(prepared.settings)
    report = {
        "frames": n, "computed": [f["frame"] for f in frames], "resumed": sorted(done),
        "size": list(prepared.size), "output_size": args.output_size,
        "frame_size": list(prepared.original_size if args.output_size == "photo" else prepared.size),
        "model_id": prepared.model_id,
        "backbone": prepared.backbone,
        "model_revision": prepared.revision,  # the snapshot's commit (a download resolved "main" to it)
        "device": str(engine.models.device) if start < n else None,
        "seconds": {**stages, "load": engine.timings.get("load", 0.0), "total": time.perf_counter() - t_all},
        "edit_unet_forward": counts["unet_forward"], "edit_unet_backward": counts["unet_backward"],
        "prepare": prepare_report, "peak_memory_bytes": peak,
        "preset": _preset_name(args, prepared),
        # what one frame costs with these settings, and with the release's (50 steps, 38 guided
        # x 3 iterations, CFG pairs): forward = 1, backward = 2 UNet-forward equivalents
        "unet_cost_per_frame": edit_settings.unet_cost(),
        "release_unet_cost_per_frame": EditSettings().unet_cost(cfg_pair=True),
        "settings": edit_settings.to_dict(),
        "runtime": engine.runtime.to_dict(),
        "per_frame": frames,
    }
    write_json(out / "report.json", report)
    skipped = f", {len(done)} already finished" if done else ""
    console.say(f"wrote {len(frames)} frame(s) to {out}{skipped} ({report['seconds']['total']:.1f} s, "
                f"{counts['unet_forward']} UNet forwards, {counts['unet_backward']} backwards)")
    return 0
