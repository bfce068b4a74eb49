"""The model registry: every model the project uses, by role, in one place (docs/design.md section 5).

A role resolves to a local directory in this order:
1. an explicit override: a local directory, or a Hugging Face id (``org/name`` or ``org/name@rev``);
2. ``<models_dir>/<role>/`` when a models directory is given (the layout ``engine tiny-models``
   writes, and the toy model folders use);
3. the role's default id at its pinned revision in the Hugging Face cache (offline lookup; honours
   HF_HOME / HF_HUB_CACHE, read when the lookup happens). Nothing is downloaded here: downloads are
   explicit (``python -m engine models download``, :func:`download`).

Revisions: a 40-hex revision is a commit of the model repository, seen as a snapshot directory
name in several independent Hugging Face caches (the hub names snapshot folders after commits).
``"main"`` means no commit could be confirmed yet; the repository's current head is used then.

Integrity (:func:`verify`): every file of a Hugging Face snapshot is a link to a blob named by its
content hash (sha256 for large LFS files, the git blob sha1 for small ones), so a download is
verified by re-hashing each file against its blob name; files with a published checksum (the SAM
release checkpoints' md5) are checked against it too.
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


_SD_FP16 = ("*.json", "*.txt", "unet/*.fp16.safetensors", "vae/*.fp16.safetensors",
            "text_encoder/*.fp16.safetensors", "tokenizer/*")

REGISTRY: dict[str, ModelSpec] = {
    spec.role: spec
    for spec in (
        ModelSpec(
            "diffusion",
            "stabilityai/stable-diffusion-2-depth",
            "main",
            "about 2.6 GB (fp16 safetensors: unet, vae, text encoder)",
            "openrail++",
            "depth-to-image latent diffusion (UNet with 4 latent + 1 depth input channels)",
            allow_patterns=_SD_FP16,
            required=("model_index.json", "unet/config.json", "vae/config.json",
                      "text_encoder/config.json", "tokenizer/*", "unet/*.safetensors"),
            loader="diffusers UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer",
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
            "stabilityai/stable-diffusion-2-inpainting",
            "81a84f49b15956b60b4272a405ad3daef3da4590",
            "about 2.6 GB (fp16 safetensors)",
            "openrail++",
            "object removal by diffusion inpainting; option: `--removal diffusers` (the default "
            "removal needs no download)",
            allow_patterns=_SD_FP16,
            required=("model_index.json", "unet/config.json", "vae/config.json", "unet/*.safetensors"),
            loader="diffusers StableDiffusionInpaintPipeline",
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


def _split_id(model_id: str, default_revision: str) -> tuple[str, str]:
    if "@" in model_id:
        repo, rev = model_id.split("@", 1)
        return repo, rev
    return model_id, default_revision


def resolve(role: str, override: str | os.PathLike | None = None,
            models_dir: str | os.PathLike | None = None) -> Path:
    """Local directory holding the model for ``role`` (see module docstring for the order)."""
    s = spec(role)
    looked: list[str] = []
    if override:
        text = str(override)
        if text in REGISTRY and text != role and text in ROLE_FAMILIES.get(role, ()):
            return resolve(text, None, models_dir)  # e.g. sam -> sam-vit-h
        p = Path(override).expanduser()
        if p.is_dir():
            return p
        path_like = any(sep in text for sep in (os.sep, os.altsep) if sep)  # '/' and '\\' on Windows
        if p.exists() or path_like and not _looks_like_hub_id(text):
            raise ModelNotFoundError(f"model override for role {role!r}: {text!r} is not a directory")
        if not _looks_like_hub_id(text):
            raise ModelNotFoundError(
                f"model override for role {role!r}: {text!r} is neither a local directory nor a "
                f"Hugging Face id (org/name or org/name@revision)")
        repo, rev = _split_id(text, s.revision if text.split("@")[0] == s.default_id else "main")
        found = _from_hf_cache(repo, rev, s.allow_patterns if repo == s.default_id else None)
        if found:
            return found
        looked.append(f"Hugging Face cache ({hf_cache_dir()}) for {repo}@{rev}")
        raise _missing(role, f"{repo}@{rev}", looked, override=text)
    if models_dir:
        p = Path(models_dir).expanduser() / role
        if p.is_dir():
            return p
        looked.append(str(p))
    found = _from_hf_cache(s.default_id, s.revision, s.allow_patterns)
    if found and _has_required(found, s.required):
        return found
    looked.append(f"Hugging Face cache ({hf_cache_dir()}) for {s.default_id}@{s.revision}")
    raise _missing(role, f"{s.default_id}@{s.revision}", looked)


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
    return ModelNotFoundError(
        f"model for role {role!r} ({model_id}) is not available offline; looked in: {'; '.join(looked)}. "
        f"To fix: download it (needs network; HF_HOME chooses where it goes) or give the role a local "
        f"model folder", role=role, override=override)


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


def _digest_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffusion-handles" / "file-digests.json"


def content_fingerprint(root) -> str:
    """A revision string for a local model folder from the CONTENT of its files (relative names
    and SHA-256 of each), so a copied folder keeps its fingerprint (and its prepared caches stay
    valid) while a changed weight changes it. Digests are cached by (path, size, mtime, inode) in
    the user's cache folder, so a large model is hashed once."""
    import json

    from .output import file_digest, write_json

    root = Path(root)
    cache_path = _digest_cache_path()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
        cache = cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        cache = {}
    h = hashlib.sha256()
    changed = False
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        stamp = f"{os.path.realpath(f)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        digest = cache.get(stamp)
        if not isinstance(digest, str):
            digest = cache[stamp] = file_digest(f)
            changed = True
        h.update(f"{f.relative_to(root).as_posix()}\0{digest}\n".encode())
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache_path, cache)
        except OSError:
            pass  # a read-only home: hash again next time
    return "local-" + h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# explicit downloads and verification

def download(role: str, override: str | None = None, tqdm_class=None) -> Path:
    """Download ``role`` (its default id at the pinned revision, or ``override`` as ``org/name[@rev]``)
    into the Hugging Face cache, with progress bars; returns the snapshot directory.

    Refuses when HF_HUB_OFFLINE is set. Only the registry's ``allow_patterns`` are fetched
    (safetensors where the model offers them); nothing is executed from the repository.
    """
    s = spec(role)
    if hf_offline():
        raise InputError(f"cannot download the {role!r} model: HF_HUB_OFFLINE is set (unset it to "
                          f"allow downloads; models are looked up in {hf_cache_dir()})")
    if override:
        check_hub_id(override, f"model id for role {role!r}")
    repo, rev = _split_id(str(override), "main") if override else (s.default_id, s.revision)
    patterns = s.allow_patterns if repo == s.default_id else None
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo, revision=rev, cache_dir=hf_cache_dir(),
                                      allow_patterns=list(patterns) if patterns else None,
                                      tqdm_class=tqdm_class))
    except Exception as exc:  # network, authentication, unknown revision: one line for the user
        raise EngineError(f"download of {repo}@{rev} for role {role!r} failed: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if repo == s.default_id:
        missing = _missing_required(path, s.required)
        if missing:
            raise EngineError(f"download of {repo}@{rev} for role {role!r} is incomplete: no file "
                              f"matches {', '.join(missing)} in {path}")
    return path


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
    """Check one resolved model directory: required files present, content hashes as recorded."""
    s = spec(role)
    problems = [f"no file matches {pat!r}" for pat in _missing_required(root, s.required)] \
        if "snapshots" in root.parts else []
    checked = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        checked += 1
        if p.stat().st_size == 0:
            problems.append(f"{p.relative_to(root)} is empty")
            continue
        if not check_hashes:
            continue
        if p.is_symlink():  # Hugging Face cache: the blob's name is the content hash
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
    """The README's model table (role, default id, revision, download size, licence, use)."""
    rows = ["| role | default | revision | download | licence | used by |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s in REGISTRY.values():
        rev = s.revision if s.revision == "main" else s.revision[:10]
        rows.append(f"| `{s.role}` | `{s.default_id}` | {rev} | {s.download_size} | {s.licence} | "
                    f"{'default pipeline' if s.use == 'default' else 'option'} |")
    return "\n".join(rows)
