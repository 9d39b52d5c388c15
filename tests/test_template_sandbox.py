"""TemplateSandbox: chat templates rendered in a killable worker process. Real processes.

No assertion here is about how fast anything is: limits that should not trigger are set far
too high to matter (TIME_LIMIT), limits that should are reached by templates that would run
for hours, and a cancel or close waits for a sign that the worker is busy, not for a delay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter

from llama_tui.engine.jinja_chat import TemplateRaised, render_chat
from llama_tui.engine.template_sandbox import SandboxClosed, TemplateCancelled, TemplateFailed, TemplateSandbox

ROOT = Path(__file__).resolve().parent.parent
# For renders that must succeed: far above what any machine needs, so load cannot fail them.
TIME_LIMIT = 120.0
BOS, EOS = "<s>", "</s>"

CHAT = [
    {"role": "system", "content": "  You answer in one line. Quotes \" ' and <tags> & stay.  "},
    {"role": "user", "content": "Bonjour, ça va ? 日本語も"},
    {"role": "assistant", "content": "Oui ! 🎉"},
    {"role": "user", "content": "And {{ this }} is not a template."},
]

# Gemma 2's own template: no system role, and turns must alternate.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

# Loop controls, a namespace, the generation tag, tojson, and the block whitespace rules
# (trim_blocks, lstrip_blocks) all at work.
LOOP_CONTROLS_TEMPLATE = textwrap.dedent("""\
    {%- set ns = namespace(system='', shown=0) -%}
    {% for message in messages %}
        {% if message['role'] == 'system' %}
            {% set ns.system = message['content'] | trim %}
            {% continue %}
        {% endif %}
        {% if ns.shown >= 10 %}{% break %}{% endif %}
        {% set ns.shown = ns.shown + 1 %}
    {{ bos_token if loop.first }}[{{ message['role'] | upper }}]{% if ns.system and ns.shown == 1 %} ({{ ns.system }}){% endif %}

    {{ message['content'] }}
        {% if message['role'] == 'assistant' %}{% generation %}{{ eos_token }}{% endgeneration %}{% endif %}
    {% endfor %}
    {{ messages[-1] | tojson }} {{ messages[-1] | tojson(indent=2, sort_keys=True) }}
    {% if add_generation_prompt %}
    [ASSISTANT]
    {% endif %}
    """)  # noqa: E501 - the template as Jinja reads it

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
SILENT_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def never() -> bool:
    return False


def render(box: TemplateSandbox, source: str, messages: list[dict[str, str]] = CHAT,
           cancelled: Callable[[], bool] = never) -> str:
    return box.render(source, messages, bos_token=BOS, eos_token=EOS, cancelled=cancelled, template_name="in tiny.gguf")


def formatter_prompt(source: str, messages: list[dict[str, str]] = CHAT) -> str:
    """What llama-cpp-python's own Jinja2ChatFormatter makes of it."""
    return Jinja2ChatFormatter(source, EOS, BOS)(messages=messages).prompt  # type: ignore[arg-type]


def gone(pid: int) -> bool:
    """Whether no process has this pid any more (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_until_gone(pid: int) -> bool:
    """For a worker that is not our child: it is reaped by init, whenever. The bound only
    keeps a failing test from hanging."""
    for _ in range(600):
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def box() -> Iterator[TemplateSandbox]:
    with TemplateSandbox(time_limit=TIME_LIMIT) as sandbox:
        yield sandbox


class WaitsOnWorker:
    """A cancelled() callback that tells another thread once the render has sent its
    request and waits for the reply (its third call: one before writing, two polls), and
    turns true when told to."""

    def __init__(self) -> None:
        self.calls = 0
        self.waiting = threading.Event()
        self.cancel = threading.Event()

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls >= 3:
            self.waiting.set()
        return self.cancel.is_set()


def in_thread(action: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def once(event: threading.Event, action: Callable[[], object]) -> threading.Thread:
    """Do `action` on another thread once `event` is set."""

    def wait_then_act() -> None:
        event.wait()
        action()

    return in_thread(wait_then_act)


# -- the same text as llama-cpp-python ----------------------------------------------------


@pytest.mark.parametrize("source", [CHATML_CHAT_TEMPLATE, GEMMA2_TEMPLATE, LOOP_CONTROLS_TEMPLATE],
                         ids=["chatml", "gemma2", "loop-controls"])
def test_renders_what_jinja2_chat_formatter_renders(box: TemplateSandbox, source: str) -> None:
    turns = CHAT[1:]  # Gemma 2 refuses a system prompt; that is checked below
    for messages in ([CHAT, turns] if source != GEMMA2_TEMPLATE else [turns]):
        expected = formatter_prompt(source, messages)
        assert render(box, source, messages) == expected
        assert render_chat(source, messages, bos_token=BOS, eos_token=EOS) == expected


def test_raise_exception_gives_the_templates_own_message(box: TemplateSandbox) -> None:
    source = "{{ raise_exception('Conversations must end with a tool call') }}"
    with pytest.raises(ValueError, match=r"^Conversations must end with a tool call$"):
        formatter_prompt(source)
    with pytest.raises(TemplateRaised, match=r"^Conversations must end with a tool call$"):
        render_chat(source, CHAT, bos_token=BOS, eos_token=EOS)
    with pytest.raises(TemplateFailed) as failed:
        render(box, source)
    assert failed.value.kind == "raised"
    assert failed.value.template_name == "in tiny.gguf"
    assert str(failed.value) == (
        "The chat template in tiny.gguf raised an error: Conversations must end with a tool call"
    )


def test_a_template_without_a_system_role_gets_the_system_prompt_in_the_first_user_turn(box: TemplateSandbox) -> None:
    # Jinja2ChatFormatter fails on Gemma 2 with a system prompt; llama.cpp's server moves
    # the system prompt into the first user message, and so do we.
    with pytest.raises(ValueError, match=r"^System role not supported$"):
        formatter_prompt(GEMMA2_TEMPLATE)
    merged = [{"role": "user", "content": CHAT[0]["content"] + "\n\n" + CHAT[1]["content"]}, *CHAT[2:]]
    expected = formatter_prompt(GEMMA2_TEMPLATE, merged)
    assert render(box, GEMMA2_TEMPLATE) == expected
    assert render_chat(GEMMA2_TEMPLATE, CHAT, bos_token=BOS, eos_token=EOS) == expected
    # So does a template that silently leaves the system message out.
    drops = "{% for m in messages if m.role != 'system' %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    assert render(box, drops).startswith("[user] " + CHAT[0]["content"] + "\n\n" + CHAT[1]["content"])
    # A template that fails either way reports its first error.
    both = "{{ raise_exception('first: ' ~ messages[0].role) }}"
    with pytest.raises(TemplateFailed, match=r"first: system$"):
        render(box, both)


def test_the_variables_llama_cpp_passes(box: TemplateSandbox) -> None:
    """No tools: `tools` is undefined (a loop over it is empty, tojson of it is null), as
    in llama.cpp's server; `enable_thinking`, `datetime` and `date_string` are given; an
    undefined value adds nothing to a string."""
    source = (
        "{% for tool in tools %}{{ tool }}{% endfor %}{{ tools is defined }} {{ tools | tojson }} "
        "{{ enable_thinking }} {{ 'x' + functions + 'y' }} {{ messages[0].nope.deeper }}"
        "|{{ date_string }}|{{ datetime }}"
    )
    for thinking in (True, False):
        days = {datetime.now().strftime("%d %b %Y|%b %d %Y")}
        text = box.render(source, CHAT, bos_token=BOS, eos_token=EOS, cancelled=never, template_name="t",
                          enable_thinking=thinking)
        days.add(datetime.now().strftime("%d %b %Y|%b %d %Y"))
        head, day = text.split("|", 1)
        assert head == f"False null {thinking} xy "
        assert day in days
        assert render_chat(source, CHAT, bos_token=BOS, eos_token=EOS, enable_thinking=thinking).split("|")[0] == head


def test_strftime_now_and_no_generation_prompt(box: TemplateSandbox) -> None:
    years = {str(datetime.now().year)}
    text = box.render("{{ strftime_now('%Y') }}{% if add_generation_prompt %}!{% endif %}", CHAT,
                      bos_token=BOS, eos_token=EOS, cancelled=never, template_name="t", add_generation_prompt=False)
    years.add(str(datetime.now().year))
    assert text in years


def test_text_survives_the_pipe_as_it_is(box: TemplateSandbox) -> None:
    odd = [{"role": "user", "content": "nul \x00, lone surrogate \ud800, 🎉, \u2028, é"}]
    source = "{{ messages[0]['content'] }}|{{ messages | tojson }}"
    assert render(box, source, odd) == render_chat(source, odd, bos_token=BOS, eos_token=EOS)


# -- templates that go wrong ---------------------------------------------------------------


def test_a_runaway_loop_is_stopped_and_the_next_render_works() -> None:
    with TemplateSandbox(time_limit=0.5) as box:
        render(box, "warm-up")  # the worker is running; its start is not the template's time
        pid = box.pid
        assert pid is not None
        with pytest.raises(TemplateFailed) as failed:
            render(box, NESTED_LOOPS)
        # Depending on speed, the time or the output limit comes first.
        assert failed.value.kind in ("timeout", "too_large")
        assert 'in tiny.gguf' in str(failed.value)
        assert box.pid is None and gone(pid)
        box.time_limit = TIME_LIMIT
        assert render(box, CHATML_CHAT_TEMPLATE) == formatter_prompt(CHATML_CHAT_TEMPLATE)


def test_a_loop_without_output_is_stopped_by_the_time_limit() -> None:
    with TemplateSandbox(time_limit=0.5) as box:
        with pytest.raises(TemplateFailed) as failed:
            render(box, SILENT_LOOPS)
        assert failed.value.kind == "timeout"
        assert str(failed.value) == (
            'The chat template in tiny.gguf was stopped after 0.5 s: it was still running, and may never end.'
        )


def test_too_much_output_is_refused(box: TemplateSandbox) -> None:
    with pytest.raises(TemplateFailed) as failed:
        render(box, "{{ 'x ' * 50000000 }}")
    assert failed.value.kind == "too_large"
    assert str(failed.value) == (
        "The chat template in tiny.gguf produced more than 8,388,608 characters and was stopped."
    )
    assert render(box, "{{ 'x ' * 3 }}") == "x x x "  # the same worker goes on


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the memory limit needs Linux's /proc")
def test_a_huge_allocation_is_a_memory_error_and_the_worker_is_replaced() -> None:
    # 1 GiB asked with 256 MiB allowed: were the limit not set, this would still not hurt.
    with TemplateSandbox(time_limit=TIME_LIMIT, memory_headroom=256 << 20) as box:
        render(box, "warm-up")
        pid = box.pid
        assert pid is not None
        with pytest.raises(TemplateFailed) as failed:
            render(box, "{{ 'x' * 1073741824 }}")
        assert failed.value.kind == "memory"
        assert str(failed.value) == (
            'The chat template in tiny.gguf ran out of memory: it tried to use more than 256 MiB and was stopped.'
        )
        assert box.pid is None and gone(pid)
        assert render(box, "{{ 'fine' }}") == "fine"


@pytest.mark.parametrize("source, kind, detail", [
    ("{{ ''.__class__.__mro__ }}", "error",
     "SecurityError: access to attribute '__class__' of 'str' object is unsafe."),
    ("{% for m in messages %}", "syntax", "line 1: Unexpected end of template."),
    ("{{ messages[0].nope.deeper + 1 }}", "error", "UndefinedError: 'dict object' has no attribute 'nope'"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "error", "RecursionError: maximum recursion depth exceeded"),
])
def test_other_failures_name_the_template_and_the_cause(box: TemplateSandbox, source: str, kind: str,
                                                        detail: str) -> None:
    with pytest.raises(TemplateFailed) as failed:
        render(box, source)
    assert failed.value.kind == kind
    assert 'in tiny.gguf' in str(failed.value)
    assert detail in str(failed.value)
    assert render(box, "{{ 'still fine' }}") == "still fine"


def test_a_worker_killed_mid_render_is_reported_and_replaced(box: TemplateSandbox) -> None:
    render(box, "warm-up")
    pid = box.pid
    assert pid is not None
    busy = WaitsOnWorker()
    once(busy.waiting, lambda: os.kill(pid, signal.SIGKILL))
    with pytest.raises(TemplateFailed) as failed:
        render(box, SILENT_LOOPS, cancelled=busy)
    assert failed.value.kind == "died"
    assert str(failed.value) == 'The process rendering the chat template in tiny.gguf was killed by signal SIGKILL.'
    assert render(box, "{{ 'again' }}") == "again"
    assert box.pid != pid


# -- cancel, close, and the worker's life ---------------------------------------------------


def test_cancel_from_another_thread_kills_the_worker(box: TemplateSandbox) -> None:
    render(box, "warm-up")
    worker = box._worker
    assert worker is not None
    process = worker.process
    busy = WaitsOnWorker()
    once(busy.waiting, busy.cancel.set)
    with pytest.raises(TemplateCancelled) as cancelled:
        render(box, SILENT_LOOPS, cancelled=busy)
    assert not isinstance(cancelled.value, SandboxClosed)
    assert process.poll() == -signal.SIGKILL  # killed and reaped
    with pytest.raises(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)
    assert gone(process.pid)
    assert box.pid is None
    assert render(box, "{{ 'next' }}") == "next"  # a fresh worker


def test_close_from_another_thread_ends_a_waiting_render(box: TemplateSandbox) -> None:
    render(box, "warm-up")
    pid = box.pid
    assert pid is not None
    busy = WaitsOnWorker()
    closer = once(busy.waiting, box.close)
    with pytest.raises(SandboxClosed):
        render(box, SILENT_LOOPS, cancelled=busy)
    closer.join(60)
    assert not closer.is_alive()
    assert gone(pid) and box.pid is None
    with pytest.raises(SandboxClosed):
        render(box, "{{ 'after close' }}")
    box.start()  # does nothing once closed
    assert box.pid is None
    box.close()  # idempotent


def test_a_render_waiting_for_another_one_can_be_cancelled(box: TemplateSandbox) -> None:
    render(box, "warm-up")
    busy = WaitsOnWorker()
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            render(box, SILENT_LOOPS, cancelled=busy)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = in_thread(first)
    busy.waiting.wait()
    with pytest.raises(TemplateCancelled):
        render(box, "{{ 'second' }}", cancelled=lambda: True)
    busy.cancel.set()
    thread.join(60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and type(outcome[0]) is TemplateCancelled


def test_start_spawns_the_worker_that_the_first_render_uses(box: TemplateSandbox) -> None:
    box.start()
    pid = box.pid
    assert pid is not None
    assert render(box, "{{ 'hello' }}") == "hello"
    assert box.pid == pid


def test_a_template_is_compiled_once_and_sent_again_if_the_worker_dropped_it(box: TemplateSandbox) -> None:
    assert render(box, CHATML_CHAT_TEMPLATE) == formatter_prompt(CHATML_CHAT_TEMPLATE)
    worker = box._worker
    assert worker is not None and len(worker.known) == 1
    for n in range(10):  # more than the worker keeps (template_worker.CACHE_SIZE)
        assert render(box, f"{{{{ {n} }}}}") == str(n)
    # The parent still believes the worker has ChatML; it asks for the source again.
    assert render(box, CHATML_CHAT_TEMPLATE) == formatter_prompt(CHATML_CHAT_TEMPLATE)
    assert box._worker is worker


def test_the_worker_exits_when_its_stdin_closes(box: TemplateSandbox) -> None:
    box.start()
    worker = box._worker
    assert worker is not None and worker.process.stdin is not None
    worker.process.stdin.close()
    assert worker.process.wait(timeout=60) == 0


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads /proc")
def test_the_worker_cannot_reach_the_terminal(box: TemplateSandbox) -> None:
    render(box, "warm-up")
    pid = box.pid
    assert pid is not None
    assert os.readlink(f"/proc/{pid}/fd/1") == os.devnull  # the protocol moved to another fd
    assert os.readlink(f"/proc/{pid}/fd/2") == os.devnull
    assert os.getsid(pid) == pid  # its own session: no controlling terminal, no Ctrl+C


def test_garbage_collection_ends_the_worker() -> None:
    box = TemplateSandbox()
    box.start()
    worker = box._worker
    assert worker is not None
    process = worker.process
    del box, worker
    import gc

    gc.collect()
    assert process.returncode is not None and gone(process.pid)


PARENT_SCRIPT = textwrap.dedent("""\
    import os, sys, threading
    from llama_tui.engine.template_sandbox import TemplateSandbox

    box = TemplateSandbox(time_limit=float(sys.argv[2]))
    box.render("ok", [], bos_token="", eos_token="", cancelled=lambda: False, template_name="t")
    print(box.pid, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)  # without close(): the finalizer must end the worker
    if sys.argv[1] == "hard-exit":
        os._exit(0)  # no finalizers: only the closed pipe tells the worker
    # "die-mid-render": gone while the worker runs a template that never ends
    calls = 0
    busy = threading.Event()
    def cancelled():
        global calls
        calls += 1
        if calls >= 3:
            busy.set()
        return False
    loops = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    threading.Thread(target=box.render, args=(loops, []),
                     kwargs=dict(bos_token="", eos_token="", cancelled=cancelled, template_name="t"),
                     daemon=True).start()
    busy.wait()
    os._exit(0)
    """)


@pytest.mark.parametrize("how", ["exit", "hard-exit", "die-mid-render"])
def test_the_worker_does_not_outlive_the_app(how: str, tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    # die-mid-render: nobody can kill the worker, so its own alarm must (time limit + 2 s).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(script), how, "0.5"], capture_output=True, text=True,
                            env=env, timeout=120, check=True)
    pid = int(result.stdout.split()[0])
    assert wait_until_gone(pid)


def test_the_worker_and_the_sandbox_import_neither_llama_cpp_nor_textual() -> None:
    code = (
        "import sys, llama_tui.engine.template_sandbox, llama_tui.engine.template_worker;"
        "print(json.dumps(sorted(m for m in ('llama_cpp', 'textual', 'numpy') if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert json.loads(result.stdout) == []
