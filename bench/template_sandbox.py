"""What rendering chat templates in the worker process (TemplateSandbox) costs.

What:
  start      a worker from spawn to its "ready" message (interpreter, Jinja, limits set),
             and the first render of a sandbox that was not start()ed ahead (spawn + ready
             + compile + render)
  per render median wall time of one render of the same template and conversation:
             in-process with the compiled template kept (jinja_chat.render_compiled), in the
             warm sandbox (template cached in the worker), and llama-cpp-python's
             Jinja2ChatFormatter built per render (which compiles every time, as
             ChatTemplate.render does today); for a short chat and a long one (~100 KB)
  new        the first render of a new template in a warm worker (source sent + compile)

Why: the sandbox adds a process and a pipe round trip to each reply; this shows how much,
against the compile that the in-process path pays every turn today.

    .venv/bin/python bench/template_sandbox.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from statistics import median

import jinja2
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

import benchlib
from llama_tui.engine import template_sandbox, template_worker
from llama_tui.engine.jinja_chat import compile_template, render_compiled
from llama_tui.engine.template_sandbox import TemplateSandbox
from tests.test_template_sandbox import LOOP_CONTROLS_TEMPLATE

SHORT = [
    {"role": "system", "content": "You answer in one line."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Japan?"},
]
LONG = [SHORT[0]] + [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Turn {i}: " + "lorem ipsum dolor " * 28}
    for i in range(200)
]
TEMPLATES = {"chatml": CHATML_CHAT_TEMPLATE, "loop-controls": LOOP_CONTROLS_TEMPLATE}


def never() -> bool:
    return False


def spawn_to_ready() -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_tui.engine.template_worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        cwd=template_sandbox._PACKAGE_ROOT,
    )
    assert process.stdout is not None and process.stdin is not None
    ready = template_worker.read_frame(process.stdout)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert ready is not None and json.loads(ready) == {"ready": True}
    process.stdin.close()
    process.wait()
    return elapsed


def cold_first_render() -> float:
    started = time.perf_counter()
    with TemplateSandbox() as box:
        box.render(CHATML_CHAT_TEMPLATE, SHORT, bos_token="<s>", eos_token="</s>", cancelled=never, template_name="t")
        return time.perf_counter() - started


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _variants(
    box: TemplateSandbox, name: str, source: str, compiled: jinja2.Template, chat: list[dict[str, str]]
) -> dict[str, Callable[[], object]]:
    """One chat rendered three ways: in this process, in the sandbox, by llama-cpp-python."""
    return {
        "in-process": lambda: render_compiled(compiled, chat, bos_token="<s>", eos_token="</s>"),
        "sandbox": lambda: box.render(source, chat, bos_token="<s>", eos_token="</s>",
                                      cancelled=never, template_name=name),
        "formatter": lambda: Jinja2ChatFormatter(source, "</s>", "<s>")(messages=chat),  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--starts", type=int, default=15)
    args = parser.parse_args()

    starts = [spawn_to_ready() for _ in range(args.starts)]
    colds = [cold_first_render() for _ in range(args.starts)]

    box = TemplateSandbox()
    box.start()
    samples: dict[str, list[float]] = {}
    for name, source in TEMPLATES.items():
        compiled = compile_template(source)
        for chat_name, chat in (("short", SHORT), ("long", LONG)):
            expected = render_compiled(compiled, chat, bos_token="<s>", eos_token="</s>")
            assert box.render(source, chat, bos_token="<s>", eos_token="</s>", cancelled=never,
                              template_name=name) == expected
            variants = _variants(box, name, source, compiled, chat)
            for _ in range(args.rounds):  # interleaved, so load hits all variants alike
                for variant, action in variants.items():
                    samples.setdefault(f"{name}|{chat_name}|{variant}", []).append(timed(action))
    news = []
    for n in range(args.rounds):
        new_template = f"{{{{ {n} }}}}" + CHATML_CHAT_TEMPLATE  # a source the worker has not seen
        started = time.perf_counter()
        box.render(new_template, SHORT, bos_token="<s>", eos_token="</s>", cancelled=never, template_name="new")
        news.append(time.perf_counter() - started)
    box.close()

    ms = 1000.0
    print(f"worker spawn to ready: median {median(starts) * ms:.1f} ms "
          f"(min {min(starts) * ms:.1f}, max {max(starts) * ms:.1f}, n={len(starts)})")
    print(f"first render without start(): median {median(colds) * ms:.1f} ms")
    print(f"first render of a new template, warm worker: median {median(news) * ms:.2f} ms\n")
    print("| template | chat | in-process (compiled kept) ms | sandbox ms | sandbox - in-process ms "
          "| Jinja2ChatFormatter per render ms |")
    print("|---|---|---|---|---|---|")
    per_render: dict[str, dict[str, float]] = {}
    results = {"spawn_to_ready_ms": median(starts) * ms, "cold_first_render_ms": median(colds) * ms,
               "new_template_ms": median(news) * ms, "per_render_ms": per_render}
    for name in TEMPLATES:
        for chat_name in ("short", "long"):
            figures = {v: median(samples[f"{name}|{chat_name}|{v}"]) * ms
                       for v in ("in-process", "sandbox", "formatter")}
            per_render[f"{name}|{chat_name}"] = figures
            print(f"| {name} | {chat_name} | {figures['in-process']:.3f} | {figures['sandbox']:.3f} | "
                  f"{figures['sandbox'] - figures['in-process']:.3f} | {figures['formatter']:.3f} |")
    benchlib.RESULTS.mkdir(exist_ok=True)
    (benchlib.RESULTS / "template_sandbox.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
