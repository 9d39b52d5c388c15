"""Hugging Face Hub access: search GGUF repos, list their files, download into the HF cache.

Meant to run in a worker thread; nothing here prints. Errors reach the caller as one
`HubError` family with messages fit for the user.

Why downloads don't simply call `hf_hub_download`: in huggingface_hub 2.x it streams into a
per-call `<etag>.<random>.incomplete` file and deletes it on any failure, so a cancelled
multi-GB download would start over from zero. Instead we stream into the stable
`blobs/<etag>.incomplete` ourselves (resuming it with an HTTP Range request), move it to
`blobs/<etag>` when complete, and then call `hf_hub_download`, which finds the blob and only
writes `refs/` and the `snapshots/` symlink: the standard cache layout, made by the library.

Why search and listing don't call `HfApi.list_models` / `HfApi.list_repo_tree`: they go
through the library's `http_backoff`, which retries connection errors five times (sleeping
1+2+4+8+8 s) with no per-call way to turn that off, and with no timeout at all; so with no
network the picker said "Searching…" for ~23 s before failing. We make the same GET requests
(same URL, query, headers, session, error parsing and Link-header pagination) once, with a
short connect timeout, so an unreachable Hub is reported within seconds.
"""

from __future__ import annotations

import errno
import importlib.metadata
import itertools
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote, urljoin, urlsplit

import httpx2  # huggingface_hub 2.x's HTTP client; we only catch its transport errors
from filelock import Timeout as LockTimeout
from huggingface_hub import (
    ModelInfo,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    scan_cache_dir,
    try_to_load_from_cache,
)
from huggingface_hub import RepoFile as HfRepoFile
from huggingface_hub.errors import (
    CacheNotFound,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import (
    WeakFileLock,
    build_hf_headers,
    disable_progress_bars,
    get_session,
    hf_raise_for_status,
    validate_repo_id,
)
from tqdm import tqdm

from llama_tui.formatting import human_bytes

log = logging.getLogger(__name__)


def _app_version() -> str:
    try:
        return importlib.metadata.version("llama-tui")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


class _Library(TypedDict):
    library_name: str
    library_version: str


_LIBRARY: _Library = {"library_name": "llama-tui", "library_version": _app_version()}  # for the User-Agent
_PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks: plenty for a progress bar
_SPEED_WINDOW = 3.0  # seconds of history behind the speed estimate
_MAX_FAILURES = 5  # consecutive dropped connections without progress before giving up
# Search and listing: one attempt per request. Connecting gets a few seconds (refused
# connections and DNS failures fail at once anyway); reads get the library's usual 10 s.
_CONNECT_TIMEOUT = 5.0
_READ_TIMEOUT = float(constants.DEFAULT_REQUEST_TIMEOUT)


def _quiet_library() -> None:
    """huggingface_hub logs to stderr through its own handler, which would scribble over the
    TUI. Swap it for a NullHandler (which also keeps logging's last-resort stderr handler
    away when the app has configured none): records still propagate to the root logger,
    i.e. the app's log file. Its tqdm bars go too; downloads report through `on_progress`."""
    for logger in (logging.getLogger("huggingface_hub"), log):
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.addHandler(logging.NullHandler())
    disable_progress_bars()


_quiet_library()


# --- errors -------------------------------------------------------------------------------


class HubError(Exception):
    """Anything that went wrong talking to the Hub; str() is a message for the user."""


class HubAuthError(HubError):
    """Gated or private: needs a (better) token."""


class HubNotFound(HubError):
    """No such repo, revision or file."""


class HubOffline(HubError):
    """The Hub can't be reached, or offline mode is on and the file isn't cached."""


class HubDiskFull(HubError):
    """Not enough space in the cache directory."""


class DownloadCancelled(HubError):
    """The caller set the cancel event; the partial file is kept for resuming."""


_TOKEN_HINT = "set HF_TOKEN (or run `hf auth login`)"


@contextmanager
def _translate(what: str, endpoint: str) -> Iterator[None]:
    """Turn huggingface_hub / httpx / OS errors into HubError subclasses. `what` names the
    thing being fetched, for the message."""
    try:
        yield
    except HubError:
        raise
    except OfflineModeIsEnabled as exc:
        raise HubOffline(f"Offline mode is on (HF_HUB_OFFLINE=1): can't fetch {what}.") from exc
    except GatedRepoError as exc:  # before RepositoryNotFoundError: it is a subclass
        if exc.response.status_code == 401:
            msg = f"{what} is gated and needs a Hugging Face token: {_TOKEN_HINT}"
        else:
            msg = f"Your Hugging Face token has no access to {what}: use one that has ({_TOKEN_HINT})"
        raise HubAuthError(msg + ", and accept the model's terms on its Hugging Face page.") from exc
    except RepositoryNotFoundError as exc:
        # The Hub answers 401 for private *and* missing repos when no token is sent.
        raise HubNotFound(f"Repository not found: {what}. If it is private, {_TOKEN_HINT}.") from exc
    except RevisionNotFoundError as exc:
        raise HubNotFound(f"Revision not found: {what}.") from exc
    except EntryNotFoundError as exc:  # RemoteEntryNotFoundError (404) and LocalEntryNotFoundError
        if isinstance(exc, LocalEntryNotFoundError):
            raise HubOffline(f"Can't reach the Hub ({endpoint}) and {what} is not in the local cache.") from exc
        raise HubNotFound(f"File not found: {what}.") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise HubAuthError(f"Access denied to {what} (HTTP {status}): {_TOKEN_HINT}.") from exc
        if status == 404:
            raise HubNotFound(f"Not found: {what}.") from exc
        raise HubError(f"The Hub answered HTTP {status} for {what}.") from exc
    except LockTimeout as exc:
        raise HubError(f"{what} is already being downloaded by another process or task.") from exc
    except httpx2.TransportError as exc:
        raise HubOffline(f"Can't reach the Hugging Face Hub ({endpoint}): {exc}. Check your connection.") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise HubDiskFull(f"Disk full while downloading {what}.") from exc
        raise HubError(f"{what}: {exc}") from exc


# --- settings read at call time -------------------------------------------------------------
# huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE once, at import. We re-read
# them per call so changes (and tests) take effect; explicit arguments still win.


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _offline() -> bool:
    return constants.is_offline_mode() or _is_true(os.environ.get("HF_HUB_OFFLINE"))


def _endpoint(endpoint: str | None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """The HF hub cache, with the library's precedence: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE,
    then HF_HOME/hub."""
    env = os.environ
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return Path(env[name]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


# --- search and listing ---------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSummary:
    repo_id: str
    downloads: int | None = None
    likes: int | None = None
    last_modified: datetime | None = None
    gated: bool = False


@dataclass(frozen=True)
class RepoFile:
    filename: str  # path inside the repo, e.g. "Q8_0/model-Q8_0-00001-of-00002.gguf"
    size: int | None
    quant: str | None  # e.g. "Q4_K_M", guessed from the name
    shard: tuple[int, int] | None = None  # (part, of), 1-based, for split GGUFs


_Params = dict[str, str | int | bool | list[str]]
"""Query parameters of a Hub listing."""


def _get_pages(url: str, params: _Params, token: str | None, endpoint: str) -> Iterator[list[dict]]:
    """GET a Hub listing and follow its `Link: <…>; rel="next"` pages: what the library's
    `paginate` does for `list_models` / `list_repo_tree`, with its session, headers (user
    agent, token from the argument or HF_TOKEN / the token file) and `hf_raise_for_status`,
    but one attempt per page and bounded timeouts. Pages are fetched lazily, as consumed."""
    headers = build_hf_headers(token=token, **_LIBRARY)
    timeout = httpx2.Timeout(_READ_TIMEOUT, connect=_CONNECT_TIMEOUT)
    next_url: str | None = url
    query: _Params | None = params
    while next_url is not None:
        response = get_session().get(next_url, params=query, headers=headers, timeout=timeout)
        hf_raise_for_status(response)
        try:
            page = response.json()
        except json.JSONDecodeError as exc:
            raise HubError(f"{endpoint} did not answer like a Hugging Face Hub (no JSON from {next_url}).") from exc
        if not isinstance(page, list):
            raise HubError(f"{endpoint} did not answer like a Hugging Face Hub (no list from {next_url}).")
        link = response.links.get("next", {}).get("url")
        if link:  # it carries the query (cursor included)
            link = urljoin(str(response.url), link)
            if _origin(link) != _origin(str(response.url)):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        next_url, query = link, None
        yield page


def search_gguf_models(
    query: str, *, limit: int = 30, endpoint: str | None = None, token: str | None = None
) -> list[RepoSummary]:
    """GGUF model repos matching `query`, most downloaded first."""
    endpoint = _endpoint(endpoint)
    if _offline():
        raise HubOffline("Offline mode is on (HF_HUB_OFFLINE=1): search needs the Hub.")
    # The request HfApi.list_models(search=, filter="gguf", sort="downloads", limit=, expand=) makes.
    params: _Params = {"filter": ["gguf"], "sort": "downloads", "limit": limit}
    if query:
        params["search"] = query
    params["expand"] = ["downloads", "likes", "lastModified", "gated"]
    with _translate(f"search {query!r}", endpoint):
        items = itertools.chain.from_iterable(_get_pages(f"{endpoint}/api/models", params, token, endpoint))
        # islice stops at `limit` without requesting a further page, like list_models.
        models = [ModelInfo(**{"siblings": None, **item}) for item in itertools.islice(items, limit)]
        return [
            RepoSummary(m.id, m.downloads, m.likes, m.last_modified, gated=bool(m.gated)) for m in models
        ]


def list_gguf_files(
    repo_id: str, *, revision: str | None = None, endpoint: str | None = None, token: str | None = None
) -> list[RepoFile]:
    """The .gguf files of a repo (all folders), sorted by path, with sizes."""
    endpoint = _endpoint(endpoint)
    if _offline():
        raise HubOffline(f"Offline mode is on (HF_HUB_OFFLINE=1): can't list {repo_id}.")
    validate_repo_id(repo_id)  # HFValidationError (a ValueError), as from HfApi.list_repo_tree
    # The request HfApi.list_repo_tree(repo_id, recursive=True, revision=revision) makes.
    rev = quote(revision, safe="") if revision is not None else constants.DEFAULT_REVISION
    url = f"{endpoint}/api/models/{repo_id}/tree/{rev}"
    with _translate(repo_id, endpoint):
        entries = [
            HfRepoFile(**item)
            for page in _get_pages(url, {"recursive": True, "expand": False}, token, endpoint)
            for item in page
            if item.get("type") == "file"
        ]
        files = [
            RepoFile(e.path, e.size, guess_quant(e.path), shard_of(e.path))
            for e in entries
            if e.size is not None and e.path.lower().endswith(".gguf")
        ]
    return sorted(files, key=lambda f: f.filename)


_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# llama.cpp quant names: Q4_K_M, Q8_0, IQ4_XS, TQ1_0, Q4_0_4_4, F16, BF16, MXFP4...
_QUANT = re.compile(r"(?:I?Q\d+(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|F16|FP16|F32|MXFP4(?:_MOE)?)")


def shard_of(filename: str) -> tuple[int, int] | None:
    match = _SHARD.search(filename)
    return (int(match[1]), int(match[2])) if match else None


def guess_quant(filename: str) -> str | None:
    """The quantization named in a GGUF file name ("…-Q4_K_M.gguf" -> "Q4_K_M"), else None.
    Looks at the file name first, then at its folders (some repos use "Q8_0/…")."""
    for part in reversed(filename.split("/")):
        stem = _SHARD.sub("", part)
        stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE).upper()
        # Names are "-" or "." separated; the quant is a whole token, usually the last.
        for token in reversed(re.split(r"[-.]", stem)):
            if _QUANT.fullmatch(token):
                return "F16" if token == "FP16" else token
    return None


# --- download -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:
    downloaded: int  # bytes on disk so far, including a resumed part
    total: int | None
    speed: float  # bytes/s over the last few seconds
    eta: float | None  # seconds, when total and speed are known


class _Tracker:
    """Counts bytes, rate-limits `on_progress`, and raises DownloadCancelled when asked to."""

    def __init__(self, on_progress: Callable[[DownloadProgress], object], cancel: threading.Event | None) -> None:
        self.on_progress = on_progress
        self.cancel = cancel
        self.total: int | None = None
        self.downloaded = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._last_emit = float("-inf")

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled("Download cancelled; it will resume where it stopped.")

    def pause(self, seconds: float) -> None:
        """Sleep before a retry, waking up at once if cancelled."""
        if self.cancel is None:
            time.sleep(seconds)
        elif self.cancel.wait(seconds):
            self.check_cancel()

    def start(self, downloaded: int, total: int | None) -> None:
        """(Re)start counting at `downloaded`; the speed window restarts too."""
        self.downloaded, self.total = downloaded, total
        self._samples.clear()
        self._samples.append((time.monotonic(), downloaded))

    def advance(self, n: int) -> None:
        self.downloaded += n
        now = time.monotonic()
        if now - self._last_emit >= _PROGRESS_INTERVAL:
            self._emit(now)
        if self.total is None or self.downloaded < self.total:  # finished is finished
            self.check_cancel()

    def finish(self) -> None:
        self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self._last_emit = now
        self._samples.append((now, self.downloaded))
        while len(self._samples) > 2 and now - self._samples[0][0] > _SPEED_WINDOW:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        speed = (self.downloaded - d0) / (now - t0) if now > t0 else 0.0
        eta = (self.total - self.downloaded) / speed if self.total is not None and speed > 0 else None
        self.on_progress(DownloadProgress(self.downloaded, self.total, speed, eta))


def _tqdm_hook(tracker: _Tracker) -> type[tqdm]:
    """A silent tqdm class feeding `tracker`, for the rare case `hf_hub_download` downloads
    itself (the repo changed between our request and its own)."""

    class _Hook(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:  # whatever tqdm takes
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": True})
            total = kwargs.get("total")
            tracker.start(int(kwargs.get("initial") or 0), total if isinstance(total, int) else None)

        def update(self, n: float | None = 1) -> bool | None:
            tracker.advance(int(n or 0))
            return None

    return _Hook


def download_gguf(
    repo_id: str,
    filename: str,
    *,
    on_progress: Callable[[DownloadProgress], object],
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Download one file into the HF cache (resuming a partial one) and return its path
    (the `snapshots/<commit>/<filename>` entry). Offline, a cached copy is returned if any."""
    endpoint = _endpoint(endpoint)
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    what = f"{repo_id}/{filename}"
    tracker = _Tracker(on_progress, cancel)
    tracker.check_cancel()
    if _offline():
        offline = HubOffline(f"Offline mode is on (HF_HUB_OFFLINE=1) and {what} is not in the cache.")
        return _cached_or(offline, repo_id, filename, revision, cache)

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        with _translate(what, endpoint):
            # HEAD /resolve: etag (names the blob), commit, size, and the CDN url on a redirect.
            meta = get_hf_file_metadata(url, token=token, endpoint=endpoint, **_LIBRARY)
    except HubOffline as exc:  # like hf_hub_download: no connection -> fall back to the cache
        return _cached_or(exc, repo_id, filename, revision, cache)
    if not meta.etag or not meta.commit_hash:
        raise HubError(f"{endpoint} did not answer like a Hugging Face Hub (no ETag/X-Repo-Commit for {what}).")

    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    blob = storage / "blobs" / meta.etag
    if not blob.exists():
        headers = build_hf_headers(token=token, headers={"Accept-Encoding": "identity"}, **_LIBRARY)
        if _origin(meta.location) != _origin(url):
            headers.pop("authorization", None)  # never send the token to the CDN
        lock = cache / ".locks" / storage.name / f"{meta.etag}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_name(blob.name + ".incomplete")
        with _translate(what, endpoint), WeakFileLock(lock, timeout=1):
            _check_space(partial, meta.size, what)
            _fetch(meta.location, headers, partial, meta.size, tracker)
            partial.replace(blob)

    # The blob is in place, so this only writes refs/<revision> and the snapshot symlink.
    with _translate(what, endpoint):
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            endpoint=endpoint,
            token=token,
            cache_dir=cache,
            tqdm_class=_tqdm_hook(tracker),
            **_LIBRARY,
        )
    if tracker.total is None:  # nothing was downloaded: report the file as complete
        tracker.start(blob.stat().st_size, blob.stat().st_size)
    tracker.finish()
    return Path(path)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _cached_or(error: HubError, repo_id: str, filename: str, revision: str | None, cache: Path) -> Path:
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
    if isinstance(cached, str):
        return Path(cached)
    raise error


def _check_space(partial: Path, size: int | None, what: str) -> None:
    """Fail early rather than after filling the disk."""
    if size is None:
        return
    have = partial.stat().st_size if partial.exists() else 0
    free = shutil.disk_usage(partial.parent).free
    if free < size - have:
        raise HubDiskFull(
            f"Not enough disk space for {what}: needs {human_bytes(size - have)} more, "
            f"{human_bytes(free)} free in {partial.parent}."
        )


def _fetch(url: str, headers: dict[str, str], partial: Path, size: int | None, tracker: _Tracker) -> None:
    """Stream `url` into `partial`, appending from its current size with a Range request.
    Dropped connections are retried (resuming); DownloadCancelled leaves `partial` in place."""
    failures = 0
    # Each pass either completes, raises, or appends bytes / counts a failure, so this ends.
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have > size:  # not ours to trust: start over
            partial.unlink()
            have = 0
        tracker.start(have, size)
        if size is not None and have == size:
            return
        request_headers = {**headers, "Range": f"bytes={have}-"} if have else headers
        try:
            with get_session().stream(
                "GET", url, headers=request_headers, timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT
            ) as response:
                hf_raise_for_status(response)
                resumed = have > 0 and response.status_code == 206
                if have and not resumed:  # the server ignored Range and sends it all
                    tracker.start(0, size)
                with partial.open("ab" if resumed else "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        failures = 0
                        tracker.advance(len(chunk))
        except httpx2.TransportError as exc:  # dropped connection, read timeout, ...
            failures += 1
            if failures > _MAX_FAILURES:
                raise
            log.warning("Download interrupted (%s); resuming (attempt %d)", exc, failures)
            tracker.pause(0.25 * 2 ** (failures - 1))
            continue
        got = partial.stat().st_size
        if size is None or got == size:
            return
        if got > size:
            partial.unlink()
            raise HubError(f"Downloaded file is larger than expected ({got} > {size} bytes); removed it.")
        failures += 1  # body ended early without an error: resume
        if failures > _MAX_FAILURES:
            raise HubError(f"Download keeps ending early ({got} of {size} bytes); try again later.")


# --- cache --------------------------------------------------------------------------------


def cached_gguf_files(cache_dir: Path | None = None) -> list[Path]:
    """Every .gguf in the HF cache (snapshot paths, one per revision), sorted."""
    try:
        info = scan_cache_dir(cache_dir if cache_dir is not None else hub_cache_dir())
    except CacheNotFound:
        return []
    return sorted(
        {
            file.file_path
            for repo in info.repos
            if repo.repo_type == "model"
            for revision in repo.revisions
            for file in revision.files
            if file.file_name.lower().endswith(".gguf")
        }
    )
