"""Content digests of files (SHA-256), remembered in the user's cache folder by (real path, size,
mtime, inode), so a large file is hashed once: model folders' fingerprints
(``engine.registry.content_fingerprint``) and single-file checkpoints' keys
(``engine.diffusion.single_file``)."""
from __future__ import annotations

import os
from pathlib import Path


def _digest_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffusion-handles" / "file-digests.json"


class DigestCache:
    """SHA-256 of files, remembered by (real path, size, mtime, inode) in the user's cache folder,
    so a large file is hashed once."""

    def __init__(self):
        import json

        self.path = _digest_cache_path()
        try:
            cache = json.loads(self.path.read_text(encoding="utf-8"))
            self.cache = cache if isinstance(cache, dict) else {}
        except (OSError, ValueError):
            self.cache = {}
        self.changed = False

    def digest(self, f: Path) -> str:
        from .output import file_digest

        st = f.stat()
        stamp = f"{os.path.realpath(f)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        digest = self.cache.get(stamp)
        if not isinstance(digest, str):
            digest = self.cache[stamp] = file_digest(f)
            self.changed = True
        return digest

    def save(self):
        from .output import write_json

        if self.changed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_json(self.path, self.cache)
            except OSError:
                pass  # a read-only home: hash again next time


def file_content_digest(path) -> str:
    """The SHA-256 of one file's content (a single-file checkpoint's key), hashed once per version."""
    cache = DigestCache()
    digest = cache.digest(Path(path))
    cache.save()
    return digest
