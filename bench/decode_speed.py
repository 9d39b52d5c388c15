"""Decode speed: the bare binding against the app's engine and the whole app (`make bench`).

What: decode tok/s of the starter model (Gemma 3 270M Q4_K_M) on one Markdown-heavy reply,
through three layers, with the same thread count, prompt tokens, greedy sampling and
reply length, and speculative decoding off (bench/speculative.py measures that), so the
work llama.cpp does is identical:

  a) binding  llama_cpp.Llama.generate() on the prompt tokens, nothing else
  b) engine   LoadedModel.chat(), consuming its events (text decoding, stop scan, stats)
  c) app      LlamaApp headless in run_test(): the message typed and sent with Enter, the
              reply streamed into the real Markdown widget; its figures are app.last_stats

Why: the app must not cost decode speed (target: app/binding >= 0.97). Decode tok/s is
tokens after the first over the time from the first to the last token, the engine's own
GenerationStats.tokens_per_second for b) and c), and measured the same way for a).

The machine is shared and noisy, so the variants run interleaved (a, b, c, a, b, c, ...),
each on a freshly loaded model, and the table shows medians. Ratios are taken within each
round (adjacent runs see similar load) and their median is reported, beside the ratio of
each variant's best run (load only ever slows a run down). "overhead ms/token" is
wall time per token minus llama.cpp's own compute time per token (t_eval): the Python cost
of each layer, which the machine's load disturbs much less than tok/s.

    .venv/bin/python bench/decode_speed.py [--rounds 4] [--tokens 320] [--threads N] [--out NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

import benchlib
from llama_tui.ui.markdown_blocks import split_blocks
from what_if import what_if

# A base model (no instruction tuning) answers in the style of the example it is shown, so
# the system prompt is a transcript with one long Markdown answer. Greedy decoding of this
# prompt gives headings, bullet lists and ```python fences up to the token limit.
SYSTEM_PROMPT = """The assistant answers in long Markdown documents: headings, bullet lists and Python code \
blocks for every item.

User: List the Python string methods, each with an example.
Assistant: # Python string methods

## 1. `upper()`

- Returns the string in capitals
- The original is unchanged

```python
name = "ada"
print(name.upper())  # ADA
```

## 2. `strip()`

- Removes spaces at both ends
- Also removes newlines

```python
line = "  hi  "
print(line.strip())  # hi
```

## 3. `split()`

- Cuts the string into a list
- Splits on spaces by default

```python
words = "a b c".split()
print(words)  # ['a', 'b', 'c']
```

## 4. `replace()`

- Swaps one part for another

```python
print("cat".replace("c", "b"))  # bat
```"""
USER_MESSAGE = "List all the Python dict methods, each with an example."
N_CTX = 2048
APP_SIZE = (120, 40)


def settings(threads: int, tokens: int):
    from llama_tui.engine.settings import LoadSettings, SamplingSettings

    load = LoadSettings(n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads)
    # Speculative decoding off: this measures what the engine and the app cost on top of
    # the same single-token decodes the binding does (bench/speculative.py measures drafting).
    return load, SamplingSettings(temperature=0.0, max_reply_tokens=tokens, speculative="off")


def messages():
    from llama_tui.engine.model import ChatMessage

    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", USER_MESSAGE)]


def per_token_overhead_ms(tokens: int, decode_seconds: float, eval_seconds: float) -> float | None:
    """Wall time per decoded token beyond llama.cpp's compute time: the Python layers' cost."""
    if tokens < 2 or decode_seconds <= 0:
        return None
    return (decode_seconds - eval_seconds) / (tokens - 1) * 1000


def chat_prompt_tokens(path, threads: int, tokens: int) -> list[int]:
    """The exact prompt tokens the engine builds for this chat, for the bare binding."""
    from llama_tui.engine.model import LoadedModel

    load, sampling = settings(threads, tokens)
    probe = LoadedModel.load(path, load)
    try:
        tokens_, _stops, _dropped = probe._fit_chat(messages(), sampling)
    finally:
        probe.close()
    return tokens_


def run_binding(path, threads: int, tokens: int, prompt_tokens: list[int]) -> dict:
    """a) Llama.generate() on the prompt tokens, timed like the engine times itself."""
    import llama_cpp

    from llama_tui.engine.settings import DEFAULT_SEED, SamplingSettings

    defaults = SamplingSettings()
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
        seed=DEFAULT_SEED, verbose=False,
    )
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        llama_cpp.llama_perf_context_reset(llm.ctx)
        generated: list[int] = []
        first = last = 0.0
        for token in llm.generate(
            prompt_tokens, temp=0.0, top_p=defaults.top_p, top_k=defaults.top_k,
            min_p=defaults.min_p, repeat_penalty=defaults.repeat_penalty,
        ):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            last = time.perf_counter()
            first = first or last
            generated.append(token)
            if len(generated) >= tokens:
                break
        perf = llama_cpp.llama_perf_context(llm.ctx)
        text = llm.detokenize(generated).decode("utf-8", errors="replace")
    finally:
        llm.close()
    seconds = last - first
    return {
        "tokens": len(generated),
        "tok_s": (len(generated) - 1) / seconds if seconds > 0 else None,
        "decode_seconds": seconds,
        "llama_eval_tokens": perf.n_eval,
        "llama_eval_seconds": perf.t_eval_ms / 1000,
        "text": text,
    }


def stats_record(stats, text: str) -> dict:
    return {
        "tokens": stats.generated_tokens,
        "tok_s": stats.tokens_per_second,
        "decode_seconds": stats.decode_seconds,
        "llama_eval_tokens": stats.llama_eval_tokens,
        "llama_eval_seconds": stats.llama_eval_seconds,
        "ttft_seconds": stats.time_to_first_token,
        "prompt_tokens": stats.prompt_tokens,
        "text": text,
    }


def run_engine(path, threads: int, tokens: int) -> dict:
    """b) The engine alone: LoadedModel.chat(), every event consumed."""
    from llama_tui.engine.events import Finished
    from llama_tui.engine.model import LoadedModel

    load, sampling = settings(threads, tokens)
    model = LoadedModel.load(path, load)
    try:
        finished = None
        for event in model.chat(messages(), sampling):
            if isinstance(event, Finished):
                finished = event
    finally:
        model.close()
    assert finished is not None
    return stats_record(finished.stats, finished.text)


async def run_app(path, threads: int, tokens: int, app_class=None) -> dict:
    """c) The whole app, headless: type the message, press Enter, wait for the reply to end."""
    from llama_tui.launch import LaunchOptions
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_pane import AssistantMessage
    from llama_tui.ui.messages import ReplyReady

    load, sampling = settings(threads, tokens)
    options = LaunchOptions.opening(path, load=load, sampling=sampling, system_prompt=SYSTEM_PROMPT)
    app = (app_class or LlamaApp)(options)
    drains = 0

    def count_drains(message) -> None:
        nonlocal drains
        drains += isinstance(message, ReplyReady)

    async with app.run_test(size=APP_SIZE, message_hook=count_drains) as pilot:
        await benchlib.wait_until(lambda: app.model is not None)
        sent, ui_cpu = time.perf_counter(), time.thread_time()
        await benchlib.send_chat(pilot, USER_MESSAGE)
        # Cheap attribute checks only: a DOM query per poll would add UI work of our own.
        await benchlib.wait_until(lambda: app.last_stats is not None and not app.generating, poll=0.05)
        wall, ui_cpu = time.perf_counter() - sent, time.thread_time() - ui_cpu
        reply = app.query_one(AssistantMessage)
        assert reply.has_class("ended")
        blocks = collections.Counter(block.kind for block in split_blocks(reply.text))
        stats = app.last_stats
        record = stats_record(stats, reply.text)
        record["markdown_blocks"] = dict(sorted(blocks.items()))
        record["send_to_reply_end_seconds"] = wall
        # The event loop runs on this thread, so this is the UI's CPU time (plus our polling).
        record["ui_cpu_seconds"] = ui_cpu
        record["ui_core_share"] = ui_cpu / wall
        record["drains"] = drains
        return record


def main() -> None:
    from llama_tui.engine.settings import default_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of a, b, c (default 4)")
    parser.add_argument("--tokens", type=int, default=320, help="reply length in tokens (default 320)")
    # The app's own default (all cores but one): what a user of the app gets. run_all.py also
    # runs it with every core, where llama.cpp's threads compete with the UI for the cores.
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="llama.cpp threads for every variant (default: the app's default, cores - 1)")
    parser.add_argument("--out", default="decode_speed",
                        help="results file name in bench/results (default decode_speed)")
    parser.add_argument("--what-if", metavar="SPEC", action="append", default=[],
                        help="add a variant: the app with a change tried from outside, e.g. "
                        "switch=0.001,frame=0.1,css-without=:last-child (see bench/what_if.py); repeatable")
    args = parser.parse_args()

    benchlib.quiet_native_log()
    path = benchlib.starter_model()
    prompt_tokens = chat_prompt_tokens(path, args.threads, args.tokens)
    print(f"starter model {path.name}; {args.threads} threads; prompt {len(prompt_tokens)} tokens; "
          f"reply {args.tokens} tokens, greedy; {args.rounds} interleaved rounds")

    runs: dict[str, list[dict]] = {"binding": [], "engine": [], "app": []}
    for spec in args.what_if:
        runs[f"app, {spec}"] = []
    for round_ in range(1, args.rounds + 1):
        runs["binding"].append(run_binding(path, args.threads, args.tokens, prompt_tokens))
        runs["engine"].append(run_engine(path, args.threads, args.tokens))
        runs["app"].append(asyncio.run(run_app(path, args.threads, args.tokens)))
        for spec in args.what_if:
            with what_if(spec) as app_class:
                runs[f"app, {spec}"].append(asyncio.run(run_app(path, args.threads, args.tokens, app_class)))
        print(f"round {round_}: " + "  ".join(f"{k} {benchlib.fmt(v[-1]['tok_s'])} tok/s" for k, v in runs.items()))

    # The work must be identical: same number of tokens, same text.
    reference = runs["binding"][0]
    identical = all(
        r["tokens"] == reference["tokens"] and r["text"].strip() == reference["text"].strip()
        for rs in runs.values() for r in rs
    )
    print("\ntokens per run: " + ", ".join(f"{k} {sorted({r['tokens'] for r in v})}" for k, v in runs.items())
          + f"; identical text in all runs: {identical}")
    app_run = runs["app"][0]
    print(f"Markdown blocks in the app's reply: {app_run['markdown_blocks']}")
    app_ui = {}
    for name in [n for n in runs if n.startswith("app")]:
        app_ui[name] = {
            "core_share": benchlib.median([r["ui_core_share"] for r in runs[name]]),
            "cpu_ms_per_drain": benchlib.median([r["ui_cpu_seconds"] / r["drains"] * 1000 for r in runs[name]]),
            "drains": benchlib.median([r["drains"] for r in runs[name]]),
        }
        print(f"{name} UI thread while streaming: {app_ui[name]['core_share']:.0%} of a core, "
              f"{app_ui[name]['cpu_ms_per_drain']:.1f} ms CPU per drain, "
              f"{app_ui[name]['drains']:.0f} drains per reply (medians)")
    print("reply starts:\n    " + "\n    ".join(reference["text"].strip()[:360].splitlines()) + "\n    ...")

    summary: dict[str, dict] = {}
    for name, rs in runs.items():
        speeds = [r["tok_s"] for r in rs if r["tok_s"]]
        summary[name] = {
            "tok_s": benchlib.median(speeds),
            "best_tok_s": max(speeds),
            "spread": max(speeds) / min(speeds),
            "llama_compute_tok_s": benchlib.median(
                [(r["llama_eval_tokens"] / r["llama_eval_seconds"]) if r["llama_eval_seconds"] else None for r in rs]
            ),
            "overhead_ms_per_token": benchlib.median(
                [per_token_overhead_ms(r["tokens"], r["decode_seconds"], r["llama_eval_seconds"]) for r in rs]
            ),
        }
    for name in [n for n in runs if n != "binding"]:
        summary[name]["ratio_to_binding"] = benchlib.median(
            [x["tok_s"] / b["tok_s"] for x, b in zip(runs[name], runs["binding"], strict=True)
             if x["tok_s"] and b["tok_s"]]
        )
        # Other work on the machine only ever slows a run down, so the best run of each
        # variant is the steadiest estimate of its speed on an idle machine.
        summary[name]["best_ratio_to_binding"] = summary[name]["best_tok_s"] / summary["binding"]["best_tok_s"]
    print()
    benchlib.print_table(
        ["variant", "decode tok/s (median)", "best", "llama.cpp compute tok/s", "overhead ms/token",
         "ratio to binding (median)", "ratio of bests"],
        [
            [name, benchlib.fmt(s["tok_s"]), benchlib.fmt(s["best_tok_s"]), benchlib.fmt(s["llama_compute_tok_s"]),
             benchlib.fmt(s["overhead_ms_per_token"], 2), benchlib.fmt(s.get("ratio_to_binding"), 3),
             benchlib.fmt(s.get("best_ratio_to_binding"), 3)]
            for name, s in summary.items()
        ],
    )
    busy = summary["binding"]["spread"] > 1.25
    if busy:
        print(f"\nWARNING: the bare binding's runs differ by {summary['binding']['spread']:.1f}x: "
              "the machine was busy, so tok/s and the median ratios are unreliable; "
              "trust the ratio of bests, overhead ms/token and UI CPU.")
    app_ratio, app_best = summary["app"]["ratio_to_binding"], summary["app"]["best_ratio_to_binding"]
    met = lambda r: "met" if r is not None and r >= 0.97 else "NOT met"  # noqa: E731
    print(f"\napp/binding {benchlib.fmt(app_ratio, 3)} median of rounds ({met(app_ratio)}), "
          f"{benchlib.fmt(app_best, 3)} ratio of bests ({met(app_best)}); target >= 0.97. "
          f"engine/binding {benchlib.fmt(summary['engine']['ratio_to_binding'], 3)} "
          f"(bests {benchlib.fmt(summary['engine']['best_ratio_to_binding'], 3)})")

    for rs in runs.values():
        for r in rs:
            r["text"] = r["text"][:200]
    # What-if runs go to their own file, so decode_speed.json always holds the plain app.
    path_out = benchlib.write_results("decode_speed_what_if" if args.what_if else args.out, {
        "settings": {"what_if": args.what_if, "threads": args.threads, "tokens": args.tokens, "rounds": args.rounds,
                     "n_ctx": N_CTX, "prompt_tokens": len(prompt_tokens), "model": path.name},
        "identical_work": identical,
        "machine_busy": busy,
        "summary": summary,
        "app_ui": app_ui,
        "runs": runs,
    })
    print(f"results: {path_out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
