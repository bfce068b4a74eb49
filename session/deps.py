"""Python dependencies inside Blender: Blender's Python has numpy but not torch and friends (no bpy).

The preferences' "Install dependencies" action pip-installs the pinned packages into the
extension's own user directory (``extension_path_user(..., "site-packages")``, found by
blender/addon.py, which also puts it on ``sys.path`` when the add-on registers), or into the
preferences' *Python Packages* folder when one is set; from the package index, or offline from a
folder of wheel files (the preferences' *Wheels Folder*: ``pip --no-index --find-links``).

It works on every Blender from 4.2 (Python 3.11, numpy 1.26) to 5.1+ (Python 3.13, numpy 2):
binary wheels only (an artist's machine compiles nothing), and whatever Blender's Python already
has (numpy above all: Blender's own modules are built against it) is left to Blender, never
installed a second time nor replaced. The install runs in steps, each before anything is written
into the target: pip resolves the requirements against Blender's Python (``--dry-run --report``),
downloads the wheels of the plan, the longest path they would install is checked against
Windows' 260-character limit, and only then pip installs them (``--no-deps``) into a staging
folder that is moved into place whole.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .errors import INSTALL_HINT, AddonError

# The engine's runtime requirements (the same pins as requirements.txt; a test keeps them equal).
# Every pin has binary wheels for CPython 3.11 and 3.13. No numpy: Blender's own serves.
REQUIREMENTS = (
    "torch==2.14.1",
    "torchvision==0.29.1",
    "diffusers==0.42.1",
    "transformers==5.24.0",
    "accelerate==1.15.0",
    "huggingface_hub==2.4.0",
    "safetensors==0.8.0",
    "segment-anything==1.0",
    "pillow==13.0.0",
    "scipy==1.17.1",
    "OpenEXR==3.5.3",
)
# Never installed, even where the Python lacks it: Blender bundles it (1.26 in 4.2-5.0, 2.x in 5.1+)
# and its own modules are built against that one. Every other package the Python has is kept too.
BLENDER_OWN = ("numpy",)
# Windows' MAX_PATH counts the terminating NUL: a path may have 259 characters.
WINDOWS_MAX_PATH = 260
# import name -> what it is for (what the status box lists as missing)
MODULES = {
    "numpy": "arrays", "PIL": "image files", "scipy": "geometry solves",
    "torch": "the diffusion engine", "diffusers": "the diffusion model", "transformers": "text encoder, depth",
    "safetensors": "weights and caches", "huggingface_hub": "model files",
}
PREVIEW_MODULES = ("numpy", "PIL", "scipy", "torch")  # the preview warps with torch; no weights


def missing_modules(names=None):
    return [name for name in (names or MODULES) if importlib.util.find_spec(name) is None]


def install_hint():
    return INSTALL_HINT


def require(names):
    """Raise AddonError naming what is missing and how to install it."""
    missing = missing_modules(names)
    if missing:
        raise AddonError(f"missing Python package(s): {', '.join(missing)}. {install_hint()}")


def built_for(folder):
    """The Python versions ('3.11') the version-specific wheels installed in ``folder`` were built
    for (their WHEEL tags 'cp311-cp311-...'; pure and abi3 wheels serve any version)."""
    versions = set()
    try:
        infos = [name for name in os.listdir(folder) if name.endswith(".dist-info")]
    except OSError:
        return versions
    for info in infos:
        try:
            with open(os.path.join(folder, info, "WHEEL"), encoding="utf-8") as stream:
                tags = [line.split(":", 1)[1].strip() for line in stream if line.startswith("Tag:")]
        except OSError:
            continue
        for tag in tags:
            interpreter, abi = (tag.split("-") + ["", ""])[:2]
            if interpreter == abi and re.fullmatch(r"cp3\d+", interpreter):
                versions.add(f"3.{interpreter[3:]}")
    return versions


def foreign_python(folder):
    """The other Python a package folder was installed for ('3.11' in a Blender on 3.13), else None."""
    versions = built_for(folder)
    here = "%d.%d" % sys.version_info[:2]
    return ", ".join(sorted(versions)) if versions and here not in versions else None


def canonical(name):
    """A project name as pip compares them (PEP 503): 'Pillow', 'pillow' and 'PIL_low' alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_command(action, *args, python=None):
    """``python -s -m pip ACTION ...``: -s leaves out the user's own site-packages, as Blender does."""
    return [python or sys.executable, "-s", "-m", "pip", action, "--disable-pip-version-check", "--no-input", *args]


def source_options(wheels_dir=None):
    """The package index, or only the wheel files in ``wheels_dir`` (offline)."""
    return ["--no-index", "--find-links", wheels_dir] if wheels_dir else []


def resolve_command(report, wheels_dir=None, requirements=None, python=None):
    """pip's plan, written to the JSON file ``report``: what installing the requirements into this
    Python would add, binary wheels only; what the Python already has that satisfies them is left out."""
    return pip_command("install", "--dry-run", "--only-binary=:all:", "--report", report,
                       *source_options(wheels_dir), *(REQUIREMENTS if requirements is None else requirements),
                       python=python)


# What the Python that pip runs in is, and which distributions it already has.
_ENVIRONMENT = ("import importlib.metadata as m, json, platform, sys; print(json.dumps({"
                "'python': '%d.%d' % sys.version_info[:2], 'tag': sys.implementation.cache_tag, "
                "'platform': f'{platform.system()} {platform.machine()}', "
                "'installed': {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))")


def environment(python=None):
    result = subprocess.run([python or sys.executable, "-s", "-c", _ENVIRONMENT], capture_output=True, text=True)
    if result.returncode != 0:
        raise AddonError(f"Install Dependencies: cannot run Python {python or sys.executable}: "
                         f"{(result.stderr.strip().splitlines() or ['no output'])[-1]}")
    found = json.loads(result.stdout)
    found["installed"] = {canonical(name): (name, version) for name, version in found["installed"].items()}
    return found


def _package_in(line):
    """The package a pip progress line is about ('Collecting torch==2.14.1', 'Processing .../torch-2.14.1-...whl')."""
    found = re.match(r"(?:Collecting|Processing|Downloading)\s+(\S+)", line)
    if not found:
        return None
    return re.split(r"[<>=!~\[;@]|-\d", os.path.basename(found.group(1).replace("\\", "/")), maxsplit=1)[0]


def _failure(output, known, env, wheels_dir):
    """pip's failure as one line naming the package it failed on."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:] or ["(no output)"]
    error = errors[0].removeprefix("ERROR: ")
    missing = re.search(r"(?:satisfies the requirement|distribution found for) (\S+)", error)
    if missing:
        where = f"in the Wheels Folder {wheels_dir}" if wheels_dir else "on the package index"
        return (f"no binary wheel of {missing.group(1)} for Python {env['python']} on {env['platform']} {where} "
                "(Install Dependencies installs wheels only: it compiles nothing)")
    by_canonical = {canonical(name): name for name in known}  # 'dh_probe' in a path is project 'dh-probe'
    mentioned = [by_canonical[c] for token in re.findall(r"[A-Za-z0-9][\w.-]*", error)
                 if (c := canonical(token)) in by_canonical]
    current = [by_canonical.get(canonical(name), name) for line in lines if (name := _package_in(line))]
    package = (mentioned or current[-1:] or [None])[0]
    return f"pip failed on {package}: {error}" if package else f"pip failed: {error}"


def _run_pip(command, known, env, wheels_dir):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AddonError(f"Install Dependencies: {_failure(result.stdout + result.stderr, known, env, wheels_dir)}")
    return result


def plan(wheels_dir=None, requirements=None, python=None, env=None):
    """What installing the requirements would add: ``[(name, version, url)]``, binary wheels only.
    Refuses (AddonError) a plan that would install a package the Python has (a numpy beside
    Blender's) or one of BLENDER_OWN."""
    requirements = REQUIREMENTS if requirements is None else requirements
    env = env or environment(python)
    known = [re.split(r"[\s;<>=!~\[@]", req, maxsplit=1)[0] for req in requirements]
    with tempfile.TemporaryDirectory(prefix="dh-plan-") as folder:
        report = os.path.join(folder, "report.json")
        _run_pip(resolve_command(report, wheels_dir, requirements, python), known, env, wheels_dir)
        with open(report, encoding="utf-8") as stream:
            items = json.load(stream)["install"]
    wanted = [(item["metadata"]["name"], item["metadata"]["version"], item["download_info"]["url"])
              for item in items]
    clashes = [(name, version) for name, version, _ in wanted
               if canonical(name) in env["installed"] or canonical(name) in BLENDER_OWN]
    if clashes:
        name, version = clashes[0]
        have = env["installed"].get(canonical(name))
        needers = [item["metadata"]["name"] for item in items  # the plan's packages that ask for it
                   if any(canonical(re.split(r"[\s;<>=!~\[(@]", dep, maxsplit=1)[0]) == canonical(name)
                          for dep in item["metadata"].get("requires_dist") or [])]
        what = f"Blender's own {name} {have[1]}" if have else f"Blender's {name} (this Python has none)"
        raise AddonError(
            f"Install Dependencies: {', '.join(needers[:3]) or 'the requirements'}{', ...' if len(needers) > 3 else ''}"
            f" {'needs' if len(needers) == 1 else 'need'} {name} {version}, which would replace {what}; it never replaces what Blender's Python "
            f"{env['python']} has: use a Blender release this add-on lists, or set Python Packages to an "
            "environment that has everything")
    return wanted


def _local_wheel(url):
    """The wheel file a file:// URL names (a Wheels Folder), else None."""
    parsed = urlparse(url)
    return url2pathname(unquote(parsed.path)) if parsed.scheme == "file" else None


def installed_paths(wheel, cache_tag):
    """The paths (relative, '/'-separated) that ``pip install --target`` writes for one wheel file:
    its files (the ``.data`` folders mapped as pip maps them), the compiled ``__pycache__`` file of
    each module, and the metadata pip adds."""
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if not name.endswith("/")]
    paths = []
    for name in names:
        parts = name.split("/")
        if len(parts) > 2 and parts[0].endswith(".data"):
            kind, rest = parts[1], "/".join(parts[2:])
            dist = parts[0][:-len(".data")].split("-")[0]
            name = {"scripts": f"Scripts/{rest}", "headers": f"Include/{dist}/{rest}"}.get(kind, rest)
        paths.append(name)
        if name.endswith(".py"):
            folder, _, stem = name[:-3].rpartition("/")
            paths.append(f"{folder}/__pycache__/{stem}.{cache_tag}.pyc" if folder else
                         f"__pycache__/{stem}.{cache_tag}.pyc")
    dist_info = next((p.split("/")[0] for p in names if p.split("/")[0].endswith(".dist-info")), None)
    if dist_info:
        paths += [f"{dist_info}/INSTALLER", f"{dist_info}/REQUESTED", f"{dist_info}/direct_url.json"]
    return paths


def longest_install_path(wheels, folder, cache_tag):
    """(length, path): the longest path installing ``wheels`` into ``folder`` writes."""
    sep = "\\" if "\\" in folder or re.match(r"^[A-Za-z]:", folder) else os.sep
    base = folder.rstrip("\\/")
    relative = max((path for wheel in wheels for path in installed_paths(wheel, cache_tag)), key=len, default="")
    path = base + sep + relative.replace("/", sep)
    return len(path), path


def path_length_problem(wheels, folders, cache_tag, max_path=WINDOWS_MAX_PATH, home=None):
    """The one-line refusal when installing ``wheels`` into any of ``folders`` (the target, its
    staging folder) would write a path of ``max_path`` characters or more, else None."""
    length, path, folder = max((*longest_install_path(wheels, folder, cache_tag), folder) for folder in folders)
    if length < max_path:
        return None
    relative = length - len(folder.rstrip("\\/")) - 1
    room = max_path - 2 - relative  # characters the folder may have (one separator, then the NUL)
    target = folders[0].rstrip("\\/")
    sep = "\\" if "\\" in target else os.sep
    drive = re.match(r"^[A-Za-z]:", target)
    suggestion = (home if home is not None else os.path.expanduser("~")).rstrip("\\/") + sep + "dh-packages"
    if len(suggestion) > room:
        suggestion = (drive.group(0) if drive else "") + sep + "dh"
    return (f"Install Dependencies: the longest file it would write is {length} characters, over Windows' "
            f"{max_path}-character path limit: {path}. Nothing was installed. Set 'Python Packages' in the "
            f"preferences to a short folder (at most {room} characters, e.g. {suggestion}) and install again: "
            "it installs there")


def install(target, wheels_dir=None, progress=None, requirements=None, python=None, max_path=None):
    """pip-install the requirements into ``target``: resolved against this Python (what it has is
    kept), binary wheels only, the path lengths checked (``max_path``: Windows' limit on Windows),
    installed into a staging folder next to ``target`` and then moved in: a failed install leaves
    ``target`` as it was (nothing half-installed on sys.path). Returns the installed ``name==version``s."""
    progress = progress or (lambda stage, step, total: None)
    max_path = max_path if max_path is not None else (WINDOWS_MAX_PATH if os.name == "nt" else 0)
    if importlib.util.find_spec("pip") is None and python is None:
        progress("ensurepip", 0, 5)
        subprocess.run([sys.executable, "-m", "ensurepip"], capture_output=True)
    env = environment(python)
    source = f" from {wheels_dir}" if wheels_dir else ""
    progress(f"resolving the requirements{source}", 1, 5)
    wanted = plan(wheels_dir, requirements, python, env)
    if not wanted:
        return []
    known = [name for name, _, _ in wanted]
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    downloads = tempfile.mkdtemp(prefix=".dh-", dir=parent)
    staging = tempfile.mkdtemp(prefix=".dh-", dir=parent)  # no longer than "site-packages"
    try:
        wheels = [path for _, _, url in wanted if (path := _local_wheel(url))]
        remote = [f"{name}=={version}" for name, version, url in wanted if not _local_wheel(url)]
        if remote:
            progress(f"downloading {len(remote)} wheels (several GB, minutes)", 2, 5)
            _run_pip(pip_command("download", "--no-deps", "--only-binary=:all:", "-d", downloads,
                                 *source_options(wheels_dir), *remote, python=python), known, env, wheels_dir)
            wheels += [os.path.join(downloads, name) for name in sorted(os.listdir(downloads))
                       if name.endswith(".whl")]
        progress("checking path lengths", 3, 5)
        if max_path:
            problem = path_length_problem(wheels, [os.path.abspath(target), staging], env["tag"], max_path)
            if problem:
                raise AddonError(problem)
        progress(f"installing {len(wheels)} packages", 4, 5)
        _run_pip(pip_command("install", "--no-deps", "--no-index", "--only-binary=:all:", "--target", staging,
                             *wheels, python=python), known, env, wheels_dir)
        _move_into(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)
    return [f"{name}=={version}" for name, version, _ in wanted]


def _move_into(staging, target):
    """Move the staged packages into ``target``, each replacing its older version whole."""
    os.makedirs(target, exist_ok=True)
    staged = os.listdir(staging)
    projects = {canonical(name.split("-")[0]) for name in staged if name.endswith(".dist-info")}
    for name in os.listdir(target):  # an older version's metadata goes with it
        if name.endswith(".dist-info") and canonical(name.split("-")[0]) in projects:
            shutil.rmtree(os.path.join(target, name))
    for name in staged:
        destination = os.path.join(target, name)
        if os.path.isdir(destination) and not os.path.islink(destination):
            shutil.rmtree(destination)
        elif os.path.lexists(destination):
            os.remove(destination)
        os.replace(os.path.join(staging, name), destination)
