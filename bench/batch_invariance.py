"""Whether llama.cpp computes a batch of n tokens exactly as the same tokens one at a time.

What: evaluates a short code prompt, then the same 16 reply tokens two ways: one token per
`llama_decode`, and the first n in one batch (the rest one at a time), for n = 2..16, with
logits at every position; prints the largest difference between the two ways' logits. With
and without flash attention, weights repacked as llama.cpp does by default, 1 decode thread
and the app's batch threads. Any model: the starter unless a path is given.

Why (issue 12): speculative decoding verifies drafts in batches. Its greedy replies equal
the ones without it only where a batch rounds exactly as single tokens (difference 0);
docs/benchmarks.md (finding 11) reports where that holds.

    .venv/bin/python bench/batch_invariance.py [MODEL.gguf]
"""

from __future__ import annotations

import sys

import benchlib

REPLY = " def mul(a, b):\n    return a * b\n\ndef div(a, b):\n    return a / b\n"
PROMPT = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n"


def largest_differences(path: str, flash_attn: bool) -> dict[int, float]:
    import llama_cpp
    import numpy as np

    from llama_tui.engine.settings import default_batch_threads

    llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=1, n_threads_batch=default_batch_threads(),
                          flash_attn=flash_attn, verbose=False)
    prompt = llm.tokenize(PROMPT.encode())
    reply = llm.tokenize(REPLY.encode(), add_bos=False)[:16]
    n_vocab = llm.n_vocab()
    batch = llama_cpp.llama_batch_init(len(reply), 0, 1)

    def logits_by(chunks: list[list[int]]) -> list[np.ndarray]:
        llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        llm.eval(prompt)
        pos, rows = len(prompt), []
        for chunk in chunks:
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos + i, 1, 1
                batch.seq_id[i][0] = 0
            if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            rows += [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, i), shape=(n_vocab,)).copy()
                     for i in range(len(chunk))]
            pos += len(chunk)
        return rows

    try:
        single = logits_by([[token] for token in reply])
        return {n: max(float(np.abs(a - b).max())
                       for a, b in zip(logits_by([reply[:n]] + [[t] for t in reply[n:]]), single, strict=True))
                for n in range(2, len(reply) + 1)}
    finally:
        llama_cpp.llama_batch_free(batch)
        llm.close()


def main() -> None:
    benchlib.quiet_native_log()
    path = sys.argv[1] if len(sys.argv) > 1 else str(benchlib.starter_model())
    print(f"{path}: largest |logit difference|, a batch of n against one token at a time")
    rows = {fa: largest_differences(path, fa) for fa in (False, True)}
    benchlib.print_table(["n", "flash attention off", "flash attention on"],
                         [[n, f"{rows[False][n]:.3g}", f"{rows[True][n]:.3g}"] for n in rows[False]])


if __name__ == "__main__":
    main()
