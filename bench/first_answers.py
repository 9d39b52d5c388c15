"""First answers: what a newcomer gets back from two dozen typical first questions.

Not a speed benchmark: it prints each answer so a person can judge it (right? on topic? does
it stop by itself?). Every question is a fresh one-turn chat through the app's own engine
(engine.opening.open_model, then the backend's chat()) with a fixed reply limit, as the Chat
tab would send it with no system prompt: greedy (temperature 0), and each variant again with
the app's default sampling (temperature 0.8, top-p/top-k/min-p and the default seed: what a
newcomer who changed no setting gets).

Questions: a dozen a newcomer might ask first (QUESTIONS, the ones the starter's worked
examples were tried against), then a dozen held out (HELD_OUT, written after the examples were
chosen; the first is the issue's own).

Variants:
  starter, plain transcript   Gemma 3 270M (a base model) with the transcript prompt it had
                              before few-shot examples were added (kept here, for comparison)
  starter, now                Gemma 3 270M with the engine's current prompt for base models
  NAME=PATH (--candidate)     any other GGUF file, with its own chat template; used for
                              instruct models that PyPI packages ship (see the report)

Figures per answer: tokens generated, why it stopped (end = the model ended its turn,
length = cut at --max-tokens) and decode tok/s. The load average is printed: on a shared
2-core machine the speeds move with it, the answers do not (greedy, or a fixed seed).

    .venv/bin/python bench/first_answers.py [--max-tokens 96] [--candidate NAME=PATH ...] [--temperature T]
                                            [--skip-starter] [--out bench/results/first_answers.txt]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import benchlib
from llama_tui.engine import chat_templates
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import Finished
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.opening import open_model
from llama_tui.engine.settings import LoadSettings, SamplingSettings, Settings

QUESTIONS = (
    "What is the capital of France?",
    "Write a haiku about autumn.",
    "Explain what a GGUF file is in one sentence.",
    "2+2=?",
    "Give me three tips for learning Python.",
    "Translate 'good morning' to Spanish.",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water in Celsius?",
    "Write a Python function that reverses a string.",
    "What is photosynthesis?",
    "Suggest a name for a black cat.",
    "Hello! Who are you?",
)

# Questions written after the worked examples were chosen, never used to choose them: the
# examples were tried against QUESTIONS, so these show whether they help beyond that set.
# The first is the issue's own (the starter answered it "The Eiffel Tower.").
HELD_OUT = (
    "What is the capital of France? Name three famous landmarks there.",
    "How many legs does a spider have?",
    "What is the largest ocean on Earth?",
    "What is 15 times 4?",
    "Who painted the Mona Lisa?",
    "What language do people speak in Brazil?",
    "What does CPU stand for?",
    "In what year did World War II end?",
    "Write a Python function that checks whether a number is even.",
    "Give me an idea for a quick dinner.",
    "Write two sentences about why exercise is good for you.",
    "Summarize in one sentence: The team meeting moved from Monday to Wednesday because the manager is ill.",
)

# The transcript prompt the starter used before (chat_templates.TRANSCRIPT_TEMPLATE as it was
# until the few-shot examples): a one-line header, then User:/Assistant: turns.
PLAIN_TRANSCRIPT = (
    "{{ bos_token }}"
    "{{ messages[0]['content'] | trim if messages and messages[0]['role'] == 'system'"
    " else 'A conversation between a curious user and a helpful, knowledgeable assistant.' }}"
    "{{ '\n\n' }}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{{ ('User: ' if message['role'] == 'user' else 'Assistant: ') + message['content'] | trim + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
PLAIN_NAME = "transcript-plain"


def install_plain_transcript() -> None:
    """Make the old prompt choosable by name for this run (the engine's table, in this process)."""
    chat_templates.BUILT_IN_TEMPLATES[PLAIN_NAME] = PLAIN_TRANSCRIPT
    chat_templates._EXTRA_STOPS[PLAIN_NAME] = chat_templates._EXTRA_STOPS["transcript"]


def ask_all(
    label: str, ref: ModelRef, chat_format: str | None, max_tokens: int, greedy: bool = True,
    temperature: float | None = None,
) -> list[dict[str, object]]:
    settings = Settings(load=replace(LoadSettings(), n_ctx=4096, chat_format=chat_format))
    started = time.perf_counter()
    model = open_model(ref, settings)
    load_seconds = time.perf_counter() - started
    print(f"\n## {label}\n")
    print(f"{model.description}")
    sampling = SamplingSettings(max_reply_tokens=max_tokens)
    if temperature is not None:
        sampling = replace(sampling, temperature=temperature)
    how = "greedy" if greedy else (f"the app's default sampling (temperature {sampling.temperature}, "
                                   f"seed {sampling.seed})")
    if greedy:
        sampling = replace(sampling, temperature=0.0)
    print(f"loaded in {load_seconds:.1f} s; {how}, at most {max_tokens} tokens per answer\n")
    answers = []
    try:
        for number, question in enumerate(QUESTIONS + HELD_OUT, 1):
            if number == len(QUESTIONS) + 1:
                print("   (held out: not used to choose the worked examples)\n")
            model.clear_context()
            events = list(model.chat([ChatMessage("user", question)], sampling))
            finished = events[-1]
            assert isinstance(finished, Finished), finished
            stats = finished.stats
            speed = benchlib.fmt(stats.tokens_per_second)
            text = finished.text.strip()
            print(f"{number:2}. Q: {question}")
            print("    A: " + text.replace("\n", "\n       "))
            print(f"    [{stats.generated_tokens} tokens, {finished.reason.value}, {speed} tok/s]\n")
            answers.append({"question": question, "answer": text, "tokens": stats.generated_tokens,
                            "stop": finished.reason.value, "tok_s": stats.tokens_per_second})
    finally:
        model.close()
    speeds = [a["tok_s"] for a in answers]
    ended = sum(a["stop"] == "end" for a in answers)
    print(f"median decode {benchlib.fmt(benchlib.median(speeds))} tok/s; "
          f"{ended}/{len(answers)} answers ended by the model itself")
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=PATH",
                        help="another GGUF file to ask, with its own chat template")
    parser.add_argument("--skip-starter", action="store_true")
    parser.add_argument("--temperature", type=float, metavar="T",
                        help="in place of the app's default temperature (the other sampling stays)")
    parser.add_argument("--out", type=Path, default=benchlib.RESULTS / "first_answers.txt")
    args = parser.parse_args()

    benchlib.quiet_native_log()
    install_plain_transcript()
    variants: list[tuple[str, ModelRef, str | None, bool]] = []
    if not args.skip_starter:
        variants += [
            ("Gemma 3 270M starter (base model), plain transcript prompt (before)", ModelRef.starter(), PLAIN_NAME,
             True),
            ("Gemma 3 270M starter (base model), plain transcript prompt (before), the app's default sampling",
             ModelRef.starter(), PLAIN_NAME, False),
            ("Gemma 3 270M starter (base model), the engine's prompt now", ModelRef.starter(), None, True),
            ("Gemma 3 270M starter (base model), the engine's prompt now, the app's default sampling",
             ModelRef.starter(), None, False),
        ]
    for candidate in args.candidate:
        name, _, path = candidate.partition("=")
        label = f"{name} ({Path(path).name}, {os.path.getsize(path) / 1e6:.0f} MB)"
        variants += [(label, ModelRef.file(path), None, True),
                     (f"{label}, the app's default sampling", ModelRef.file(path), None, False)]

    report = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, text: str) -> int:
            sys.__stdout__.write(text)
            sys.__stdout__.flush()
            return report.write(text)

    with redirect_stdout(Tee()):
        info = benchlib.machine()
        print("# First answers to a newcomer's questions")
        print(f"\n{info['time']} · {info['cpu']} · {info['cores']} cores · load average "
              f"{', '.join(f'{x:.2f}' for x in info['load_average'])} · llama-cpp-python "
              f"{info['versions']['llama_cpp_python']}")
        for label, ref, chat_format, greedy in variants:
            ask_all(label, ref, chat_format, args.max_tokens, greedy, args.temperature)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.getvalue(), encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
