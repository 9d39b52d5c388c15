"""Optional: llama.cpp's own llama-bench on the starter model, against the app's figures.

What: builds only the `llama-bench` target from the llama.cpp source vendored in the
llama-cpp-python sdist of the installed version (pip download from PyPI, cmake, into
bench/.build, which git ignores), then runs, round after round, llama-bench's text generation
(decode_speed.py's reply length at its prompt's depth, the same threads, flash attention off
as in the binding; and once more with llama-bench's default, auto), decode_speed.py's bare
binding, and the whole app. Ratios are taken within each round (target app/llama-bench
>= 0.95, issue 12; it was 0.92).

Why: the bare binding is itself Python; llama-bench is the floor-free C++ figure. Skips with a
message (exit 0) when the download or the build fails.

    .venv/bin/python bench/llama_bench.py [--rounds 4] [--tokens 320] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import benchlib
import decode_speed

BUILD = benchlib.ROOT / "bench" / ".build"


def run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        skip(f"llama-bench failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)[0]


def skip(reason: str) -> None:
    print(f"llama-bench skipped: {reason}")
    sys.exit(0)


def build() -> Path:
    """bench/.build/llama-bench, built once from the sdist of the installed llama-cpp-python."""
    wanted = version("llama_cpp_python")
    cmake_dir = BUILD / "cmake"
    binary = cmake_dir / "bin" / "llama-bench"  # beside the shared libraries it loads
    stamp = cmake_dir / "built-from.txt"
    if binary.exists() and stamp.exists() and stamp.read_text() == wanted:
        return binary
    BUILD.mkdir(parents=True, exist_ok=True)
    sdists = sorted(BUILD.glob(f"llama_cpp_python-{wanted}.tar.gz"))
    if not sdists:
        print(f"downloading the llama-cpp-python {wanted} sdist ...", flush=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               f"llama-cpp-python=={wanted}", "-d", str(BUILD)], capture_output=True, text=True)
        sdists = sorted(BUILD.glob(f"llama_cpp_python-{wanted}.tar.gz"))
        if done.returncode or not sdists:
            skip(f"pip download failed: {done.stderr.strip().splitlines()[-1:]}")
    source = BUILD / f"llama_cpp_python-{wanted}"
    if not source.exists():
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(BUILD, filter="data")
    llama_cpp_dir = source / "vendor" / "llama.cpp"
    print("building llama-bench (a few minutes on 2 cores) ...", flush=True)
    steps = [
        ["cmake", "-S", str(llama_cpp_dir), "-B", str(cmake_dir), "-DCMAKE_BUILD_TYPE=Release",
         "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"],
        ["cmake", "--build", str(cmake_dir), "--target", "llama-bench", "-j", "2"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            (BUILD / "build.log.tmp").write_text(done.stdout + done.stderr)
            skip(f"`{' '.join(step[:3])} ...` failed; see bench/.build/build.log.tmp")
    if not binary.exists():
        skip("the build produced no bin/llama-bench")
    stamp.write_text(wanted)
    return binary


def main() -> None:
    from llama_tui.engine.settings import default_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--tokens", type=int, default=320)
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="llama.cpp threads for every variant (default: the app's default, cores - 1)")
    args = parser.parse_args()

    binary = build()
    benchlib.quiet_native_log()
    path = benchlib.starter_model()
    prompt_tokens = decode_speed.chat_prompt_tokens(path, args.threads, args.tokens)
    base = [str(binary), "-m", str(path), "-p", "0", "-n", str(args.tokens), "-d", str(len(prompt_tokens)),
            "-t", str(args.threads), "-r", "1", "-o", "json"]
    # The binding and the app create their context with flash attention off (llama-cpp-python's
    # default); llama-bench's default "auto" turns it on, which is a different computation.
    # The comparison uses the same setting; "auto" is run and reported beside it.
    command = [*base, "-fa", "off"]
    print(f"tg{args.tokens} at depth {len(prompt_tokens)}, {args.threads} threads; "
          f"{args.rounds} interleaved rounds of llama-bench, binding, app", flush=True)

    # Side by side, round after round: the machine's load changes within minutes, so each
    # round's ratios compare runs made under the same load.
    runs: dict[str, list[float]] = {
        "llama-bench": [], "llama-bench, flash attention auto": [], "binding": [], "app": []
    }
    for round_ in range(1, args.rounds + 1):
        runs["llama-bench"].append(run(command)["avg_ts"])
        runs["llama-bench, flash attention auto"].append(run(base)["avg_ts"])
        runs["binding"].append(decode_speed.run_binding(path, args.threads, args.tokens, prompt_tokens)["tok_s"])
        runs["app"].append(asyncio.run(decode_speed.run_app(path, args.threads, args.tokens))["tok_s"])
        print(f"round {round_}: " + "  ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items()), flush=True)

    reference = runs["llama-bench"]
    summary = {}
    for name, speeds in runs.items():
        summary[name] = {
            "tok_s": benchlib.median(speeds),
            "best_tok_s": max(speeds),
            "ratio_to_llama_bench": benchlib.median([x / b for x, b in zip(speeds, reference, strict=True)]),
            "best_ratio_to_llama_bench": max(speeds) / max(reference),
        }
    print()
    benchlib.print_table(
        ["variant", "tok/s (median)", "best", "ratio to llama-bench (median of rounds)", "ratio of bests"],
        [[name, benchlib.fmt(s["tok_s"]), benchlib.fmt(s["best_tok_s"]), benchlib.fmt(s["ratio_to_llama_bench"], 3),
          benchlib.fmt(s["best_ratio_to_llama_bench"], 3)] for name, s in summary.items()],
    )
    app = summary["app"]
    met = lambda r: "met" if r >= 0.95 else "NOT met"  # noqa: E731
    print(f"\napp/llama-bench {app['ratio_to_llama_bench']:.3f} median of rounds ({met(app['ratio_to_llama_bench'])}), "
          f"{app['best_ratio_to_llama_bench']:.3f} ratio of bests ({met(app['best_ratio_to_llama_bench'])}); "
          "target >= 0.95")
    out = benchlib.write_results("llama_bench", {
        "settings": {"threads": args.threads, "tokens": args.tokens, "prompt_tokens": len(prompt_tokens),
                     "rounds": args.rounds, "command": command[1:]},
        "summary": summary,
        "runs": runs,
    })
    print(f"results: {out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
