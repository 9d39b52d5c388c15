"""Start-up, model load time, and memory over model swaps.

What:
  start-up   a fresh `python` process starting the app (headless, run_test) with no model to
             load, until the first frame is painted: interpreter, imports, compose, layout
  load       time to load a model: a bare llama_cpp.Llama(...), the engine's
             LoadedModel.load, the same call in the app's load worker (the app's own figure,
             ModelLoaded.seconds), and the app from starting it to app.model being set,
             interleaved, same file and settings (the app's defaults: n_ctx 4096)
  memory     VmRSS (and its anonymous part, RssAnon) of one process over 10 swaps
             (LoadedModel.load then close, alternating the tiny and the starter model), after
             each load and each close; then once more after glibc's malloc_trim(0), which
             shows how much of what stays is only freed heap that malloc keeps

Why: the app should open at once, add nothing to llama.cpp's own load time, and give all
of a model's memory back when it is closed or swapped (no growth swap after swap).

    .venv/bin/python bench/startup_memory.py [--rounds 5] [--swaps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import benchlib

APP_SIZE = (120, 40)
NO_MODEL = Path("/nonexistent/no-model.gguf")


# -- children: each runs in a fresh process, prints one JSON line -----------------------------

def child_first_frame() -> None:
    imported = time.time()
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp

    imported = time.time()
    painted: list[float] = []
    display = LlamaApp._display

    def first_display(self, screen, renderable):
        if renderable is not None and not painted:
            painted.append(time.time())
        return display(self, screen, renderable)

    LlamaApp._display = first_display

    from llama_tui.ui.messages import ModelLoadFailed

    failed: list[object] = []

    async def run() -> None:
        app = LlamaApp(LaunchOptions.opening(NO_MODEL))
        def note_failure(message: object) -> None:
            if isinstance(message, ModelLoadFailed):
                failed.append(message)

        async with app.run_test(size=APP_SIZE, message_hook=note_failure):
            await benchlib.wait_until(lambda: painted, poll=0.001)
            # Exit only once the (failing) load is done: a log line arriving while the app
            # shuts down once made the app raise NoMatches; kept so the figure stays comparable.
            await benchlib.wait_until(lambda: failed, poll=0.005)
            await asyncio.sleep(0.1)

    asyncio.run(run())
    print(json.dumps({"imported": imported, "first_frame": painted[0]}))


def child_swaps(swaps: int) -> None:
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.settings import LoadSettings

    benchlib.quiet_native_log()
    models = [benchlib.tiny_model(), benchlib.starter_model()]
    def row(step: str, model: str) -> dict:
        return {"step": step, "model": model, "vm_rss_mib": benchlib.vm_rss_mib(),
                "rss_anon_mib": benchlib.vm_rss_mib("RssAnon")}

    rows = [row("start", "")]
    for i in range(swaps):
        path = models[i % 2]
        model = LoadedModel.load(path, LoadSettings())
        rows.append(row(f"load {i + 1}", path.name))
        model.close()
        rows.append(row(f"close {i + 1}", path.name))
    if benchlib.malloc_trim():
        rows.append(row("malloc_trim(0)", ""))
    print(json.dumps(rows))


def run_child(*args: str) -> object:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the measurements ---------------------------------------------------------------------

def startup(rounds: int) -> dict:
    totals, imports = [], []
    for _ in range(rounds):
        started = time.time()
        result = run_child("first-frame")
        totals.append(result["first_frame"] - started)
        imports.append(result["imported"] - started)
    return {"first_frame_seconds": benchlib.median(totals), "imports_seconds": benchlib.median(imports),
            "runs": totals}


def load_bare(path: Path) -> float:
    import llama_cpp

    from llama_tui.engine.settings import LoadSettings

    s = LoadSettings()
    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=s.n_ctx, n_threads=s.n_threads,
                          n_threads_batch=s.n_threads_batch, verbose=False)
    seconds = time.perf_counter() - started
    llm.close()
    return seconds


def load_engine(path: Path) -> float:
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.settings import LoadSettings

    started = time.perf_counter()
    model = LoadedModel.load(path, LoadSettings())
    seconds = time.perf_counter() - started
    model.close()
    return seconds


async def load_app(path: Path) -> tuple[float, float]:
    """(start → model ready, the app's own figure for its load worker's LoadedModel.load)."""
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.messages import ModelLoaded

    loaded: list[float] = []

    def hook(message: object) -> None:
        if isinstance(message, ModelLoaded):
            loaded.append(message.seconds)

    app = LlamaApp(LaunchOptions.opening(path))
    started = time.perf_counter()
    async with app.run_test(size=APP_SIZE, message_hook=hook):
        await benchlib.wait_until(lambda: app.model is not None, poll=0.005)
        return time.perf_counter() - started, loaded[0]


def load_times(rounds: int) -> dict:
    results = {}
    for label, path in (("starter", benchlib.starter_model()), ("tiny", benchlib.tiny_model())):
        runs: dict[str, list[float]] = {"binding": [], "engine": [], "app": [], "app_worker": []}
        for _ in range(rounds):
            runs["binding"].append(load_bare(path))
            runs["engine"].append(load_engine(path))
            total, worker = asyncio.run(load_app(path))
            runs["app"].append(total)
            runs["app_worker"].append(worker)
        results[label] = {name: benchlib.median(values) for name, values in runs.items()}
        results[label]["runs"] = runs
    return results


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_first_frame() if sys.argv[2] == "first-frame" else child_swaps(int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--swaps", type=int, default=10)
    args = parser.parse_args()
    benchlib.quiet_native_log()

    start = startup(args.rounds)
    print(f"start-up to first frame, no model: {start['first_frame_seconds'] * 1000:.0f} ms "
          f"(of which interpreter and imports {start['imports_seconds'] * 1000:.0f} ms); median of {args.rounds}\n")

    loads = load_times(args.rounds)
    benchlib.print_table(
        ["model load (median ms)", "bare binding", "engine (LoadedModel.load)", "in the app's worker",
         "app start → model ready"],
        [[label, f"{r['binding'] * 1000:.0f}", f"{r['engine'] * 1000:.0f}", f"{r['app_worker'] * 1000:.0f}",
          f"{r['app'] * 1000:.0f}"] for label, r in loads.items()],
    )

    rows = run_child("swaps", str(args.swaps))
    print()
    benchlib.print_table(["step", "model", "VmRSS MiB", "RssAnon MiB"],
                         [[r["step"], r["model"], f"{r['vm_rss_mib']:.0f}", f"{r['rss_anon_mib']:.0f}"] for r in rows])
    closes = [r["vm_rss_mib"] for r in rows if r["step"].startswith("close")]
    loads_starter = [r["vm_rss_mib"] for r in rows if r["step"].startswith("load") and "gemma" in r["model"]]
    trimmed = [r["vm_rss_mib"] for r in rows if r["step"].startswith("malloc_trim")]
    # The first starter load leaves malloc's heap larger once; what matters is growth after it.
    per_swap = (closes[-1] - closes[1]) / (len(closes) - 2) if len(closes) > 2 else None
    memory = {
        "start_mib": rows[0]["vm_rss_mib"],
        "after_first_close_mib": closes[0],
        "after_last_close_mib": closes[-1],
        "growth_over_swaps_mib": closes[-1] - closes[0],
        "growth_per_swap_after_first_starter_mib": per_swap,
        "after_malloc_trim_mib": trimmed[0] if trimmed else None,
        "starter_loaded_mib_max": max(loads_starter),
        "rows": rows,
    }
    print(f"\nVmRSS after closing: first {closes[0]:.0f} MiB, last {closes[-1]:.0f} MiB "
          f"(growth {memory['growth_over_swaps_mib']:+.0f} MiB over {args.swaps} swaps; "
          f"{benchlib.fmt(per_swap, 2)} MiB per swap after the first starter load)"
          + (f"; after malloc_trim(0): {trimmed[0]:.0f} MiB" if trimmed else ""))
    out = benchlib.write_results("startup_memory", {"settings": vars(args), "startup": start, "load": loads,
                                                    "memory": memory})
    print(f"results: {out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
