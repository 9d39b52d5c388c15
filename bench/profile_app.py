"""Where the app's UI thread spends its time while a reply streams (cProfile).

What: one Markdown-heavy reply of decode_speed.py through the headless app, with cProfile
on the UI (event-loop) thread only; prints the UI thread's CPU time per token, the decode
tok/s, and the top functions. With 2 llama.cpp threads on 2 cores, every millisecond the UI
thread spends is taken from a decode thread, so this is where app/binding is lost.

--what-if SPEC runs the app with a change tried from outside (see bench/what_if.py);
--no-profile measures CPU time only, without cProfile.

    .venv/bin/python bench/profile_app.py [--tokens 320] [--top 25] [--sort tottime|cumulative]
                                          [--what-if SPEC] [--no-profile] [--save FILE.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time

import benchlib
import decode_speed
from what_if import what_if


async def profiled_reply(tokens: int, threads: int, app_class, profiler: cProfile.Profile | None) -> dict:
    from llama_tui.launch import LaunchOptions

    load, sampling = decode_speed.settings(threads, tokens)
    options = LaunchOptions.opening(benchlib.starter_model(), load=load, sampling=sampling,
                            system_prompt=decode_speed.SYSTEM_PROMPT)
    from textual.css.stylesheet import Stylesheet

    from llama_tui.ui.messages import ReplyReady

    # Deterministic counts, unlike times on a shared machine: CSS applications and drains.
    counts = {"css_applies": 0, "drains": 0}
    original_apply = Stylesheet.apply

    def counting_apply(self, *args, **kwargs):
        counts["css_applies"] += 1
        return original_apply(self, *args, **kwargs)

    def count_drains(message) -> None:
        counts["drains"] += isinstance(message, ReplyReady)

    app = app_class(options)
    async with app.run_test(size=decode_speed.APP_SIZE, message_hook=count_drains) as pilot:
        await benchlib.wait_until(lambda: app.model is not None)
        cpu, wall = time.thread_time(), time.perf_counter()
        counts.update(css_applies=0, drains=0)
        Stylesheet.apply = counting_apply
        if profiler:
            profiler.enable()
        await benchlib.send_chat(pilot, decode_speed.USER_MESSAGE)
        await benchlib.wait_until(lambda: app.last_stats is not None and not app.generating, poll=0.05)
        if profiler:
            profiler.disable()
        Stylesheet.apply = original_apply
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        stats = app.last_stats
        assert stats is not None
        return {"ui_cpu_seconds": cpu, "wall_seconds": wall, "tokens": stats.generated_tokens,
                "tok_s": stats.tokens_per_second, **counts}


def main() -> None:
    from llama_tui.engine.settings import available_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=320)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    parser.add_argument("--what-if", default="", metavar="SPEC", help="e.g. switch=0.001,frame=0.1,css=FILE")
    parser.add_argument("--no-profile", action="store_true", help="measure CPU time only")
    parser.add_argument("--save", help="also write the raw profile here, for pstats or snakeviz")
    args = parser.parse_args()
    benchlib.quiet_native_log()
    profiler = None if args.no_profile else cProfile.Profile()
    with what_if(args.what_if) as app_class:
        result = asyncio.run(profiled_reply(args.tokens, args.threads, app_class, profiler))
    print(f"{result['tokens']} tokens at {benchlib.fmt(result['tok_s'])} tok/s; UI thread CPU "
          f"{result['ui_cpu_seconds']:.2f} s of {result['wall_seconds']:.2f} s wall "
          f"({result['ui_cpu_seconds'] / result['tokens'] * 1000:.2f} ms per token)"
          + ("" if args.no_profile else " (under cProfile)"))
    print(f"{result['drains']} drains (ReplyReady), {result['css_applies']} CSS rule applications "
          f"({result['css_applies'] / max(result['drains'], 1):.1f} per drain), "
          f"UI CPU {result['ui_cpu_seconds'] / max(result['drains'], 1) * 1000:.1f} ms per drain")
    if profiler is None:
        return
    if args.save:
        profiler.dump_stats(args.save)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
