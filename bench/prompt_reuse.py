"""Prompt reuse: time to first token and prompt tokens evaluated, turn by turn in one chat.

What: a 20-turn chat on the starter model through the engine (LoadedModel.chat, greedy,
replies of up to 60 tokens, with decode_speed.py's Markdown system prompt so the replies
are long and the prompt grows to ~1,500 tokens). For each turn N: the whole prompt's size, the tokens llama.cpp actually
evaluated (the rest came from the KV cache), and TTFT.

TTFT is the best of the passes for each turn (other work on the shared machine only adds
time); the median is printed beside it. The token counts are exact and do not vary.

Why: the engine keeps the chat's prefix in the KV cache, so each turn should evaluate only
the new user message and the end of the previous reply: tokens evaluated and TTFT should
stay flat while the prompt grows. A rising line means the cached prefix is lost somewhere
(e.g. the reply re-tokenizes differently from how it was generated).

    .venv/bin/python bench/prompt_reuse.py [--turns 20] [--passes 3] [--reply-tokens 60]
"""

from __future__ import annotations

import argparse

import benchlib
import decode_speed

QUESTIONS = [
    "What is a Python list?", "How do I reverse a string?", "What does a dict do?",
    "Explain a for loop.", "What is a tuple?", "How do I read a file?", "What is recursion?",
    "What is a set?", "How do I sort numbers?", "What is a class?", "What is an exception?",
    "How do I write a function?", "What is a module?", "What is a generator?",
    "How do I join strings?", "What is None?", "What is a lambda?", "How do I copy a list?",
    "What is a decorator?", "What is pip?",
]


def one_chat(model, turns: int, reply_tokens: int) -> list[dict]:
    from llama_tui.engine.events import Finished
    from llama_tui.engine.model import ChatMessage
    from llama_tui.engine.settings import SamplingSettings

    sampling = SamplingSettings(temperature=0.0, max_reply_tokens=reply_tokens)
    conversation: list[ChatMessage] = [ChatMessage("system", decode_speed.SYSTEM_PROMPT)]
    rows = []
    for n in range(1, turns + 1):
        conversation.append(ChatMessage("user", QUESTIONS[(n - 1) % len(QUESTIONS)]))
        finished = None
        for event in model.chat(list(conversation), sampling):
            if isinstance(event, Finished):
                finished = event
        assert finished is not None
        s = finished.stats
        rows.append({
            "turn": n,
            "prompt_tokens": s.prompt_tokens,
            "evaluated": s.prompt_evaluated,
            "reused": s.prompt_tokens - s.prompt_evaluated,
            "ttft_ms": (s.time_to_first_token or 0) * 1000,
            "reply_tokens": s.generated_tokens,
        })
        rows[-1]["reply_start"] = finished.text[:60]
        conversation.append(ChatMessage("assistant", finished.text))
    return rows


def main() -> None:
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.settings import LoadSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--passes", type=int, default=3, help="whole chats run (default 3)")
    parser.add_argument("--reply-tokens", type=int, default=60)
    args = parser.parse_args()
    benchlib.quiet_native_log()

    passes = []
    for _ in range(args.passes):
        model = LoadedModel.load(benchlib.starter_model(), LoadSettings(n_ctx=4096))
        try:
            passes.append(one_chat(model, args.turns, args.reply_tokens))
        finally:
            model.close()

    turns = []
    for i in range(args.turns):
        per_turn = [p[i] for p in passes]
        turns.append({
            "turn": i + 1,
            "prompt_tokens": per_turn[0]["prompt_tokens"],
            "evaluated": per_turn[0]["evaluated"],
            "ttft_ms_median": benchlib.median([r["ttft_ms"] for r in per_turn]),
            "ttft_ms": min(r["ttft_ms"] for r in per_turn),
        })
    benchlib.print_table(
        ["turn N", "prompt tokens", "evaluated", "TTFT ms (best)", "TTFT ms (median)"],
        [[t["turn"], t["prompt_tokens"], t["evaluated"],
          benchlib.fmt(t["ttft_ms"], 0), benchlib.fmt(t["ttft_ms_median"], 0)]
         for t in turns],
    )
    later = turns[1:]  # turn 1 evaluates the whole prompt: nothing is cached yet
    summary = {
        "first_turn_ttft_ms": turns[0]["ttft_ms"],
        "later_ttft_ms_median": benchlib.median([t["ttft_ms"] for t in later]),
        "later_ttft_ms_max": max(t["ttft_ms"] for t in later),
        "later_evaluated_max": max(t["evaluated"] for t in later),
        "last_prompt_tokens": turns[-1]["prompt_tokens"],
        "same_tokens_every_pass": all(
            [r["evaluated"] for r in p] == [r["evaluated"] for r in passes[0]] for p in passes
        ),
    }
    first_half = benchlib.median([t["ttft_ms"] for t in later[: len(later) // 2]])
    second_half = benchlib.median([t["ttft_ms"] for t in later[len(later) // 2:]])
    summary["ttft_growth_second_half_vs_first"] = second_half / first_half if first_half else None
    print(f"\nturns 2-{args.turns}: at most {summary['later_evaluated_max']} tokens evaluated per turn while the "
          f"prompt grows to {summary['last_prompt_tokens']}; "
          f"TTFT median {benchlib.fmt(summary['later_ttft_ms_median'], 0)} ms, "
          f"second half / first half {benchlib.fmt(summary['ttft_growth_second_half_vs_first'], 2)}")
    out = benchlib.write_results("prompt_reuse", {"settings": vars(args), "summary": summary, "turns": turns,
                                                  "passes": passes})
    print(f"results: {out.relative_to(benchlib.ROOT)}")


if __name__ == "__main__":
    main()
