"""`llama_decode` alone, called from Python: the floor under the binding and the app.

What: the starter model with the app's decode threads and flash attention off (as
bench/llama_bench.py runs llama-bench), a 419-token prompt (llama_bench.py's depth), then
320 single-token `llama_decode` calls in a loop that does nothing else: ms per token, best
of 3 runs, for two context sizes.

Why (issue 12): the app is measured against llama-bench (target 0.95). This separates what
llama.cpp costs when called from this process from what the binding and the app add.

    .venv/bin/python bench/raw_decode.py
"""

from __future__ import annotations

import time

import benchlib

TOKENS = 320
DEPTH = 419


def ms_per_token(path: str, n_ctx: int) -> float:
    import llama_cpp

    from llama_tui.engine.settings import default_threads

    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=default_threads(),
                          n_threads_batch=default_threads(), verbose=False)
    batch = llama_cpp.llama_batch_init(1, 0, 1)
    try:
        prompt = llm.tokenize(("hello world " * DEPTH).encode())[:DEPTH]
        llm.eval(prompt)
        pos = len(prompt)
        batch.n_tokens, batch.n_seq_id[0], batch.logits[0] = 1, 1, 1
        batch.seq_id[0][0] = 0
        started = time.perf_counter()
        for i in range(TOKENS):
            batch.token[0], batch.pos[0] = prompt[i % 64], pos + i
            if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
        llama_cpp.llama_synchronize(llm.ctx)
        return (time.perf_counter() - started) * 1000 / TOKENS
    finally:
        llama_cpp.llama_batch_free(batch)
        llm.close()


def main() -> None:
    benchlib.quiet_native_log()
    path = str(benchlib.starter_model())
    sizes = (DEPTH + TOKENS, 2048)
    runs = {n_ctx: [ms_per_token(path, n_ctx) for _ in range(3)] for n_ctx in sizes}
    benchlib.print_table(["n_ctx", "ms per token (best of 3)", "tok/s", "all runs (ms)"],
                         [[n, f"{min(r):.2f}", f"{1000 / min(r):.1f}", ", ".join(f"{x:.2f}" for x in r)]
                          for n, r in runs.items()])


if __name__ == "__main__":
    main()
