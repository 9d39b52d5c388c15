"""Memory over many chat turns: what grows per turn, and where.

What: one process runs N chat turns (tiny model, max_reply_tokens 60, n_ctx 2048, so after
~20 turns the oldest turns are dropped from the prompt on every turn) and prints, every few
turns:
  rss        VmRSS, MiB
  heap used  glibc's in-use heap bytes (mallinfo2 uordblks+hblkhd): native and Python
             objects above 512 bytes
  heap free  freed heap that glibc keeps (fordblks): fragmentation, not a leak
  py blocks  sys.getallocatedblocks(): live Python objects (obmalloc blocks)
  gc objs    objects the garbage collector tracks
  widgets    the DOM nodes of the app (app mode only)
  samplers   live llama_cpp LlamaSampler objects (each owns a native sampler chain)

Modes (each in a fresh process):
  app      the whole app driven through Pilot, as tests/test_app.py does
  engine   LoadedModel.chat over the same turns (the conversation grows the same way),
           no UI: splits engine growth from UI growth
Options:
  --tracemalloc   also trace Python allocations (slower) and print the top tracebacks that
                  grew between turn --start (default 10) and the last turn
  (always)        the object types whose counts grew between turn --start and the last
  --trim          call malloc_trim(0) at every checkpoint (shows what is only freed heap)
  MALLOC_ARENA_MAX=2 in the environment is passed to the child as it is.

At the end: RSS after gc.collect() and after malloc_trim(0), and the growth per turn over
the second half of the run (the slope once the caches are warm).

    .venv/bin/python bench/memory_per_turn.py [--mode app|engine|both] [--turns 40] [--every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import json
import os
import subprocess
import sys
import time

import benchlib

SIZE = (110, 36)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


LIBC = _libc()


def mallinfo() -> dict[str, float]:
    """glibc's heap figures in MiB (all arenas): in use and kept free."""
    if LIBC is None or not hasattr(LIBC, "mallinfo2"):
        return {"heap_used": float("nan"), "heap_free": float("nan")}
    LIBC.mallinfo2.restype = _MallInfo2
    info = LIBC.mallinfo2()
    return {"heap_used": (info.uordblks + info.hblkhd) / 2**20, "heap_free": info.fordblks / 2**20}


def live_samplers() -> int:
    from llama_cpp._internals import LlamaSampler

    return sum(1 for o in gc.get_objects() if type(o) is LlamaSampler)


def message(turn: int) -> str:
    return f"Turn {turn}: tell me something new about topic number {turn * 7 % 13}, please."


def checkpoint(turn: int, widgets: int | None, trim: bool) -> dict[str, object]:
    if trim:
        benchlib.malloc_trim()
    row: dict[str, object] = {
        "turn": turn,
        "rss": benchlib.vm_rss_mib(),
        **mallinfo(),
        "py_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "samplers": live_samplers(),
    }
    if widgets is not None:
        row["widgets"] = widgets
    import tracemalloc

    if tracemalloc.is_tracing():
        row["traced"] = tracemalloc.get_traced_memory()[0] / 2**20
    return row


def lru_caches(least: int = 200) -> list[tuple[str, int, int | None]]:
    """functools caches holding at least `least` entries: (name, entries, maxsize)."""
    import functools

    found = []
    for o in gc.get_objects():
        if isinstance(o, functools._lru_cache_wrapper):
            info = o.cache_info()
            if info.currsize >= least:
                found.append((f"{o.__module__}.{o.__qualname__}", info.currsize, info.maxsize))
    return sorted(found, key=lambda row: -row[1])


def type_counts() -> collections.Counter[str]:
    return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


class Probe:
    """Checkpoints, and (with tracemalloc) the snapshot at turn `start` to diff against."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[dict[str, object]] = []
        self.snapshot = None
        self.types: collections.Counter[str] | None = None
        self.extra: dict[str, object] = {}

    def turn_done(self, turn: int, widgets: int | None) -> None:
        if turn % self.args.every == 0 or turn == 1 or turn == self.args.turns:
            self.rows.append(checkpoint(turn, widgets, self.args.trim))
        if turn == self.args.start:
            gc.collect()
            self.types = type_counts()
            if self.args.tracemalloc:
                import tracemalloc

                self.snapshot = tracemalloc.take_snapshot()

    def finish(self) -> None:
        args = self.args
        if args.tracemalloc and self.snapshot is not None:
            import tracemalloc

            gc.collect()
            after = tracemalloc.take_snapshot()
            filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
            stats = after.filter_traces(filters).compare_to(self.snapshot.filter_traces(filters), "traceback")
            self.extra["tracemalloc_top"] = [
                {"size_diff_kib": s.size_diff / 1024, "count_diff": s.count_diff,
                 "traceback": [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in s.traceback]}
                for s in stats[:args.top]
            ]
            by_file = after.filter_traces(filters).compare_to(self.snapshot.filter_traces(filters), "filename")
            self.extra["tracemalloc_by_file"] = [
                {"size_diff_kib": s.size_diff / 1024, "count_diff": s.count_diff,
                 "file": s.traceback[0].filename.split("site-packages/")[-1]}
                for s in by_file[:args.top]
            ]
        if self.types is not None:
            gc.collect()
            growth = type_counts() - self.types
            self.extra["type_growth"] = growth.most_common(args.top)
        self.extra["lru_caches"] = lru_caches()
        self.extra["rss_end"] = benchlib.vm_rss_mib()
        gc.collect()
        self.extra["rss_after_gc"] = benchlib.vm_rss_mib()
        self.extra["heap_after_gc"] = mallinfo()
        self.extra["samplers_after_gc"] = live_samplers()
        benchlib.malloc_trim()
        self.extra["rss_after_trim"] = benchlib.vm_rss_mib()
        print(json.dumps({"rows": self.rows, **self.extra}, default=str))


# -- children ------------------------------------------------------------------------------

def run_engine(args: argparse.Namespace) -> None:
    from llama_tui.engine.events import Finished
    from llama_tui.engine.model import ChatMessage, LoadedModel
    from llama_tui.engine.settings import LoadSettings, SamplingSettings

    benchlib.quiet_native_log()
    probe = Probe(args)
    model = LoadedModel.load(benchlib.tiny_model(), LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    sampling = SamplingSettings(max_reply_tokens=args.max_tokens)
    conversation: list[ChatMessage] = []
    for turn in range(1, args.turns + 1):
        conversation.append(ChatMessage("user", message(turn)))
        finished = None
        for event in model.chat(list(conversation), sampling):
            if isinstance(event, Finished):
                finished = event
        assert finished is not None
        conversation.append(ChatMessage("assistant", finished.text))
        probe.turn_done(turn, None)
    probe.extra["context_used"] = model.context_used
    probe.finish()
    model.close()


def run_app(args: argparse.Namespace) -> None:
    from llama_tui.engine.settings import LoadSettings, SamplingSettings
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_pane import AssistantMessage, ChatPane
    from llama_tui.ui.markdown_view import MarkdownView

    probe = Probe(args)
    options = LaunchOptions(
        model_path=benchlib.tiny_model(),
        load=LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1),
        sampling=SamplingSettings(max_reply_tokens=args.max_tokens),
    )

    async def run() -> None:
        app = LlamaApp(options)
        async with app.run_test(size=SIZE) as pilot:
            await benchlib.wait_until(lambda: app.model is not None)
            for turn in range(1, args.turns + 1):
                await benchlib.send_chat(pilot, message(turn))
                await benchlib.wait_until(
                    lambda turn=turn: len(app.query(AssistantMessage)) == turn and benchlib.reply_ended(app))
                await pilot.pause()
                widgets = sum(1 for _ in app.screen.walk_children(with_self=True))
                probe.turn_done(turn, widgets)
            views = list(app.query(MarkdownView))
            probe.extra["line_cache_entries"] = sum(len(v._line_cache) for v in views)
            probe.extra["rendered_lines"] = sum(len(v._lines.plain) for v in views)
            probe.extra["reply_chars"] = sum(len(v.text) for v in views)
            probe.extra["conversation_chars"] = sum(len(m.content) for m in app.query_one(ChatPane).conversation)
            probe.extra["notifications"] = len(app._notifications)
            probe.extra["screen_query_one_cache"] = len(app.screen._query_one_cache)
            probe.extra["tasks"] = len(asyncio.all_tasks())
            probe.extra["context_used"] = app.model.context_used if app.model else None
            probe.finish()

    asyncio.run(run())


def child(args: argparse.Namespace) -> None:
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(args.frames)
    run_app(args) if args.mode == "app" else run_engine(args)


# -- parent --------------------------------------------------------------------------------

def run_child(mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--turns", str(args.turns), "--every", str(args.every),
           "--start", str(args.start), "--top", str(args.top), "--frames", str(args.frames),
           "--max-tokens", str(args.max_tokens)]
    cmd += ["--tracemalloc"] * args.tracemalloc + ["--trim"] * args.trim
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"{mode} child failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(rows: list[dict], key: str, after: int) -> float | None:
    """Least-squares growth per turn of `key` over the checkpoints from turn `after` on."""
    points = [(r["turn"], r[key]) for r in rows if r["turn"] >= after and key in r]
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def report(mode: str, result: dict, args: argparse.Namespace) -> None:
    rows = result["rows"]
    print(f"\n## {mode}" + (" (tracemalloc)" if args.tracemalloc else "")
          + (" (malloc_trim each checkpoint)" if args.trim else "")
          + (f" MALLOC_ARENA_MAX={os.environ['MALLOC_ARENA_MAX']}" if "MALLOC_ARENA_MAX" in os.environ else ""))
    headers = ["turn", "rss MiB", "heap used MiB", "heap free MiB", "py blocks", "gc objs", "samplers"]
    keys = ["turn", "rss", "heap_used", "heap_free", "py_blocks", "gc_objects", "samplers"]
    if "widgets" in rows[0]:
        headers.append("widgets")
        keys.append("widgets")
    if "traced" in rows[0]:
        headers.append("traced MiB")
        keys.append("traced")
    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else str(v)  # noqa: E731
    benchlib.print_table(headers, [[fmt(r[k]) for k in keys] for r in rows])
    half = args.turns // 2
    per_turn = {
        k: slope(rows, k, half)
        for k in ("rss", "heap_used", "heap_free", "py_blocks", "gc_objects", "widgets", "traced")
    }
    parts = []
    for key, unit, scale in (("rss", "KiB", 1024), ("heap_used", "KiB", 1024), ("heap_free", "KiB", 1024),
                             ("traced", "KiB", 1024), ("py_blocks", "", 1), ("gc_objects", "", 1), ("widgets", "", 1)):
        if per_turn.get(key) is not None:
            parts.append(f"{key} {per_turn[key] * scale:+.1f}{(' ' + unit) if unit else ''}")
    print(f"\nper turn from turn {half} on: " + ", ".join(parts))
    print(f"end: rss {result['rss_end']:.1f} MiB, after gc.collect() {result['rss_after_gc']:.1f}, "
          f"after malloc_trim(0) {result['rss_after_trim']:.1f}; live samplers after gc: {result['samplers_after_gc']}")
    for key in ("line_cache_entries", "rendered_lines", "reply_chars", "conversation_chars", "notifications", "tasks",
                "screen_query_one_cache", "context_used"):
        if key in result:
            print(f"{key}: {result[key]}")
    print("functools caches with 200+ entries (name, entries, max): "
          + "; ".join(f"{name} {size}/{limit}" for name, size, limit in result.get("lru_caches", [])))
    if "tracemalloc_top" in result:
        print(f"\ntracemalloc, turn {args.start} → {args.turns}, top by file:")
        for s in result["tracemalloc_by_file"]:
            print(f"  {s['size_diff_kib']:+9.1f} KiB {s['count_diff']:+7d}  {s['file']}")
        print("\ntop by traceback (innermost last):")
        for s in result["tracemalloc_top"]:
            print(f"  {s['size_diff_kib']:+9.1f} KiB {s['count_diff']:+7d}")
            for frame in s["traceback"][-args.frames:]:
                print(f"        {frame}")
    if "type_growth" in result:
        print(f"\nobjects (gc-tracked) that grew from turn {args.start} to {args.turns}, per turn:")
        span = max(args.turns - args.start, 1)
        for name, count in result["type_growth"]:
            print(f"  {count / span:+8.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["app", "engine", "both"], default="both")
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--trim", action="store_true")
    parser.add_argument("--start", type=int, default=10, help="tracemalloc: the turn to diff from")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--save", metavar="NAME", help="also write bench/results/NAME.json")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = {}
    for mode in (["engine", "app"] if args.mode == "both" else [args.mode]):
        started = time.perf_counter()
        results[mode] = run_child(mode, args)
        report(mode, results[mode], args)
        print(f"({time.perf_counter() - started:.0f} s)")
    if args.save:
        print(benchlib.write_results(args.save, {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
