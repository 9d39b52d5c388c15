"""A Hugging Face Hub look-alike on 127.0.0.1, for testing the real huggingface_hub client.

It answers the calls huggingface_hub 2.x makes for our use:

- `GET /api/models?search=&filter=gguf&sort=&limit=&expand=`  (HfApi.list_models)
- `GET /api/models/{repo}/tree/{revision}?recursive=`           (HfApi.list_repo_tree)
- `HEAD|GET /{repo}/resolve/{revision}/{path}`                   (get_hf_file_metadata, downloads)
- `HEAD|GET /cdn/{sha256}` on a second port: a different origin, like the Hub's LFS CDN,
  used when `redirect_to_cdn` is on (then /resolve answers 302, with X-Linked-* headers).

Files carry ETag, X-Repo-Commit, Content-Length and Accept-Ranges, honour `Range` (206/416),
and carry no Xet headers, so the client's plain HTTP path is exercised. Errors carry the
Hub's X-Error-Code headers (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), which
is what huggingface_hub turns into its exception types.

Test knobs: `gated` repos (401 without a token, 403 with one not in `valid_tokens`),
`drop_after` (the next GET of a file sends N body bytes, then hangs up), `throttle`
(seconds of sleep per 64 KiB sent), `page_size` (search and tree answers come in pages of
that many entries, linked like the Hub's: `Link: <…&cursor=…>; rel="next"`; off by
default). Every request is recorded in `requests`.

This module is a pytest plugin (listed in tests/conftest.py): the `hub` fixture is global.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

CHUNK = 64 * 1024


@dataclass
class FakeFile:
    path: str
    data: bytes

    @property
    def sha256(self) -> str:  # the LFS oid, which the Hub uses as the file's ETag
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, FakeFile]
    commit: str
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-06-01T12:00:00.000Z"
    tags: list[str] = field(default_factory=lambda: ["gguf"])
    gated: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Seen] = []
        self.valid_tokens: set[str] = set()
        self.drop_after: dict[str, int] = {}
        self.throttle = 0.0
        self.redirect_to_cdn = False
        self.page_size: int | None = None
        self._lock = threading.Lock()
        self._servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self.endpoint = ""
        self.cdn_endpoint = ""

    # --- set-up -----------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes], **fields: object) -> FakeRepo:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        repo = FakeRepo(repo_id, {p: FakeFile(p, d) for p, d in files.items()}, commit, **fields)  # type: ignore[arg-type]
        self.repos[repo_id] = repo
        return repo

    def start(self) -> None:
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, role))
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append((server, thread))
        self.endpoint = f"http://127.0.0.1:{self._servers[0][0].server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._servers[1][0].server_address[1]}"

    def stop(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._servers.clear()

    # --- inspection ---------------------------------------------------------------------
    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self, method: str | None = None, path_contains: str = "") -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and path_contains in r.path]

    def ranges(self, path_contains: str) -> list[str | None]:
        """The Range header of each GET whose path contains `path_contains`, in order."""
        return [r.headers.get("range") for r in self.seen("GET", path_contains)]

    def take_drop(self, path: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(path, None)

    def blob(self, sha256: str) -> FakeFile | None:
        for repo in self.repos.values():
            for f in repo.files.values():
                if f.sha256 == sha256:
                    return f
        return None


_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _make_handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no idle keep-alive sockets outlive a test.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._route(body=False)

        def do_GET(self) -> None:
            self._route(body=True)

        # --- routing --------------------------------------------------------------------
        def _route(self, body: bool) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            query = parse_qs(url.query)
            hub.record(Seen(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}))
            try:
                if role == "cdn":
                    match = _CDN.match(path)
                    blob = hub.blob(match["sha"]) if match else None
                    if blob is None:
                        return self._error(404, "EntryNotFound", "no such blob")
                    return self._send_file(blob, {}, body)
                if path == "/api/models" and body:
                    return self._search(query)
                if (match := _TREE.match(path)) and body:
                    return self._tree(match["repo"], match["rev"], match["path"] or "", query)
                if match := _RESOLVE.match(path):
                    return self._resolve(match["repo"], match["rev"], match["path"], body)
                self._error(404, None, "not found")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up (cancelled download): nothing to do

        def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
            elif revision not in ("main", repo.commit):
                self._error(404, "RevisionNotFound", "Invalid rev id: " + revision)
                return None
            return repo

        def _search(self, query: dict[str, list[str]]) -> None:
            text = query.get("search", [""])[0].lower()
            wanted = set(query.get("filter", []))
            hits = [r for r in hub.repos.values() if text in r.repo_id.lower() and wanted <= set(r.tags)]
            if query.get("sort") == ["downloads"]:
                hits.sort(key=lambda r: -r.downloads)
            limit = int(query.get("limit", ["1000"])[0])
            self._json(
                [
                    {
                        "_id": r.commit[:24],
                        "id": r.repo_id,
                        "downloads": r.downloads,
                        "likes": r.likes,
                        "lastModified": r.last_modified,
                        "gated": "manual" if r.gated else False,
                        "tags": r.tags,
                        "private": False,
                    }
                    for r in hits[:limit]
                ],
                query,
            )

        def _tree(self, repo_id: str, revision: str, under: str, query: dict[str, list[str]]) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            prefix = under.strip("/") + "/" if under else ""
            entries: dict[str, dict[str, object]] = {}
            for f in repo.files.values():
                if not f.path.startswith(prefix):
                    continue
                rest = f.path[len(prefix) :].split("/")
                for depth in range(1, len(rest)):  # the folders on the way
                    folder = prefix + "/".join(rest[:depth])
                    entries.setdefault(folder, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
                    if not recursive:
                        break
                if recursive or len(rest) == 1:
                    entries[f.path] = {
                        "type": "file",
                        "oid": f.git_oid,
                        "size": len(f.data),
                        "path": f.path,
                        "lfs": {"oid": f.sha256, "size": len(f.data), "pointerSize": 134},
                    }
            self._json(list(entries.values()), query)

        def _resolve(self, repo_id: str, revision: str, path: str, body: bool) -> None:
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            if repo.gated:
                auth = self.headers.get("Authorization", "")
                if not auth:
                    return self._error(401, "GatedRepo", "Access to this model is restricted: log in.")
                if auth.removeprefix("Bearer ") not in hub.valid_tokens:
                    return self._error(403, "GatedRepo", "Access to this model is restricted: ask for access.")
            f = repo.files.get(path)
            if f is None:
                return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": repo.commit})
            headers = {"X-Repo-Commit": repo.commit}
            if hub.redirect_to_cdn:  # like the Hub for LFS files: metadata on the 302, bytes elsewhere
                self.send_response(302)
                for name, value in {
                    **headers,
                    "Location": f"{hub.cdn_endpoint}/cdn/{f.sha256}",
                    "X-Linked-Etag": f'"{f.sha256}"',
                    "X-Linked-Size": str(len(f.data)),
                    "ETag": f'"{f.git_oid}"',
                    "Content-Length": "0",
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                return
            self._send_file(f, headers, body)

        # --- responses ------------------------------------------------------------------
        def _send_file(self, f: FakeFile, headers: dict[str, str], body: bool) -> None:
            size = len(f.data)
            start, end, status = 0, size - 1, 200
            if match := _RANGE.match(self.headers.get("Range", "")):
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
                if start >= size:
                    return self._error(416, None, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
                status = 206
                headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
            self.send_response(status)
            for name, value in {
                **headers,
                "ETag": f'"{f.sha256}"',
                "Content-Length": str(end - start + 1),
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }.items():
                self.send_header(name, value)
            self.end_headers()
            if not body:
                return
            drop = hub.take_drop(f.path)
            stop = end + 1 if drop is None else min(end + 1, start + drop)
            for offset in range(start, stop, CHUNK):  # bounded by the file size
                self.wfile.write(f.data[offset : min(offset + CHUNK, stop)])
                if hub.throttle:
                    time.sleep(hub.throttle)
            # With `drop`, returning here closes the socket short of Content-Length.

        def _json(self, payload: list[object], query: dict[str, list[str]]) -> None:
            link = None
            if hub.page_size:  # one page, and a link to the next one if there is more
                start = int(query.get("cursor", ["0"])[0])
                end = start + hub.page_size
                if end < len(payload):
                    next_query = urlencode({**query, "cursor": [str(end)]}, doseq=True)
                    link = f'<{hub.endpoint}{urlsplit(self.path).path}?{next_query}>; rel="next"'
                payload = payload[start:end]
            data = json.dumps(payload).encode()
            self.send_response(200)
            if link:
                self.send_header("Link", link)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
            data = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A running fake Hub; point the client at `hub.endpoint`."""
    fake = FakeHub()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
