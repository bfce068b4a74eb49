"""Real wheel files, a few hundred bytes each, written here (the wheel format is a zip with
METADATA, WHEEL and RECORD): the stand-ins of the multi-GB requirements that pip installs
offline in the tests, with the names, versions and dependencies the test gives them."""
import base64
import hashlib
import re
import zipfile
from pathlib import Path


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder, name, version, files=None, requires=(), tag="py3-none-any"):
    """Write ``<name>-<version>-<tag>.whl`` into ``folder``; ``files``: {path in the wheel: text}
    (default: one package named after the project). Returns its path."""
    dist = re.sub(r"[-_.]+", "_", name)
    files = dict(files if files is not None else {f"{dist.lower()}/__init__.py": f"VERSION = {version!r}\n"})
    info = f"{dist}-{version}.dist-info"
    files[f"{info}/METADATA"] = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"] + [f"Requires-Dist: {r}\n" for r in requires])
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: dh-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    record = [f"{path},{_digest(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = Path(folder) / f"{dist}-{version}-{tag}.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def make_sdist(folder, name, version):
    """A source archive only (``<name>-<version>.tar.gz``): what a binary-only install must refuse."""
    import io
    import tarfile

    path = Path(folder) / f"{name.replace('-', '_')}-{version}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo(f"{name.replace('-', '_')}-{version}/PKG-INFO")
        member.size = len(pkg_info)
        archive.addfile(member, io.BytesIO(pkg_info))
    return path
