"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, for download tests without the network.

Serves model repositories (folders) in the Hub's HTTP layout, the part `huggingface_hub` uses
(point it here with HF_ENDPOINT):

    GET  /api/models/{repo}/revision/{rev}       repo info: commit sha and files
    GET  /api/models/{repo}/tree/{rev}[/{path}]  file listing (size, git blob id, LFS sha256)
    HEAD /{repo}/resolve/{rev}/{file}            X-Repo-Commit, ETag (git blob sha1) or, for LFS
                                                 files, X-Linked-Etag (sha256) and X-Linked-Size
    GET  /{repo}/resolve/{rev}/{file}            the bytes; honours Range (resumed downloads)

Files matching ``lfs_patterns`` are served as LFS files (like weights on the Hub). ``interrupt``:
names of files whose first GET sends only half the bytes and drops the connection. ``corrupt``:
names of files whose first GET sends bytes of the right length but the wrong content (the
metadata stays the true one). ``withdrawn``: ids answered as the real Hub answers an anonymous
client for a withdrawn (or private) repository: HTTP 401 with ``X-Error-Code: RepoNotFound``, on
every route. ``revision/{rev}?blobs=true`` (``model_info(files_metadata=True)``) lists each
file's size, blob id and LFS sha256 (``files_metadata=False``: names only).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, folder, lfs_patterns=("*.safetensors", "*.bin", "*.pth")):
        self.folder = Path(folder)
        self.files = {str(p.relative_to(self.folder)).replace("\\", "/"): p.read_bytes()
                      for p in sorted(self.folder.rglob("*")) if p.is_file()}
        self.lfs = {name for name in self.files if any(fnmatch.fnmatch(name, pat) for pat in lfs_patterns)}
        digest = hashlib.sha1()
        for name, data in self.files.items():
            digest.update(name.encode() + git_blob_sha1(data).encode())
        self.commit = digest.hexdigest()  # 40 hex, like a git commit

    def sibling(self, name):
        """The file as ``/api/models/{repo}/revision/{rev}?blobs=true`` lists it."""
        data = self.files[name]
        item = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
        if name in self.lfs:
            item["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return item

    def entry(self, name):
        data = self.files[name]
        item = {"type": "file", "path": name, "size": len(data), "oid": git_blob_sha1(data)}
        if name in self.lfs:
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
        return item


class HubServer:
    """``with HubServer({"org/name": folder}) as hub: os.environ["HF_ENDPOINT"] = hub.url``."""

    def __init__(self, repos, interrupt=(), corrupt=(), withdrawn=(), files_metadata=True):
        self.repos = {name: Repo(folder) for name, folder in repos.items()}
        self.files_metadata = files_metadata  # False: file names only, as a plain listing has them
        self.interrupt = set(interrupt)
        self.corrupt = set(corrupt)
        self.withdrawn = set(withdrawn)
        self.requests = []  # (method, path, range header)
        self._lock = threading.Lock()
        self._served_once = set()

    def __enter__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def ranges(self, file_name):
        """The Range headers of the GETs of ``file_name`` (None: a whole-file GET)."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith("/" + file_name)]

    def asked(self, repo):
        """Whether any request named ``repo``."""
        return any(p.startswith((f"/api/models/{repo}/", f"/{repo}/")) for _, p, _ in self.requests)

    def _withdrawn(self, path):
        return any(path.startswith((f"/api/models/{name}/", f"/{name}/")) or path == f"/api/models/{name}"
                   for name in self.withdrawn)

    def _find(self, path):
        """(repo, rev, rest) for /api/models/{repo}/... or /{repo}/resolve/{rev}/{file}."""
        for name, repo in self.repos.items():
            for prefix in (f"/api/models/{name}/", f"/{name}/resolve/"):
                if path.startswith(prefix):
                    return prefix, repo, path[len(prefix):]
        return None, None, None

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, payload, status=200):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _missing(self, what, status=404):
                body = json.dumps({"error": what}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", "EntryNotFound" if "file" in what else "RepoNotFound")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                self._serve(head=True)

            def do_GET(self):
                self._serve(head=False)

            def _serve(self, head):
                path = unquote(urlparse(self.path).path)
                with hub._lock:
                    hub.requests.append((self.command, path, self.headers.get("Range")))
                if hub._withdrawn(path):  # as huggingface.co answers for a withdrawn repository
                    return self._missing("Repository not found", status=401)
                prefix, repo, rest = hub._find(path)
                if repo is None:
                    return self._missing("repository")
                if prefix.startswith("/api/models/"):
                    kind, _, tail = rest.partition("/")
                    if kind == "revision":
                        return self._json({"id": next(n for n, r in hub.repos.items() if r is repo),
                                           "sha": repo.commit, "private": False, "gated": False,
                                           "siblings": [repo.sibling(n) if hub.files_metadata else {"rfilename": n}
                                                        for n in repo.files]})
                    if kind == "tree":
                        _rev, _, sub = tail.partition("/")
                        sub = sub.strip("/")
                        names = [n for n in repo.files if not sub or n.startswith(sub + "/")]
                        dirs = sorted({n.rsplit("/", 1)[0] for n in names if "/" in n})
                        return self._json([{"type": "directory", "path": d, "size": 0, "oid": "0" * 40}
                                           for d in dirs] + [repo.entry(n) for n in names])
                    return self._missing("api route")
                _rev, _, name = rest.partition("/")
                if name not in repo.files:
                    return self._missing("file")
                data = repo.files[name]
                start = 0
                ranged = self.headers.get("Range")
                if ranged and ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                if name in repo.lfs:
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                else:
                    self.send_header("ETag", f'"{git_blob_sha1(data)}"')
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if head:
                    return
                body = data[start:]
                with hub._lock:
                    first = name not in hub._served_once
                    cut = name in hub.interrupt and first
                    hub._served_once.add(name)
                if name in hub.corrupt and first:  # the right length, the wrong bytes
                    body = bytes(b ^ 0xFF for b in body)
                if cut:  # a dropped connection half way
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    import socket

                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        return Handler


def repo_with_large_file(source, destination, size=24 << 20, name="extras/padding.dat"):
    """A copy of the model folder ``source`` plus one large LFS file (bigger than huggingface_hub's
    10 MB download chunk, so an interrupted transfer has bytes on disk to resume from)."""
    import os
    import shutil

    shutil.copytree(source, destination)
    path = Path(destination) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return Path(destination), name
