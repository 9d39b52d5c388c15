"""llama_tui.engine.hub against the fake Hub (tests/hub_server.py), with the real client."""

from __future__ import annotations

import errno
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from huggingface_hub.utils import are_progress_bars_disabled

from llama_tui.engine import hub as hubmod
from llama_tui.engine.hub import (
    DownloadCancelled,
    DownloadProgress,
    HubAuthError,
    HubDiskFull,
    HubError,
    HubNotFound,
    HubOffline,
    cached_gguf_files,
    download_gguf,
    guess_quant,
    list_gguf_files,
    search_gguf_models,
)
from tests.hub_server import FakeHub

REPO = "acme/Tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"
SIZE = 3 * 1024 * 1024 + 123  # a few MB, not a multiple of any chunk size


def payload(size: int = SIZE, seed: int = 7) -> bytes:
    return b"GGUF" + random.Random(seed).randbytes(size - 4)


@pytest.fixture(autouse=True)
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HF home per test, no ambient token, online."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # No token file from the real home either (the path constant is read at import).
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


@pytest.fixture
def repo(hub: FakeHub) -> bytes:
    data = payload()
    hub.add_repo(REPO, {FILE: data, "README.md": b"# tiny\n"}, downloads=10, likes=3)
    return data


class Events(list[DownloadProgress]):
    def __call__(self, progress: DownloadProgress) -> None:
        self.append(progress)


def blobs_dir(cache: Path) -> Path:
    return cache / "models--acme--Tiny-GGUF" / "blobs"


def free_port_endpoint() -> str:
    """An address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- search and listing -----------------------------------------------------------------------


def test_search_returns_gguf_repos_most_downloaded_first(hub: FakeHub) -> None:
    hub.add_repo("acme/tiny-llama-GGUF", {"a-Q8_0.gguf": b"x"}, downloads=5, likes=1, gated=True)
    hub.add_repo("bob/Tiny-Qwen-GGUF", {"b-Q4_0.gguf": b"x"}, downloads=50, likes=9)
    hub.add_repo("carol/tiny-safetensors", {"model.safetensors": b"x"}, tags=["safetensors"])
    hub.add_repo("dave/huge-GGUF", {"c-F16.gguf": b"x"})

    results = search_gguf_models("tiny", endpoint=hub.endpoint)

    assert [r.repo_id for r in results] == ["bob/Tiny-Qwen-GGUF", "acme/tiny-llama-GGUF"]
    assert (results[0].downloads, results[0].likes, results[0].gated) == (50, 9, False)
    assert results[1].gated is True
    assert results[0].last_modified is not None and results[0].last_modified.year == 2025
    (request,) = hub.seen("GET", "/api/models")
    assert request.query["filter"] == ["gguf"] and request.query["search"] == ["tiny"]


def test_search_honours_limit(hub: FakeHub) -> None:
    for i in range(5):
        hub.add_repo(f"acme/m{i}-GGUF", {"m.gguf": b"x"}, downloads=i)
    assert len(search_gguf_models("", limit=2, endpoint=hub.endpoint)) == 2


def test_list_gguf_files_sizes_quants_and_shards(hub: FakeHub) -> None:
    hub.add_repo(
        REPO,
        {
            "README.md": b"readme",
            "tiny-Q4_K_M.gguf": b"a" * 10,
            "tiny-IQ4_XS.gguf": b"b" * 20,
            "tiny.f16.gguf": b"c" * 30,
            "Q8_0/tiny-Q8_0-00002-of-00002.gguf": b"d" * 40,
            "Q8_0/tiny-Q8_0-00001-of-00002.gguf": b"e" * 50,
            "mmproj.gguf": b"f",
        },
    )
    files = list_gguf_files(REPO, endpoint=hub.endpoint)

    assert [(f.filename, f.size, f.quant, f.shard) for f in files] == [
        ("Q8_0/tiny-Q8_0-00001-of-00002.gguf", 50, "Q8_0", (1, 2)),
        ("Q8_0/tiny-Q8_0-00002-of-00002.gguf", 40, "Q8_0", (2, 2)),
        ("mmproj.gguf", 1, None, None),
        ("tiny-IQ4_XS.gguf", 20, "IQ4_XS", None),
        ("tiny-Q4_K_M.gguf", 10, "Q4_K_M", None),
        ("tiny.f16.gguf", 30, "F16", None),
    ]


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"),
        ("gemma-3-270m-it-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("model.IQ2_XXS.gguf", "IQ2_XXS"),
        ("phi-4-BF16-00001-of-00003.gguf", "BF16"),
        ("ggml-model-fp16.gguf", "F16"),
        ("Qwen3-4B.gguf", None),
    ],
)
def test_guess_quant(name: str, quant: str | None) -> None:
    assert guess_quant(name) == quant


def test_search_and_listing_follow_link_pages(hub: FakeHub) -> None:
    """Like HfApi's paginate: later pages come from the Link header, with the same headers,
    and search stops requesting pages once it has `limit` results."""
    for i in range(5):
        hub.add_repo(f"acme/m{i}-GGUF", {"m.gguf": b"x"}, downloads=i)
    hub.add_repo(REPO, {f"{q}/tiny-{q}.gguf": b"x" * n for n, q in enumerate(["Q2_K", "Q4_0", "Q8_0"], 1)})
    hub.page_size = 2

    results = search_gguf_models("/m", endpoint=hub.endpoint, token="hf_abc")
    assert [r.repo_id for r in results] == [f"acme/m{i}-GGUF" for i in (4, 3, 2, 1, 0)]
    pages = hub.seen("GET", "/api/models")
    assert [p.query.get("cursor") for p in pages] == [None, ["2"], ["4"]]
    assert all(p.query["filter"] == ["gguf"] and p.query["search"] == ["/m"] for p in pages)
    assert all(p.headers["authorization"] == "Bearer hf_abc" for p in pages)

    hub.requests.clear()
    assert len(search_gguf_models("/m", limit=3, endpoint=hub.endpoint)) == 3
    assert len(hub.seen("GET", "/api/models")) == 2  # the third page was not needed

    hub.requests.clear()
    files = list_gguf_files(REPO, endpoint=hub.endpoint)  # 3 folders + 3 files: 3 pages
    assert [(f.filename, f.size, f.quant) for f in files] == [
        ("Q2_K/tiny-Q2_K.gguf", 1, "Q2_K"),
        ("Q4_0/tiny-Q4_0.gguf", 2, "Q4_0"),
        ("Q8_0/tiny-Q8_0.gguf", 3, "Q8_0"),
    ]
    assert len(hub.seen("GET", "/tree/")) == 3


def test_search_and_listing_read_settings_at_call_time(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo(REPO, {FILE: b"x"})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_env")

    assert [r.repo_id for r in search_gguf_models("tiny")] == [REPO]
    assert [f.filename for f in list_gguf_files(REPO)] == [FILE]

    for request in hub.seen("GET"):
        assert request.headers["authorization"] == "Bearer hf_env"
        assert "llama-tui/" in request.headers["user-agent"]  # the library's User-Agent, with ours
        assert "hf_hub/" in request.headers["user-agent"]


# --- no network: fail fast ----------------------------------------------------------------------

SEARCH_AND_LIST: list[Callable[[str], object]] = [
    lambda endpoint: search_gguf_models("tiny", endpoint=endpoint),
    lambda endpoint: list_gguf_files(REPO, endpoint=endpoint),
]
IDS = ["search", "list"]


@dataclass
class Attempts:
    """The socket timeouts in force at each connect to, and each read from, one endpoint."""

    connects: list[float | None] = field(default_factory=list)
    reads: list[float | None] = field(default_factory=list)


def offline_error(call: Callable[[str], object], endpoint: str) -> tuple[HubOffline, Attempts]:
    """Run `call` against `endpoint`, where it must fail as offline with the promised message.
    Returns the error and the connects and reads it made, each with the timeout its socket
    had: one of each means no retry loop, whatever the clock says (the time to the error is
    a figure of bench/latency.py)."""
    host, port = endpoint.removeprefix("http://").split(":")
    address = (host, int(port))
    attempts = Attempts()
    real_connect, real_recv = socket.socket.connect, socket.socket.recv

    def connect(sock: socket.socket, to: object) -> None:
        if to == address:
            attempts.connects.append(sock.gettimeout())
        return real_connect(sock, to)

    def recv(sock: socket.socket, *args: int) -> bytes:
        if sock.getpeername() == address:
            attempts.reads.append(sock.gettimeout())
        return real_recv(sock, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "recv", recv)
        with pytest.raises(HubOffline) as info:
            call(endpoint)
    message = str(info.value)
    assert message.startswith(f"Can't reach the Hugging Face Hub ({endpoint}): ")
    assert message.endswith(". Check your connection.")
    return info.value, attempts


@pytest.mark.parametrize("call", SEARCH_AND_LIST, ids=IDS)
def test_nothing_listening_fails_at_once(call: Callable[[str], object]) -> None:
    """Connection refused: no retries (huggingface_hub's backoff took ~23 s here)."""
    error, attempts = offline_error(call, free_port_endpoint())
    assert isinstance(error.__cause__, httpx2.ConnectError)
    assert attempts == Attempts(connects=[hubmod._CONNECT_TIMEOUT])  # one attempt


@pytest.fixture
def unanswered_syn() -> Iterator[str]:
    """An endpoint whose connection attempts go unanswered, like a host behind a firewall that
    drops packets: a listener whose accept queue is full, so Linux drops further SYNs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    address = server.getsockname()
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    time.sleep(0.1)
    try:
        try:
            socket.create_connection(address, timeout=0.3).close()
            pytest.skip("this system still accepts connections on a full backlog")
        except TimeoutError:
            pass
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for s in (*fillers, server):
            s.close()


@pytest.mark.parametrize("call", SEARCH_AND_LIST, ids=IDS)
def test_unreachable_host_gives_up_after_the_connect_timeout(
    call: Callable[[str], object], unanswered_syn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubmod, "_CONNECT_TIMEOUT", 0.5)  # 5 s in the app
    error, attempts = offline_error(call, unanswered_syn)
    assert isinstance(error.__cause__, httpx2.ConnectTimeout)
    assert attempts == Attempts(connects=[0.5])  # one attempt, with the app's connect timeout: not a retry loop


@pytest.mark.parametrize("call", SEARCH_AND_LIST, ids=IDS)
def test_silent_server_gives_up_after_the_read_timeout(
    call: Callable[[str], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubmod, "_READ_TIMEOUT", 0.5)
    with socket.socket() as server:  # the kernel completes connections; nobody ever answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        host, port = server.getsockname()
        error, attempts = offline_error(call, f"http://{host}:{port}")
        server.setblocking(False)
        accepted = 0
        while True:  # the connections the kernel completed for the server, in its queue
            try:
                server.accept()[0].close()
            except BlockingIOError:
                break
            accepted += 1
    assert isinstance(error.__cause__, httpx2.ReadTimeout)
    # One connection, one read with the app's read timeout, given up: not a retry loop.
    assert accepted == 1 and attempts == Attempts(connects=[hubmod._CONNECT_TIMEOUT], reads=[0.5])


# --- download ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cdn", [False, True], ids=["direct", "cdn-redirect"])
def test_download_lands_in_hf_cache_byte_exact(hub: FakeHub, repo: bytes, hf_env: Path, cdn: bool) -> None:
    hub.redirect_to_cdn = cdn
    events = Events()

    path = download_gguf(REPO, FILE, on_progress=events, endpoint=hub.endpoint, token="hf_public")

    commit = hub.repos[REPO].commit
    assert path == hf_env / "models--acme--Tiny-GGUF" / "snapshots" / commit / FILE
    assert path.is_symlink() and path.resolve().parent.name == "blobs"
    assert path.read_bytes() == repo
    assert (hf_env / "models--acme--Tiny-GGUF" / "refs" / "main").read_text() == commit
    assert not list(blobs_dir(hf_env).glob("*.incomplete"))

    done = [e.downloaded for e in events]
    assert done == sorted(done) and done[-1] == SIZE
    assert all(e.total == SIZE for e in events)
    if cdn:  # the bytes came from the other origin, and the token stayed on the Hub
        (cdn_get,) = hub.seen("GET", "/cdn/")
        assert "authorization" not in cdn_get.headers
        assert hub.seen("HEAD", "/resolve/")[0].headers["authorization"] == "Bearer hf_public"


def test_second_download_is_served_from_cache(hub: FakeHub, repo: bytes) -> None:
    first = download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    events = Events()
    second = download_gguf(REPO, FILE, on_progress=events, endpoint=hub.endpoint)
    assert second == first
    assert len(hub.seen("GET", "/resolve/")) == 1  # only the first call fetched bytes
    assert events[-1].downloaded == events[-1].total == SIZE


def test_cancel_keeps_partial_and_next_call_resumes(hub: FakeHub, repo: bytes, hf_env: Path) -> None:
    hub.throttle = 0.005  # the server is still sending when we cancel
    cancel = threading.Event()
    events = Events()

    def cancel_at_first_progress(progress: DownloadProgress) -> None:
        events(progress)
        cancel.set()

    with pytest.raises(DownloadCancelled):
        download_gguf(REPO, FILE, on_progress=cancel_at_first_progress, cancel=cancel, endpoint=hub.endpoint)

    (partial,) = blobs_dir(hf_env).glob("*.incomplete")
    kept = partial.stat().st_size
    assert 0 < kept < SIZE and events[-1].downloaded == kept
    assert partial.read_bytes() == repo[:kept]
    assert not (hf_env / "models--acme--Tiny-GGUF" / "snapshots").exists()

    hub.throttle = 0
    events.clear()
    path = download_gguf(REPO, FILE, on_progress=events, endpoint=hub.endpoint)

    assert path.read_bytes() == repo
    assert hub.ranges("/resolve/") == [None, f"bytes={kept}-"]
    assert events[0].downloaded > kept and events[-1].downloaded == SIZE


def test_dropped_connection_is_resumed_within_the_call(hub: FakeHub, repo: bytes) -> None:
    hub.drop_after[FILE] = 300_000
    path = download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    assert path.read_bytes() == repo
    assert hub.ranges("/resolve/") == [None, "bytes=300000-"]


def test_cancel_set_before_start_downloads_nothing(hub: FakeHub, repo: bytes) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download_gguf(REPO, FILE, on_progress=Events(), cancel=cancel, endpoint=hub.endpoint)
    assert hub.requests == []


# --- errors -----------------------------------------------------------------------------------


def test_missing_repo_and_file_are_not_found(hub: FakeHub, repo: bytes) -> None:
    with pytest.raises(HubNotFound, match="Repository not found"):
        download_gguf("acme/nope", FILE, on_progress=Events(), endpoint=hub.endpoint)
    with pytest.raises(HubNotFound, match="File not found"):
        download_gguf(REPO, "nope.gguf", on_progress=Events(), endpoint=hub.endpoint)
    with pytest.raises(HubNotFound):
        list_gguf_files("acme/nope", endpoint=hub.endpoint)
    with pytest.raises(HubNotFound, match="Revision"):
        list_gguf_files(REPO, revision="v9", endpoint=hub.endpoint)


def test_gated_repo_needs_a_token(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(1000)
    hub.add_repo("meta/Gated-GGUF", {"g-Q4_0.gguf": data}, gated=True)
    hub.valid_tokens = {"hf_good"}

    with pytest.raises(HubAuthError, match="HF_TOKEN"):
        download_gguf("meta/Gated-GGUF", "g-Q4_0.gguf", on_progress=Events(), endpoint=hub.endpoint)
    with pytest.raises(HubAuthError, match="no access"):
        download_gguf("meta/Gated-GGUF", "g-Q4_0.gguf", on_progress=Events(), endpoint=hub.endpoint, token="hf_bad")

    monkeypatch.setenv("HF_TOKEN", "hf_good")  # picked up at call time
    path = download_gguf("meta/Gated-GGUF", "g-Q4_0.gguf", on_progress=Events(), endpoint=hub.endpoint)
    assert path.read_bytes() == data


def test_nothing_listening_is_offline() -> None:
    with pytest.raises(HubOffline, match="Can't reach"):
        download_gguf(REPO, FILE, on_progress=Events(), endpoint=free_port_endpoint())


def test_offline_mode_uses_the_cache_or_says_offline(
    hub: FakeHub, repo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)

    assert download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint) == cached
    with pytest.raises(HubOffline, match="HF_HUB_OFFLINE"):
        download_gguf(REPO, "other-Q8_0.gguf", on_progress=Events(), endpoint=hub.endpoint)
    with pytest.raises(HubOffline):
        search_gguf_models("tiny", endpoint=hub.endpoint)
    with pytest.raises(HubOffline):
        list_gguf_files(REPO, endpoint=hub.endpoint)
    assert len(hub.requests) == before  # offline means no requests at all


def test_cached_file_is_returned_when_the_hub_is_unreachable(hub: FakeHub, repo: bytes) -> None:
    cached = download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    assert download_gguf(REPO, FILE, on_progress=Events(), endpoint=free_port_endpoint()) == cached


def test_not_enough_disk_space(hub: FakeHub, repo: bytes, hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hubmod.shutil, "disk_usage", lambda _path: _Usage(free=1000))
    with pytest.raises(HubDiskFull, match="Not enough disk space") as full:
        download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    assert hub.seen("GET", "/resolve/") == []
    # Sizes as people read them ("needs 0.00 GB more, 0.00 GB free" said nothing).
    assert "needs 3.1 MB more, 1.0 kB free in " in str(full.value)


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


def test_enospc_while_writing_is_disk_full() -> None:
    with pytest.raises(HubDiskFull), hubmod._translate("x", "http://hub"):
        raise OSError(errno.ENOSPC, "No space left on device")


# --- cache and quietness ----------------------------------------------------------------------


def test_cached_gguf_files(hub: FakeHub, repo: bytes, hf_env: Path) -> None:
    assert cached_gguf_files() == []  # the cache dir does not even exist yet
    path = download_gguf(REPO, FILE, on_progress=Events(), endpoint=hub.endpoint)
    download_gguf(REPO, "README.md", on_progress=Events(), endpoint=hub.endpoint)
    blobs_dir(hf_env).joinpath("leftover.incomplete").write_bytes(b"partial")  # ignored
    assert cached_gguf_files() == [path]
    assert cached_gguf_files(hf_env) == [path]


def test_nothing_reaches_the_terminal(hub: FakeHub, repo: bytes, tmp_path: Path) -> None:
    """In a fresh process with no logging set up (so nothing of pytest's catches output)."""
    hub.drop_after[FILE] = 1000  # the retry path logs a warning
    script = (
        "import logging, sys\n"
        "from llama_tui.engine.hub import download_gguf, search_gguf_models\n"
        "download_gguf(sys.argv[2], sys.argv[3], on_progress=lambda p: None, endpoint=sys.argv[1])\n"
        "search_gguf_models('tiny', endpoint=sys.argv[1])\n"
        "logging.getLogger('huggingface_hub.file_download').warning('library chatter')\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", script, hub.endpoint, REPO, FILE], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert hub.ranges("/resolve/") == [None, "bytes=1000-"]  # the warning path did run
    assert are_progress_bars_disabled()


def test_errors_share_one_base() -> None:
    for cls in (HubAuthError, HubNotFound, HubOffline, HubDiskFull, DownloadCancelled):
        assert issubclass(cls, HubError)
