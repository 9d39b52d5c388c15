"""Replay the draft policy on recorded replies: how the choices in engine/drafting.py were made.

What: records the starter model's replies without speculation (the editing tasks of
bench/speculative.py, greedy; its essay and Markdown chat sampled at the app's defaults
with several seeds), then replays PromptLookup and DraftPolicy over each reply, token by
token, as engine/decode_loop.py drives them: each draft is "verified" against the tokens
the model actually wrote next, and each batch costs what bench/speculative.py measured a
llama_decode of that many tokens to cost (results/speculative.json, in units of one
token's decode). Prints the speedup each policy setting would give, per workload.

Why: the policy trades drafts that pay (copied text) against drafts that are rejected
(prose); replaying takes seconds where measuring takes minutes, and it is free of the
machine's noise. It ignores that a batch rounds differently from single tokens (the text
could part after a draft, see tests/test_speculative.py) and the Python time per token.

    .venv/bin/python bench/replay_drafts.py [--seeds 6] [--set arm_after=6 --set max_arm_after=16 ...]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import benchlib
import speculative

COST_FILE = benchlib.RESULTS / "speculative.json"


def batch_cost_table() -> dict[int, float]:
    """llama_decode time for n tokens in units of one token, from speculative.py's last
    run; sizes it did not measure are taken from the next larger size it did."""
    measured = {int(n): c["x_single"] for n, c in json.loads(COST_FILE.read_text())["costs"]["batch"].items()}
    table = {}
    for n in range(1, 17):
        table[n] = measured[min(m for m in measured if m >= n)]
    return table


def record(seeds: int) -> list[dict]:
    """Replies without speculation: prompt tokens and reply tokens."""
    from llama_tui.engine import decode_loop
    from llama_tui.engine.events import Finished
    from llama_tui.engine.model import LoadedModel

    model = LoadedModel.load(benchlib.starter_model(), speculative.load_settings())
    cases = [(name, "edit", speculative.edit_prompt(code, change), speculative.code_tokens(model, code), 0)
             for name, (code, change) in speculative.EDITS.items()]
    for seed in range(1, seeds + 1):
        cases.append(("prose: essay, sampled", "prose", speculative.ESSAY, 320, seed))
        cases.append(("prose: Markdown chat, sampled", "prose", speculative.decode_speed.messages(), 320, seed))
    replies = []
    real_tokens = decode_loop.DecodeLoop.tokens
    try:
        for name, kind, prompt, tokens, seed in cases:
            reply: list[int] = []

            def spy(loop: decode_loop.DecodeLoop, reply: list[int] = reply):  # type: ignore[no-untyped-def]
                for token in real_tokens(loop):
                    reply.append(token)
                    yield token

            decode_loop.DecodeLoop.tokens = spy  # type: ignore[method-assign]
            model.clear_context()
            settings = speculative.sampling(kind, "off", tokens)
            events = (model.chat(prompt, settings, seed=seed) if isinstance(prompt, list)
                      else model.complete(prompt, settings, seed=seed))
            # Run the request to its end: the model is busy until its generator finishes.
            finished = [e for e in events if isinstance(e, Finished)][-1]
            assert model._llm is not None
            replies.append({"name": name, "seed": seed, "reply": reply,
                            "prompt": model._llm.input_ids[: finished.stats.prompt_tokens].tolist()})
    finally:
        decode_loop.DecodeLoop.tokens = real_tokens  # type: ignore[method-assign]
        model.close()
    return replies


def replay(case: dict, mode: str, cost: dict[int, float], **policy: object) -> float:
    """The speedup the policy would give on this reply: tokens over the cost of the batches."""
    from llama_tui.engine.decode_loop import BATCH_ALIGN, MAX_DRAFT
    from llama_tui.engine.drafting import DraftPolicy, PromptLookup

    reply = case["reply"]
    drafts = DraftPolicy(mode, **policy)  # type: ignore[arg-type]
    lookup = PromptLookup(case["prompt"])
    i, spent = 0, 0.0
    while i < len(reply) - 1:
        lookup.append(reply[i])
        draft: list[int] = []
        guess = -1
        if drafts.drafting:
            want = min(drafts.limit(), MAX_DRAFT, len(reply) - i - 2)
            draft = lookup.draft(want)[0] if want > 0 else []
            aligned = (len(draft) + 1) // BATCH_ALIGN * BATCH_ALIGN - 1
            draft = draft[:aligned] if aligned > 0 else []
        else:
            guessed = lookup.draft(1)[0]
            guess = guessed[0] if guessed else -1
        spent += cost[1 + len(draft)]
        if not draft:
            i += 1
            drafts.watched(reply[i] == guess)
            continue
        accepted = 0
        while accepted < len(draft) and reply[i + 1 + accepted] == draft[accepted]:
            accepted += 1
        lookup.extend(reply[i + 1 : i + 1 + accepted])
        drafts.record(len(draft), accepted)
        i += 1 + accepted
    return (len(reply) - 1) / spent


def main() -> None:
    from llama_tui.engine.drafting import DraftPolicy

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=6, help="sampled replies per prose workload (default 6)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a DraftPolicy field for one more replayed variant (repeatable, all in one variant)")
    args = parser.parse_args()
    if not COST_FILE.exists():
        raise SystemExit("run bench/speculative.py first: it measures what each batch size costs")
    benchlib.quiet_native_log()
    cost = batch_cost_table()
    known = {f.name: f.type for f in fields(DraftPolicy)}
    custom: dict[str, object] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in known or key == "mode":
            raise SystemExit(f"no DraftPolicy field {key!r}")
        custom[key] = float(value) if "." in value else int(value)
    variants: list[tuple[str, str, dict[str, object]]] = [("on", "on", {}), ("auto (the default)", "auto", {})]
    if custom:
        variants.append(("auto, " + ", ".join(args.set), "auto", custom))
    replies = record(args.seeds)
    rows = []
    for label, mode, policy in variants:
        by_name: dict[str, list[float]] = {}
        for case in replies:
            by_name.setdefault(case["name"], []).append(replay(case, mode, cost, **policy))
        for name, speedups in by_name.items():
            rows.append([label, name, len(speedups), f"{min(speedups):.2f}", f"{sum(speedups) / len(speedups):.2f}",
                         f"{max(speedups):.2f}"])
    benchlib.print_table(["policy", "workload", "replies", "speedup min", "mean", "max"], rows)


if __name__ == "__main__":
    main()
