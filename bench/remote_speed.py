"""Remote speed: decode tok/s through RemoteModel against the server's own figure, and time
to the first token, local against remote, on the same model file.

What, round after round (interleaved, so each round's variants see the same machine load):

  local             LoadedModel.chat() on the file, in this process
  llama-server      RemoteModel.chat() against llama.cpp's llama-server on the same file:
                    tok/s as the client sees it (tokens after the first over the time from the
                    first to the last arriving, GenerationStats.tokens_per_second) and the
                    server's own timings.predicted_per_second for the same reply; their ratio
                    is taken within each reply (target >= 0.97)
  llama-cpp-python  RemoteModel.chat() against llama-cpp-python's server (which reports no
                    speed of its own: client figures only), with its defaults, and once more
                    with --logits_all false: its default (true) computes the logits of every
                    prompt token, which costs prompt time with a large vocabulary

TTFT is from chat() to the first TextDelta, by the same clock for all; for llama-server, the
part of it beyond the server's own prompt time (timings.prompt_ms) is the cost of going
through HTTP, the server's queue and the client. The system prompt
starts with the round's number, so neither a server's prompt cache nor the local engine's KV
cache reuses an earlier prompt: every TTFT includes evaluating the whole prompt. The servers
get the app's threads (cores - 1, leaving a core for the client as the app leaves one for its
UI), flash attention off (llama-cpp-python's default), one slot, the same context.

llama-server is built once from the llama.cpp vendored in the installed llama-cpp-python's
sdist, into bench/.build/cmake-server (as llama_bench.py builds llama-bench; git ignores it),
or taken from --llama-server PATH. If it cannot be built, its rows are skipped, said so.

    .venv/bin/python bench/remote_speed.py [--rounds 4] [--tokens 256] [--tiny] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import benchlib
import decode_speed

BUILD = benchlib.ROOT / "bench" / ".build"
N_CTX = 2048


def build_llama_server() -> Path | None:
    """bench/.build/cmake-server/bin/llama-server, built once; None (and why) if it cannot be."""
    wanted = version("llama_cpp_python")
    cmake_dir = BUILD / "cmake-server"
    binary = cmake_dir / "bin" / "llama-server"
    stamp = cmake_dir / "built-from.txt"
    if binary.exists() and stamp.exists() and stamp.read_text() == wanted:
        return binary
    BUILD.mkdir(parents=True, exist_ok=True)
    sdists = sorted(BUILD.glob(f"llama_cpp_python-{wanted}.tar.gz"))
    if not sdists:
        print(f"downloading the llama-cpp-python {wanted} sdist ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={wanted}", "-d", str(BUILD)], capture_output=True, text=True, check=False)
        sdists = sorted(BUILD.glob(f"llama_cpp_python-{wanted}.tar.gz"))
        if not sdists:
            print("llama-server skipped: the sdist could not be downloaded")
            return None
    source = BUILD / f"llama_cpp_python-{wanted}"
    if not source.exists():
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(BUILD, filter="data")
    print("building llama-server (10-30 min on 2 cores) ...", flush=True)
    steps = [
        # No web UI (nothing to download), no curl or TLS: the server alone.
        ["cmake", "-S", str(source / "vendor" / "llama.cpp"), "-B", str(cmake_dir), "-DCMAKE_BUILD_TYPE=Release",
         "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_APP=OFF"],
        ["cmake", "--build", str(cmake_dir), "--target", "llama-server", "-j", "2"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            (BUILD / "server-build.log.tmp").write_text(done.stdout + done.stderr)
            print(f"llama-server skipped: `{' '.join(step[:3])} ...` failed; see bench/.build/server-build.log.tmp")
            return None
    if not binary.exists():
        print("llama-server skipped: the build produced no bin/llama-server")
        return None
    stamp.write_text(wanted)
    return binary


def messages(round_: int) -> list:
    from llama_tui.engine.conversation import ChatMessage

    # The round first: no prompt cache anywhere can reuse the previous round's prompt.
    return [ChatMessage("system", f"Session {round_}. {decode_speed.SYSTEM_PROMPT}"),
            ChatMessage("user", decode_speed.USER_MESSAGE)]


def one_reply(model: object, round_: int, tokens: int) -> dict:
    from llama_tui.engine.events import Finished, TextDelta
    from llama_tui.engine.settings import SamplingSettings

    sampling = SamplingSettings(temperature=0.0, max_reply_tokens=tokens)
    first_delta_ttft = None
    finished = None
    for event in model.chat(messages(round_), sampling, seed=1):  # type: ignore[attr-defined]
        if isinstance(event, TextDelta) and first_delta_ttft is None:
            first_delta_ttft = event.stats.time_to_first_token
        if isinstance(event, Finished):
            finished = event
    assert finished is not None
    stats = finished.stats
    record = {"tokens": stats.generated_tokens, "tok_s": stats.tokens_per_second,
              "ttft_seconds": first_delta_ttft, "prompt_tokens": stats.prompt_tokens}
    timings = getattr(model, "last_server_timings", None)
    if timings:
        record["server_tok_s"] = timings.get("predicted_per_second")
        if first_delta_ttft is not None:
            record["ttft_beyond_server_prompt_ms"] = first_delta_ttft * 1000 - timings.get("prompt_ms", 0.0)
        record["server_timings"] = timings
        if record["tok_s"] and record["server_tok_s"]:
            record["ratio"] = record["tok_s"] / record["server_tok_s"]
    return record


def main() -> None:
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.remote import RemoteModel
    from llama_tui.engine.settings import LoadSettings, default_threads
    from tests.openai_server import llama_cpp_python_server, llama_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model instead of the starter")
    parser.add_argument("--llama-server", type=Path, help="a llama-server binary to use instead of building one")
    parser.add_argument("--without-llama-server", action="store_true", help="only local and llama-cpp-python")
    args = parser.parse_args()

    benchlib.quiet_native_log()
    path = benchlib.tiny_model() if args.tiny else benchlib.starter_model()
    binary = None if args.without_llama_server else args.llama_server or build_llama_server()
    logs = benchlib.RESULTS / "remote_speed.logs.tmp"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"{path.name}, {args.threads} threads, {args.tokens} tokens, {args.rounds} interleaved rounds", flush=True)

    lcp_fast = "llama-cpp-python --logits_all false"
    runs: dict[str, list[dict]] = {"local": [], "llama-server": [], "llama-cpp-python": [], lcp_fast: []}
    local = LoadedModel.load(path, LoadSettings(n_ctx=N_CTX, n_threads=args.threads, n_threads_batch=args.threads))
    try:
        with llama_cpp_python_server(path, logs / "llama-cpp-python.log", n_ctx=N_CTX,
                                     threads=args.threads) as lcp_server, \
                llama_cpp_python_server(path, logs / "llama-cpp-python-fast.log", n_ctx=N_CTX, threads=args.threads,
                                        extra_args=("--logits_all", "false")) as lcp_fast_server, \
                (llama_server(binary, path, logs / "llama-server.log", n_ctx=N_CTX, threads=args.threads)
                 if binary else _nothing()) as cpp_server:
            remotes = {"llama-cpp-python": RemoteModel.open(lcp_server.endpoint),
                       lcp_fast: RemoteModel.open(lcp_fast_server.endpoint)}
            if cpp_server:
                remotes["llama-server"] = RemoteModel.open(cpp_server.endpoint)
            for round_ in range(1, args.rounds + 1):
                runs["local"].append(one_reply(local, round_, args.tokens))
                for name, remote in remotes.items():
                    runs[name].append(one_reply(remote, round_, args.tokens))
                print(f"round {round_}: " + "  ".join(
                    f"{k} {v[-1]['tok_s'] or 0:.1f} tok/s TTFT {(v[-1]['ttft_seconds'] or 0) * 1000:.0f} ms"
                    + (f" (server {v[-1]['server_tok_s']:.1f})" if v[-1].get("server_tok_s") else "")
                    for k, v in runs.items() if v), flush=True)
            for remote in remotes.values():
                remote.close()
    finally:
        local.close()

    summary = {}
    rows = []
    for name, records in runs.items():
        if not records:
            continue
        entry = {
            "tok_s": benchlib.median([r["tok_s"] for r in records]),
            "ttft_ms": benchlib.median([(r["ttft_seconds"] or 0) * 1000 for r in records]),
            "server_tok_s": benchlib.median([r.get("server_tok_s") for r in records]),
            "client_over_server": benchlib.median([r.get("ratio") for r in records]),
            "ttft_beyond_server_prompt_ms": benchlib.median([r.get("ttft_beyond_server_prompt_ms") for r in records]),
            "tokens": benchlib.median([r["tokens"] for r in records]),
            "prompt_tokens": benchlib.median([r["prompt_tokens"] for r in records]),
        }
        summary[name] = entry
        rows.append([name, benchlib.fmt(entry["tok_s"]), benchlib.fmt(entry["server_tok_s"]),
                     benchlib.fmt(entry["client_over_server"], 3), benchlib.fmt(entry["ttft_ms"], 0),
                     benchlib.fmt(entry["ttft_beyond_server_prompt_ms"], 0), benchlib.fmt(entry["prompt_tokens"], 0),
                     benchlib.fmt(entry["tokens"], 0)])
    benchlib.print_table(["variant", "tok/s (client)", "tok/s (server's own)", "client/server", "TTFT ms",
                          "TTFT beyond the server's prompt ms", "prompt tokens", "tokens"], rows)
    out = benchlib.write_results("remote_speed", {
        "model": path.name, "threads": args.threads, "tokens": args.tokens, "rounds": args.rounds,
        "llama_server": str(binary) if binary else None, "summary": summary, "runs": runs,
    })
    print(f"\nwritten to {out.relative_to(benchlib.ROOT)}")
    print(json.dumps({k: {"tok_s": v["tok_s"], "ttft_ms": v["ttft_ms"], "ratio": v["client_over_server"]}
                      for k, v in summary.items()}))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
