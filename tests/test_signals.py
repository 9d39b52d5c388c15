"""Signals, crashes and unexpected errors: the terminal is given back, nothing written is lost.

Each test runs `python -m llama_tui` (what `llama-tui` runs) on a real pseudo-terminal
(tests/terminal.py): the guardian process, then the app in its child process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.terminal import LLAMA_TUI, Terminal, app_env

# Screen modes Textual turns on, and the sequences that turn each off again.
MODES_OFF = {"alternate screen": "\x1b[?1049l", "cursor": "\x1b[?25h", "mouse": "\x1b[?1000l",
             "bracketed paste": "\x1b[?2004l", "kitty keyboard": "\x1b[<u"}


def assert_terminal_given_back(term: Terminal, modes_before: list[object]) -> None:
    assert term.terminal_modes() == modes_before  # cooked mode, echo: as the shell left it
    after_start = term.output_text().rsplit("\x1b[?1049h", 1)[-1]  # since the app took the screen
    for mode, off in MODES_OFF.items():
        assert off in after_start, f"{mode} was not turned off"


def log_text(home: Path) -> str:
    return (home / "llama-tui" / "log" / "llama-tui.log").read_text(encoding="utf-8")


def start_reply(term: Terminal) -> None:
    """Send a message whose reply goes on until stopped (the tiny model never ends a turn)."""
    term.wait_for(" idle ")
    term.type("tell me everything")
    term.press("enter")
    term.wait_for(" generating ")


@pytest.mark.parametrize("signum, to_the_app", [
    (signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, False), (signal.SIGHUP, False),
])
def test_a_signal_during_a_reply_quits_cleanly(tiny_model: Path, tmp_path: Path, signum: int, to_the_app: bool) -> None:
    """`kill` (to llama-tui, or to the app process itself), ctrl+c from another terminal, a
    closed terminal: the reply stops, the model is closed, the terminal is as it was."""
    with Terminal([*LLAMA_TUI, "--max-token", "16384", "local", str(tiny_model)], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        start_reply(term)
        app = term.descendants()[0]
        os.kill(app if to_the_app else term.pid, signum)
        assert term.wait() == 128 + signum
        assert_terminal_given_back(term, modes)
        assert "Traceback" not in term.output_text()
    name = signal.Signals(signum).name
    log = log_text(tmp_path)
    assert re.search(rf"quitting on {name}.*closed {re.escape(tiny_model.name)}", log, re.S)
    assert "Traceback" not in log


def test_a_model_file_truncated_while_loaded_gives_the_terminal_back_with_the_reason(
    tiny_model: Path, tmp_path: Path
) -> None:
    """llama.cpp's memory map raises SIGBUS: the guardian restores the terminal and says why."""
    victim = shutil.copy(tiny_model, tmp_path / "victim.gguf")
    with Terminal([*LLAMA_TUI, "local", str(victim)], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(" idle ")
        os.truncate(victim, 0)
        term.type("hello")
        term.press("enter")
        assert term.wait() == 128 + signal.SIGBUS
        assert_terminal_given_back(term, modes)
        last_words = term.output_text().rsplit("\x1b[?1049l", 1)[-1]
        assert "llama-tui stopped: a bus error (SIGBUS)" in last_words
        assert "truncated or replaced" in last_words
    assert "Fatal Python error: Bus error" in log_text(tmp_path)  # where it happened, for a report


def test_quit_works_while_a_chat_template_never_ends(tmp_path: Path) -> None:
    from tests.test_template_failures import RUNAWAY, model_with_template

    model = model_with_template(tmp_path, RUNAWAY)
    with Terminal([*LLAMA_TUI, "local", str(model)], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(" idle ")
        term.type("hello")
        term.press("enter")
        term.wait_for(" prompt ")
        term.press("ctrl+q")
        assert term.wait() == 0
        assert_terminal_given_back(term, modes)
    # Ended by the quit, not by the template's time limit.
    assert "was stopped after" not in log_text(tmp_path)


CRASH_ON_NEW_CHAT = """
import sys
from llama_tui.ui.chat_pane import ChatPane

async def broken(self):
    raise RuntimeError("an injected bug")

ChatPane.action_new_chat = broken  # a bug we cannot have on demand otherwise
from llama_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_unexpected_error_keeps_what_was_written_and_exits_non_zero(tiny_model: Path, tmp_path: Path) -> None:
    """A bug that escapes (injected here): the text typed and the conversation are saved, the
    traceback goes to the log file, the terminal is given back, the exit code is 1."""
    config = tmp_path / "llama-tui" / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[sampling]\nmax_reply_tokens = 8\n")
    argv = [sys.executable, "-c", CRASH_ON_NEW_CHAT, "local", str(tiny_model)]
    with Terminal(argv, env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(" idle ")
        term.type("my first question")
        term.press("enter")
        term.wait_for(re.compile(r" idle .* TTFT \d+ ms"))
        term.type("a draft I have not sent")
        term.press("ctrl+n")
        assert term.wait() == 1
        assert_terminal_given_back(term, modes)
        report = term.output_text().rsplit("\x1b[?1049l", 1)[-1]
    assert "llama-tui stopped on an unexpected error: RuntimeError: an injected bug" in report
    saved = re.search(r"What you had written is saved in (\S+\.md)", report)
    assert saved, report
    rescued = Path(saved.group(1)).read_text(encoding="utf-8")
    assert "a draft I have not sent" in rescued
    assert "my first question" in rescued
    assert "Traceback" in log_text(tmp_path) and "an injected bug" in log_text(tmp_path)


def test_closing_the_terminal_quits_cleanly(tiny_model: Path, tmp_path: Path) -> None:
    """A real hang-up (the terminal window closed mid-reply): exit 128+SIGHUP, model closed."""
    with Terminal([*LLAMA_TUI, "--max-token", "16384", "local", str(tiny_model)], env=app_env(tmp_path)) as term:
        start_reply(term)
        term.hang_up()
        assert term.wait() == 128 + signal.SIGHUP
    assert re.search(rf"quitting on SIGHUP.*closed {re.escape(tiny_model.name)}", log_text(tmp_path), re.S)


def test_ctrl_c_while_starting_quits_quietly(tiny_model: Path, tmp_path: Path) -> None:
    """ctrl+c before the app has the terminal: no traceback, no crash report, exit 130.
    (Whenever it lands, during imports or once the app runs, the outcome is the same.)"""
    with Terminal([*LLAMA_TUI, "local", str(tiny_model)], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(lambda: bool(term.descendants()))  # the app process is starting
        term.signal_foreground(signal.SIGINT)
        assert term.wait() == 128 + signal.SIGINT
        assert term.terminal_modes() == modes
        assert "Traceback" not in term.output_text()
        assert "llama-tui stopped" not in term.output_text()


def test_a_stray_module_in_the_current_folder_is_not_imported(tiny_model: Path, tmp_path: Path) -> None:
    """llama-tui started in a folder holding a textual.py (or json.py...) runs the real modules."""
    stray = tmp_path / "stray"
    stray.mkdir()
    for name in ("textual", "json", "jinja2", "llama_cpp"):
        (stray / f"{name}.py").write_text("raise SystemExit('the stray module was imported')\n")
    with Terminal([*LLAMA_TUI, "local", str(tiny_model)], env=app_env(tmp_path), cwd=stray) as term:
        term.wait_for(" idle ")
        term.type("hello")
        term.press("enter")
        term.wait_for(re.compile(r" idle .* TTFT \d+ ms"))
        term.press("ctrl+q")
        assert term.wait() == 0
        assert "stray module" not in term.output_text()


def test_suspended_from_a_shell_and_brought_back(tiny_model: Path, tmp_path: Path) -> None:
    """Job control in a real shell: the job suspended (SIGTSTP to it, as ctrl+z sends) stops,
    the shell gets the terminal back, `fg` brings the app back."""
    env = app_env(tmp_path, PS1="READY$ ")
    with Terminal(["bash", "--norc", "--noprofile", "-i"], env=env) as term:
        term.wait_for("READY$")
        term.type(f"{' '.join(LLAMA_TUI)} local {tiny_model}\r")
        term.wait_for(" idle ")
        os.killpg(os.getpgid(term.descendants()[0]), signal.SIGTSTP)  # `kill -TSTP %1`, as ctrl+z would
        # (The screen emulator has no alternate screen: watch the bytes written.)
        term.wait_for(lambda: re.search(r"\x1b\[\?1049l.*Stopped.*READY\$ $", term.output_text(), re.S) is not None)
        term.type("fg\r")
        term.wait_for(lambda: term.output_text().count("\x1b[?1049h") == 2)  # the app took the screen again
        term.wait_for(" idle ")
        term.press("ctrl+q")
        term.wait_for(lambda: term.output_text().rstrip().endswith("READY$"))
        term.type("echo exit=$?\r")
        term.wait_for(lambda: "exit=0" in term.output_text())
        term.type("exit\r")
        term.wait()


@pytest.mark.parametrize("signum, said", [
    (signal.SIGKILL, "llama-tui stopped: it was killed (SIGKILL), perhaps by the system running out of memory."),
    (signal.SIGABRT, "llama-tui stopped: llama.cpp aborted (SIGABRT), usually on a malformed model file."),
])
def test_an_app_killed_by_a_signal_it_cannot_handle_gives_the_terminal_back_with_one_line(
    tiny_model: Path, tmp_path: Path, signum: int, said: str
) -> None:
    """README, Crashes: "If the app dies by a signal it could not handle (... llama.cpp
    aborting, the out-of-memory killer), the watcher restores the terminal and prints one line
    saying what happened" (the signals sent here as the kernel or abort() would send them)."""
    with Terminal([*LLAMA_TUI, "--max-token", "16384", "local", str(tiny_model)], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        start_reply(term)
        os.kill(term.descendants()[0], signum)
        assert term.wait() == 128 + signum
        assert_terminal_given_back(term, modes)
        last_words = term.output_text().rsplit("\x1b[?1049l", 1)[-1]
    lines = [line for line in re.sub(r"\x1b\[[0-9;?<]*[A-Za-z]", "", last_words).splitlines() if line.strip()]
    assert lines == [f"{said} The log is in {tmp_path / 'llama-tui' / 'log' / 'llama-tui.log'}"]
    if signum == signal.SIGABRT:  # where it happened, for a report (nothing can be written on SIGKILL)
        assert "Fatal Python error: Aborted" in log_text(tmp_path)


@pytest.mark.parametrize("data_folder_usable", [True, False])
def test_what_was_written_is_saved_under_the_data_folder_or_printed(
    tiny_model: Path, tmp_path: Path, data_folder_usable: bool
) -> None:
    """README, Unexpected errors: "what you had typed and the conversation are saved in a
    Markdown file under the data folder (`~/.local/share/llama-tui/rescued/`; printed instead if
    that fails)". The real layout here: HOME, no LLAMA_TUI_HOME."""
    home = tmp_path / "home"
    config = home / ".config" / "llama-tui"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[sampling]\nmax_reply_tokens = 8\n")
    if not data_folder_usable:
        (home / ".local" / "share").mkdir(parents=True)
        (home / ".local" / "share" / "llama-tui").write_text("a file where the data folder should be\n")
    env = app_env(home)
    del env["LLAMA_TUI_HOME"]
    argv = [sys.executable, "-c", CRASH_ON_NEW_CHAT, "local", str(tiny_model)]
    with Terminal(argv, env=env) as term:
        term.wait_for(" idle ")
        term.type("my first question")
        term.press("enter")
        term.wait_for(re.compile(r" idle .* TTFT \d+ ms"))
        term.type("a draft I have not sent")
        term.press("ctrl+n")
        assert term.wait() == 1
        report = term.output_text().rsplit("\x1b[?1049l", 1)[-1].replace("\r\n", "\n")
    assert "llama-tui stopped on an unexpected error: RuntimeError: an injected bug" in report
    if data_folder_usable:
        saved = re.search(r"What you had written is saved in (\S+\.md)", report)
        assert saved, report
        path = Path(saved.group(1))
        assert path.parent == home / ".local" / "share" / "llama-tui" / "rescued"
        rescued = path.read_text(encoding="utf-8")
    else:
        assert "What you had written could not be saved to a file; here it is:" in report
        rescued = report
    assert "## Not sent yet: the chat message box\n\na draft I have not sent" in rescued
    assert "**user:**\n\nmy first question" in rescued
