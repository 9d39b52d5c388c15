"""The command line, as the Rust CLI it descends from had it.

    llama-tui [OPTIONS] [local PATH | hf-model REPO FILE | remote URL [--model ID]]
    llama-tui history | export ID | import FILE    (history_cli.py)

Options may come before or after the model command. Bad values get a usage error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NotRequired, TypedDict

from llama_tui import paths
from llama_tui.engine.config import AppConfig, config_path, load_config, merge_cli, validate_field
from llama_tui.engine.model_ref import ModelRef, normalize_endpoint
from llama_tui.engine.settings import SETTINGS, OverrideValue, Setting, parse_override
from llama_tui.engine.starter import starter_model_installed
from llama_tui.guardian import (
    CHILD_ENV,
    GAVE_SCREEN_BACK,
    HOLDS_SCREEN,
    end_with_parent,
    handle_ctrl_c,
    tell_guardian,
)
from llama_tui.history_cli import COMMANDS, add_commands
from llama_tui.history_cli import run as run_history_command
from llama_tui.launch import LaunchOptions


def _setting(name: str) -> Callable[[str], object]:
    """An argparse type checking a value with the same rules as the settings panel."""

    def parse(text: str) -> object:
        value, error = validate_field(name, text)
        if error is not None:
            raise argparse.ArgumentTypeError(error)
        return value

    parse.__name__ = name  # argparse names it in its messages
    return parse


def _override(text: str) -> tuple[str, OverrideValue]:
    try:
        return parse_override(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flag_help(s: Setting) -> str:
    default = s.default
    if s.machine_default is not None:
        shown = f" (default here: {default})"
    elif default in (None, "", {}):
        shown = f" (default: {s.empty})" if s.empty else ""
    else:
        shown = f" (default: {default})"
    return s.hint + shown + (" (repeatable)" if s.kind == "overrides" else "")


def _server_address(text: str) -> str:
    try:
        return normalize_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_AFTER_COMMAND = "_after_command"


class _FlagArgs(TypedDict):
    """What every setting's flag passes to add_argument."""

    default: str
    help: str
    dest: str
    metavar: NotRequired[str]


def _add_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """The shared options, on the main parser and each sub-command: one per setting that has
    a flag (engine.settings), plus the run's own. None has an argparse default (SUPPRESS), so
    what the user typed is told apart from the settings file.

    A sub-command's values replace the main parser's, so its -o list gets its own dest and
    the two lists are joined (`-o a=1 local m.gguf -o b=2` keeps both)."""
    none = argparse.SUPPRESS
    parser.add_argument("-m", "--mode", choices=["chat", "completion"], default=none,
                        help="the tab to open on (default: chat)")
    for s in SETTINGS.values():
        if not s.flags:
            continue
        common: _FlagArgs = {"default": none, "help": _flag_help(s), "dest": s.name}
        if s.metavar:
            common["metavar"] = s.metavar
        if s.kind == "overrides":
            common["dest"] = s.name + (_AFTER_COMMAND if after_command else "")
            parser.add_argument(*s.flags, type=_override, action="append", **common)
        elif s.kind == "choice":
            assert s.choices is not None
            parser.add_argument(*s.flags, choices=s.choices(), **common)
        elif s.kind == "bool":
            parser.add_argument(*s.flags, action=argparse.BooleanOptionalAction, **common)
        else:
            parser.add_argument(*s.flags, type=_setting(s.name), **common)
    parser.add_argument("-v", "--verbose", action="store_true", default=none,
                        help="show tokens, tokens per second, prompt speed, time to first token and the share of "
                             "drafted tokens accepted (speculative decoding) under each reply")
    parser.add_argument("--resume", metavar="ID|last", default=none,
                        help="open a saved conversation (an id from `llama-tui history`, or last), "
                             "with its model unless a model is named")


class _PathsWholeFormatter(argparse.HelpFormatter):
    """argparse wraps at hyphens and inside long words, which splits paths such as
    /home/jean-luc/.local/state/llama-tui/log/llama-tui.log over two lines; keep them whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent,
                             break_on_hyphens=False, break_long_words=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llama-tui",
        description="Chat with a local GGUF model in a full-screen terminal app (llama.cpp inside).",
        formatter_class=_PathsWholeFormatter,
    )
    _add_options(parser)
    parser.epilog = (
        f"Defaults above are overridden by the settings saved in the app ({config_path()}); "
        "flags override both, for this run only. "
        f"Logs go to {paths.log_file()}. With no model command, the last model "
        "used opens (the first time: the starter model, Gemma 3 270M)."
    )
    commands = parser.add_subparsers(dest="command", metavar="{local,hf-model,remote,history,export,import}")
    local = commands.add_parser("local", help="open a GGUF file on disk")
    local.add_argument("path", type=Path, help="path to a .gguf file")
    _add_options(local, after_command=True)
    hub = commands.add_parser(
        "hf-model", help="download a GGUF file from Hugging Face (in the app, with progress), then open it"
    )
    hub.add_argument("repo", help="repository, e.g. unsloth/gemma-3-270m-it-GGUF")
    hub.add_argument("file", help="file in the repository, e.g. gemma-3-270m-it-Q4_K_M.gguf")
    _add_options(hub, after_command=True)
    remote = commands.add_parser("remote", help="chat with a model on an OpenAI-compatible server "
                                                "(llama-server, vLLM, Ollama, LM Studio...)")
    remote.add_argument("url", type=_server_address, help="the server's API address, e.g. http://gpu-box:8080/v1")
    remote.add_argument("--model", default="", metavar="ID",
                        help="the model's id on the server (needed only when it serves several)")
    _add_options(remote, after_command=True)
    add_commands(commands)
    return parser


def typed_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings the user typed on the command line, by setting name."""
    typed = {name: getattr(args, name) for name, s in SETTINGS.items() if s.kind != "overrides" and hasattr(args, name)}
    overrides = [*getattr(args, "overrides", []), *getattr(args, "overrides" + _AFTER_COMMAND, [])]
    if overrides:
        typed["overrides"] = dict(overrides)
    return typed


def options_from_args(
    args: argparse.Namespace,
    model: ModelRef | None,
    saved: AppConfig | None = None,
    *,
    open_picker: bool = False,
    config_warnings: Iterable[str] = (),
    storage_problems: Iterable[str] = (),
) -> LaunchOptions:
    """Launch options: the saved settings (or defaults), with the typed flags on top."""
    settings = merge_cli((saved or AppConfig()).settings, typed_settings(args))
    return LaunchOptions(
        model=model,
        settings=settings,
        mode=getattr(args, "mode", "chat"),
        verbose=getattr(args, "verbose", False),
        open_picker=open_picker,
        hub_download=(args.repo, args.file) if getattr(args, "command", None) == "hf-model" else None,
        model_named=getattr(args, "command", None) in ("local", "remote", "hf-model"),
        resume=getattr(args, "resume", ""),
        saved_config=saved,
        config_warnings=tuple(config_warnings),
        storage_problems=tuple(storage_problems),
    )


def choose_model(args: argparse.Namespace, saved: AppConfig) -> tuple[ModelRef | None, bool]:
    """(the model to open, or None for none; whether to open the picker instead)."""
    if args.command == "local":
        return ModelRef.file(args.path), False
    if args.command == "remote":
        return ModelRef.server(args.url, args.model), False  # a bad address: checked at parsing
    if args.command == "hf-model":
        return None, False  # the app downloads it first (see LaunchOptions.hub_download)
    last = saved.last_model
    if (
        last is not None
        and (last.kind != "file" or (last.path is not None and last.path.is_file()))
        and (last.kind != "starter" or starter_model_installed())
    ):
        return last, False
    if starter_model_installed():
        return ModelRef.starter(), False
    return None, True


def main(argv: list[str] | None = None) -> int:
    """Run the app in this process and return its exit code. (`llama-tui` in a terminal runs
    this in a child process watched by guardian.py.)"""
    # If llama.cpp does abort, skip the gdb backtrace it would print over the terminal.
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    if os.environ.get(CHILD_ENV):
        end_with_parent()
        handle_ctrl_c()
    try:
        return _run(argv)
    except KeyboardInterrupt:  # ctrl+c before the app took the terminal over
        return 128 + signal.SIGINT


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in COMMANDS:  # history, export, import: no full-screen app
        return run_history_command(args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # else it would draw into a pipe and spin
        parser.exit(2, f"{parser.prog}: the app needs a terminal: its input and output are not one here "
                       "(history, export and import work anywhere)\n")
    saved, warnings = load_config()  # the app shows and logs the warnings
    model, open_picker = choose_model(args, saved)
    problems = paths.unwritable_places()
    options = options_from_args(args, model, saved, open_picker=open_picker, config_warnings=warnings,
                                storage_problems=problems.values())

    # Imported late: `--help` and usage errors should not pay for loading Textual and llama.cpp.
    from llama_tui.engine.logs import log_crashes_to, log_to_file, route_native_log
    from llama_tui.ui.app import LlamaApp

    if paths.log_dir() not in problems:
        try:
            log_to_file(paths.log_file())
            log_crashes_to(paths.log_file())
        except OSError:  # unwritable after all: the Log tab still shows everything
            pass
    route_native_log()
    app = LlamaApp(options)
    tell_guardian(HOLDS_SCREEN)  # from here a crash leaves the screen to the guardian to restore
    try:
        app.run()
    finally:
        tell_guardian(GAVE_SCREEN_BACK)  # Textual has given the terminal back
        # Wait for the decode thread to leave llama.cpp before the model is freed.
        if app.model is not None:
            app.model.close()
    if app.rescue is not None:
        sys.stderr.write(app.rescue.report())
    return app.return_code or 0
