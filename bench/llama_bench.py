"""Optional: llama.cpp's own llama-bench on the starter model, against the app's figures.

What: builds only the `llama-bench` target from the llama.cpp source vendored in the
llama-cpp-python sdist of the installed version (pip download from PyPI, cmake, into
bench/.build, which git ignores), runs text generation of as many tokens as decode_speed.py
with the same thread count, flash attention off as in the binding, and a prompt-sized
context depth, and compares its tok/s with bench/results/decode_speed.json (target
app/llama-bench >= 0.92).

Why: the bare binding is itself Python; llama-bench is the floor-free C++ figure. Skips with a
message (exit 0) when the download or the build fails.

    .venv/bin/python bench/llama_bench.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import benchlib

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    decode_file = benchlib.RESULTS / "decode_speed.json"
    if not decode_file.exists():
        skip("run bench/decode_speed.py first")
    decode = json.loads(decode_file.read_text())
    s = decode["settings"]

    binary = build()
    base = [str(binary), "-m", str(benchlib.starter_model()), "-p", "0", "-n", str(s["tokens"]),
            "-d", str(s["prompt_tokens"]), "-t", str(s["threads"]), "-r", str(args.reps), "-o", "json"]
    # The binding and the app create their context with flash attention off (llama-cpp-python's
    # default); llama-bench's default "auto" turns it on, which is a different computation
    # (~1.5% faster here). The comparison uses the same setting; "auto" is reported beside it.
    command = [*base, "-fa", "off"]
    result = run(command)
    default_result = run(base)
    bench_tok_s = result["avg_ts"]
    summary = decode["summary"]
    rows = [["llama-bench (C++)", benchlib.fmt(bench_tok_s), "1.000"]]
    for name in ("binding", "engine", "app"):
        rows.append([name, benchlib.fmt(summary[name]["tok_s"]), benchlib.fmt(summary[name]["tok_s"] / bench_tok_s, 3)])
    print(f"tg{s['tokens']} at depth {s['prompt_tokens']}, {s['threads']} threads, {args.reps} reps: "
          f"{bench_tok_s:.1f} ± {result['stddev_ts']:.1f} tok/s (decode_speed.py figures: medians)\n")
    benchlib.print_table(["variant", "tok/s", "ratio to llama-bench"], rows)
    ratio = summary["app"]["tok_s"] / bench_tok_s
    print(f"\napp/llama-bench {ratio:.3f} (target >= 0.92: {'met' if ratio >= 0.92 else 'NOT met'}); "
          f"llama-bench with its default flash attention (auto): {default_result['avg_ts']:.1f} tok/s")
    out = benchlib.write_results("llama_bench", {"command": command[1:], "llama_bench": result,
                                                 "default_flash_attention": default_result,
                                                 "ratios": {r[0]: r[2] for r in rows}})
    print(f"results: {out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
