"""Resuming a long chat: time to first token with and without its saved context.

What: a ~3,000-token chat on the starter model (context 4,096; a synthetic history of
questions and long answers). It is answered once with saved contexts on, which writes the
chat's KV state to a temporary folder (engine.saved_contexts). Then, in interleaved passes,
the model is opened fresh (as after a restart or opening the chat from the history) and
asked the next question:
  without   no saved contexts: the whole prompt is evaluated
  with      the saved state is loaded; only the new message is evaluated
Printed: TTFT (median and best of the passes), prompt tokens evaluated, the state file's
size, and how long the save after a reply takes (the next message waits for it at most
that long if sent at once).

Why: issue 9 asks that resuming a long conversation not re-read its whole prompt where
that can be avoided, measured on a resumed 3,000-token chat.

    .venv/bin/python bench/resume_ttft.py [--passes 5] [--tokens 3000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import benchlib

PARAGRAPH = ("The river valley was settled early because the soil was rich and the water reliable. "
             "Farmers grew barley and beans, kept goats on the hills, and traded wool downstream. ")


def history(target_tokens: int, model) -> list:
    from llama_tui.engine.model import ChatMessage

    messages = []
    n = 0
    while True:
        n += 1
        messages += [ChatMessage("user", f"Tell me more about part {n} of the valley's history."),
                     ChatMessage("assistant", f"Part {n}. " + PARAGRAPH * 6)]
        if model.count_tokens("".join(m.content for m in messages)) >= target_tokens:
            return messages


def ask(model, messages, max_tokens: int = 8):
    from llama_tui.engine.events import Finished
    from llama_tui.engine.settings import SamplingSettings

    finished, finished_at = None, 0.0
    for event in model.chat(messages, SamplingSettings(temperature=0.0, max_reply_tokens=max_tokens)):
        if isinstance(event, Finished):
            finished, finished_at = event, time.perf_counter()
    assert finished is not None
    ask.save_seconds = time.perf_counter() - finished_at  # type: ignore[attr-defined]  # the save after the end
    return finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=3000)
    args = parser.parse_args()
    benchlib.quiet_native_log()
    from llama_tui.engine.model import ChatMessage, LoadedModel
    from llama_tui.engine.saved_contexts import STATE, SavedContexts
    from llama_tui.engine.settings import LoadSettings

    settings = LoadSettings(n_ctx=4096)
    path = benchlib.starter_model()
    folder = Path(tempfile.mkdtemp(prefix="resume-ttft-"))
    contexts = SavedContexts(folder, cap_mib=4096)

    model = LoadedModel.load(path, settings, contexts=contexts)
    chat = history(args.tokens, model)
    first = ask(model, chat)
    save_seconds = ask.save_seconds  # type: ignore[attr-defined]
    model.close()
    (state,) = folder.glob(f"*{STATE}")
    resumed_chat = [*chat, ChatMessage("assistant", first.text), ChatMessage("user", "And what came after that?")]

    backup = Path(tempfile.mkdtemp(prefix="resume-ttft-first-"))
    for each in folder.iterdir():
        shutil.copy2(each, backup / each.name)

    rows: dict[str, list] = {"without": [], "with": []}
    for _ in range(args.passes):
        for kind in ("without", "with"):
            # Each pass finds the first chat's state as it was saved (a pass saves a longer one).
            shutil.rmtree(folder)
            shutil.copytree(backup, folder)
            model = LoadedModel.load(path, settings, contexts=contexts if kind == "with" else None)
            finished = ask(model, resumed_chat)
            model.close()
            rows[kind].append(finished.stats)
    table = []
    result: dict[str, object] = {"prompt_tokens": rows["without"][0].prompt_tokens,
                                 "state_mib": round((backup / state.name).stat().st_size / 2**20, 1),
                                 "save_after_reply_ms": round(save_seconds * 1000, 1)}
    for kind, stats in rows.items():
        ttfts = [s.time_to_first_token * 1000 for s in stats]
        table.append([kind, stats[0].prompt_tokens, stats[0].prompt_evaluated, benchlib.fmt(benchlib.median(ttfts), 0),
                      benchlib.fmt(min(ttfts), 0)])
        result[kind] = {"prompt_evaluated": stats[0].prompt_evaluated, "ttft_ms_median": benchlib.median(ttfts),
                        "ttft_ms_best": min(ttfts), "ttft_ms_all": ttfts}
    benchlib.print_table(["saved context", "prompt tokens", "evaluated", "TTFT median ms", "TTFT best ms"], table)
    print(f"state file {result['state_mib']} MiB; saving it after the reply took {result['save_after_reply_ms']} ms")
    result["machine"] = benchlib.machine()
    print("wrote", benchlib.write_results("resume_ttft", result))


if __name__ == "__main__":
    main()
