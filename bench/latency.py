"""Latency: how long the user waits where the tests only count what happens.

What (medians over --rounds; the file and Hub rounds interleaved):
  header         read_gguf_header on the starter model (253 MB), and the bytes it read
  list           list_models over the starter, three tiny models, a broken file and an
                 HF-cache copy of the starter (what the picker shows on opening)
  check, first   check_model_file on the starter with an empty verdict cache (a trial load
                 in a child process)
  check, cached  the same file again (the verdict from the cache)
  hub refused    search with nothing listening, to HubOffline
  hub connect    search where connection attempts go unanswered, with a 0.5 s connect
                 timeout (the app's is 5 s), to HubOffline
  hub read       search where the server accepts and never answers, with a 0.5 s read
                 timeout, to HubOffline
  stop prompt    Gemma evaluating a ~1,700-token prompt, stopped 0.3 s in: from cancel()
                 to the Finished event (a batch of 512 tokens takes about a second here)

Why: these were once wall-clock thresholds in tests (test_gguf_header, test_catalog,
test_file_check, test_hub, test_engine), which fail on a loaded machine. The tests now
assert what makes them quick (headers only, no child on a cache hit, one connection
attempt, a stop inside the batch); the figures live here. The bounds the tests had, with
room for a busy machine: header < 3 s (~30 ms idle), list < 1 s, cached check < 100 ms,
hub refused < 5 s, hub timeouts between 0.4 and 3 s with 0.5 s set, stop < 1.5 s.

    .venv/bin/python bench/latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import benchlib

REPO = "acme/Tiny-GGUF"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@contextmanager
def fresh_home() -> Iterator[Path]:
    """An empty app home and HF cache (the verdict cache starts empty), the starter linked in."""
    previous = {name: os.environ.get(name) for name in ("LLAMA_TUI_HOME", "HF_HUB_CACHE")}
    with tempfile.TemporaryDirectory(prefix="llama-tui-bench-") as folder:
        home = Path(folder) / "home"
        os.environ["LLAMA_TUI_HOME"] = str(home)
        os.environ["HF_HUB_CACHE"] = str(Path(folder) / "hf" / "hub")
        linked = home / "cache" / "models" / STARTER.name
        linked.parent.mkdir(parents=True)
        linked.symlink_to(STARTER)
        try:
            yield Path(folder)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def list_setup(folder: Path) -> None:
    from llama_tui.engine.catalog import models_folder
    from tests.test_catalog import _add_to_hf_cache
    from tests.tiny_gguf import write_not_a_gguf, write_tiny_llama_gguf

    models = models_folder()
    for seed in range(3):
        write_tiny_llama_gguf(models / f"tiny-{seed}.gguf", seed=seed)
    write_not_a_gguf(models / "broken.gguf")
    _add_to_hf_cache(folder / "hf" / "hub", "unsloth/gemma-3-270m-it-GGUF", "gemma-copy.gguf", STARTER)


def offline(call: Callable[[], object]) -> float:
    from llama_tui.engine.hub import HubOffline

    started = time.perf_counter()
    try:
        call()
    except HubOffline:
        return time.perf_counter() - started
    raise AssertionError("the Hub call did not fail as offline")


def refused_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def unanswered_endpoint() -> Iterator[str]:
    """A listener with a full accept queue: Linux drops further SYNs (as in tests/test_hub.py)."""
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
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for s in (*fillers, server):
            s.close()


@contextmanager
def silent_endpoint() -> Iterator[str]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        host, port = server.getsockname()
        yield f"http://{host}:{port}"


def stop_latency(model) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Seconds from cancel() to Finished, 0.3 s into a long prompt; and the tokens evaluated."""
    from llama_tui.engine.events import Finished
    from llama_tui.engine.settings import SamplingSettings

    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.perf_counter())
        model.cancel()

    timer = threading.Timer(0.3, cancel)
    timer.start()
    text = "The quick brown fox jumps over the lazy dog. " * 170
    for event in model.complete(text, SamplingSettings(temperature=0.0)):
        if isinstance(event, Finished):
            ended = time.perf_counter()
            timer.cancel()
            if not cancelled_at:
                raise AssertionError("the prompt was done before the stop: make it longer")
            return ended - cancelled_at[0], event.stats.prompt_evaluated
    raise AssertionError("no Finished event")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    benchlib.quiet_native_log()

    from llama_tui.engine import hub
    from llama_tui.engine.catalog import list_models
    from llama_tui.engine.file_check import check_model_file
    from llama_tui.engine.gguf_header import read_gguf_header
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.settings import LoadSettings
    from tests.file_reads import count_reads

    with count_reads() as reads:
        header = read_gguf_header(STARTER)
    header_mb = reads.bytes[STARTER.resolve()] / 1e6

    samples: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    for _ in range(args.rounds):
        add("header", timed(lambda: read_gguf_header(STARTER)))
        with fresh_home() as folder:
            list_setup(folder)
            add("list", timed(list_models))
            add("check, first", timed(lambda: check_model_file(STARTER)))
            add("check, cached", timed(lambda: check_model_file(STARTER)))
        add("hub refused", offline(lambda: hub.search_gguf_models("tiny", endpoint=refused_endpoint())))
        connect, read = hub._CONNECT_TIMEOUT, hub._READ_TIMEOUT
        hub._CONNECT_TIMEOUT = hub._READ_TIMEOUT = 0.5
        try:
            with unanswered_endpoint() as endpoint:
                add("hub connect", offline(lambda: hub.search_gguf_models("tiny", endpoint=endpoint)))
            with silent_endpoint() as endpoint:
                add("hub read", offline(lambda: hub.search_gguf_models("tiny", endpoint=endpoint)))
        finally:
            hub._CONNECT_TIMEOUT, hub._READ_TIMEOUT = connect, read

    model = LoadedModel.load(STARTER, LoadSettings(n_ctx=2048))
    evaluated: list[int] = []
    try:
        for _ in range(args.rounds):
            seconds, tokens = stop_latency(model)
            add("stop prompt", seconds)
            evaluated.append(tokens)
    finally:
        model.close()

    ms = {name: benchlib.median(values) * 1000 for name, values in samples.items()}  # type: ignore[operator]
    notes = {
        "header": f"{header_mb:.1f} MB read of {header.file_size / 1e6:.0f} MB "
                  f"(header: {header.data_offset / 1e6:.1f} MB)",
        "check, first": "a trial load in a child process",
        "hub connect": "connect timeout 0.5 s",
        "hub read": "read timeout 0.5 s",
        "stop prompt": f"prompt tokens evaluated before the stop: {sorted(evaluated)}",
    }
    benchlib.print_table(
        ["what", "median ms", "min ms", "max ms", "note"],
        [[name, f"{ms[name]:.1f}", f"{min(values) * 1000:.1f}", f"{max(values) * 1000:.1f}", notes.get(name, "")]
         for name, values in samples.items()],
    )
    out = benchlib.write_results("latency", {
        "rounds": args.rounds,
        "median_ms": ms,
        "samples_ms": {name: [v * 1000 for v in values] for name, values in samples.items()},
        "header_bytes_read": reads.bytes[STARTER.resolve()],
        "header_size": header.data_offset,
        "stop_prompt_evaluated": evaluated,
    })
    print(f"results: {out.relative_to(benchlib.ROOT)}")


STARTER = benchlib.starter_model()

if __name__ == "__main__":
    main()
