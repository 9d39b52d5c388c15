"""Shared pieces of the benchmark scripts: paths, the test models, the machine, results files.

Every script in bench/ runs as `.venv/bin/python bench/NAME.py` from the repository root;
importing this module first makes the repository (and its tests/ helpers) importable and
points LLAMA_TUI_HOME at .test-home, where the test suite keeps the assembled starter model.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LLAMA_TUI_HOME", str(ROOT / ".test-home"))


# -- models ----------------------------------------------------------------------------

def starter_model() -> Path:
    """Gemma 3 270M Q4_K_M, assembled once into $LLAMA_TUI_HOME (253 MB)."""
    from llama_tui.engine.starter import starter_model_path

    return starter_model_path()


def tiny_model() -> Path:
    """The tests' random-weight tiny llama (~0.6 MB, thousands of tok/s), written once."""
    from tests.tiny_gguf import write_tiny_llama_gguf

    path = Path(os.environ["LLAMA_TUI_HOME"]) / "cache" / "models" / "bench-tiny-llama.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        write_tiny_llama_gguf(partial)
        partial.replace(path)
    return path


def quiet_native_log() -> None:
    """Send llama.cpp's log to Python logging (as the app does), not to the terminal."""
    import logging

    from llama_tui.engine.logs import route_native_log

    route_native_log()
    # A handler on the root logger keeps logging's last-resort stderr printer quiet; the
    # app still adds its own Log-tab handler when it runs.
    logging.getLogger().addHandler(logging.NullHandler())


# -- figures ---------------------------------------------------------------------------

def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain Markdown table, so it can be pasted into docs/benchmarks.md as it is."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))


def malloc_trim() -> bool:
    """Ask glibc to give freed heap memory back to the system; False where there is no glibc."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def vm_rss_mib(field: str = "VmRSS") -> float:
    """A memory figure of this process from /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


# -- the machine and results -------------------------------------------------------------

def machine() -> dict[str, object]:
    """What the figures were measured on."""
    from importlib.metadata import version

    from llama_tui.engine.settings import available_cores

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "cpu": cpu,
        "cores": available_cores(),
        "ram_gib": round(mem_kib / 1024**2, 1),
        "load_average": os.getloadavg(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: version(name) for name in ("llama_cpp_python", "textual", "llama-tui")},
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def write_results(name: str, data: dict[str, object]) -> Path:
    """Write bench/results/NAME.json (via a .tmp file, so a killed run leaves no half file)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str) + "\n")
    partial.replace(path)
    return path


# -- driving the app -------------------------------------------------------------------

async def wait_until(condition: Callable[[], object], timeout: float = 300, poll: float = 0.02) -> None:
    """Poll without Pilot.pause(), which waits for every widget to go idle (UI work we measure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting")
        await asyncio.sleep(poll)


def reply_ended(app: object) -> bool:
    from llama_tui.ui.chat_pane import AssistantMessage

    replies = app.query(AssistantMessage)  # type: ignore[attr-defined]
    return bool(replies) and replies.last().has_class("ended") and not app.generating  # type: ignore[attr-defined]


async def send_chat(pilot: object, text: str) -> None:
    """Type a message into the chat input and press Enter, as a user would."""
    from llama_tui.ui.chat_input import ChatInput

    chat_input = pilot.app.query_one("#chat-input", ChatInput)  # type: ignore[attr-defined]
    chat_input.load_text(text)
    chat_input.focus()
    await pilot.press("enter")  # type: ignore[attr-defined]
