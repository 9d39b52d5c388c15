"""The command line, as the Rust CLI it descends from had it.

    llama-tui [OPTIONS] [local PATH | hf-model REPO FILE]

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

from llama_tui import paths
from llama_tui.engine.chat_templates import chat_format_names
from llama_tui.engine.config import AppConfig, config_path, load_config, merge_cli, validate_field
from llama_tui.engine.settings import (
    DEFAULT_CONTEXT,
    DEFAULT_SEED,
    OverrideValue,
    default_batch_threads,
    default_threads,
    parse_override,
)
from llama_tui.engine.starter import starter_model_installed
from llama_tui.guardian import (
    CHILD_ENV,
    GAVE_SCREEN_BACK,
    HOLDS_SCREEN,
    end_with_parent,
    handle_ctrl_c,
    tell_guardian,
)
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


# argparse dest -> the setting it sets (see engine.config): flags override the settings file.
_SETTING_OF_FLAG = {
    "max_token": "n_ctx",
    "n_gpu_layers": "n_gpu_layers",
    "seed": "seed",
    "threads": "n_threads",
    "threads_batch": "n_threads_batch",
    "chat_format": "chat_format",
    "override": "overrides",
    "system_prompt": "system_prompt",
}


def _add_options(parser: argparse.ArgumentParser, *, override_dest: str = "override") -> None:
    """The shared options, on the main parser and each sub-command. None has an argparse
    default (SUPPRESS), so what the user typed is told apart from the settings file.

    A sub-command's values replace the main parser's, so its -o list gets its own dest and
    the two lists are joined (`-o a=1 local m.gguf -o b=2` keeps both)."""
    none = argparse.SUPPRESS
    parser.add_argument("-m", "--mode", choices=["chat", "completion"], default=none,
                        help="the tab to open on (default: chat)")
    parser.add_argument("--max-token", type=_setting("n_ctx"), default=none, metavar="N",
                        help=f"context length in tokens (default: {DEFAULT_CONTEXT})")
    parser.add_argument("-o", "--override", type=_override, action="append", default=none, metavar="KEY=VALUE",
                        dest=override_dest,
                        help="override GGUF metadata; VALUE is read as int, float, bool, else string (repeatable)")
    parser.add_argument("-g", "--n-gpu-layers", type=_setting("n_gpu_layers"), default=none, metavar="N",
                        help="layers to offload to the GPU, -1 for all (default: 0; needs a GPU build of llama.cpp)")
    parser.add_argument("-s", "--seed", type=_setting("seed"), default=none,
                        help=f"sampling seed (default: {DEFAULT_SEED})")
    parser.add_argument("--threads", type=_setting("n_threads"), default=none, metavar="N",
                        help=f"threads for generation (default: {default_threads()}: the cores but one, kept for the UI)")
    parser.add_argument("--threads-batch", type=_setting("n_threads_batch"), default=none, metavar="N",
                        help=f"threads for prompt evaluation (default: {default_batch_threads()}: all cores)")
    parser.add_argument("--chat-format", choices=chat_format_names(), default=none,
                        help="chat template (default: the file's own, else picked by architecture; "
                             "base models get 'transcript')")
    parser.add_argument("--system-prompt", default=none, metavar="TEXT", help="system prompt for chats")
    parser.add_argument("-v", "--verbose", action="store_true", default=none,
                        help="show tokens, tokens per second, prompt speed and time to first token under each reply")


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
    commands = parser.add_subparsers(dest="command", metavar="{local,hf-model}")
    local = commands.add_parser("local", help="open a GGUF file on disk")
    local.add_argument("path", type=Path, help="path to a .gguf file")
    _add_options(local, override_dest="override_after_command")
    hub = commands.add_parser("hf-model", help="download a GGUF file from Hugging Face (in the app, with progress), then open it")
    hub.add_argument("repo", help="repository, e.g. unsloth/gemma-3-270m-it-GGUF")
    hub.add_argument("file", help="file in the repository, e.g. gemma-3-270m-it-Q4_K_M.gguf")
    _add_options(hub, override_dest="override_after_command")
    return parser


def typed_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings the user typed on the command line, by setting name."""
    typed = {setting: getattr(args, flag) for flag, setting in _SETTING_OF_FLAG.items() if hasattr(args, flag)}
    overrides = [*getattr(args, "override", []), *getattr(args, "override_after_command", [])]
    if overrides:
        typed["overrides"] = dict(overrides)
    return typed


def options_from_args(
    args: argparse.Namespace,
    model_path: Path | None,
    saved: AppConfig | None = None,
    *,
    open_picker: bool = False,
    config_warnings: Iterable[str] = (),
    storage_problems: Iterable[str] = (),
) -> LaunchOptions:
    """Launch options: the saved settings (or defaults), with the typed flags on top."""
    effective = merge_cli(saved or AppConfig(), typed_settings(args))
    return LaunchOptions(
        model_path=model_path,
        load=effective.load,
        sampling=effective.sampling,
        mode=getattr(args, "mode", "chat"),
        verbose=getattr(args, "verbose", False),
        system_prompt=effective.system_prompt,
        open_picker=open_picker,
        hub_download=(args.repo, args.file) if getattr(args, "command", None) == "hf-model" else None,
        saved_config=saved,
        config_warnings=tuple(config_warnings),
        storage_problems=tuple(storage_problems),
    )


def choose_model(args: argparse.Namespace, saved: AppConfig) -> tuple[Path | None, bool]:
    """(model path or None for the starter, whether to open the picker instead)."""
    if args.command == "local":
        return args.path.expanduser(), False
    if args.command == "hf-model":
        return None, False  # the app downloads it first (see LaunchOptions.hub_download)
    if saved.last_model is not None and saved.last_model.is_file():
        return saved.last_model, False
    if starter_model_installed():
        return None, False
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
    saved, warnings = load_config()  # the app shows and logs the warnings
    model_path, open_picker = choose_model(args, saved)
    problems = paths.unwritable_places()
    options = options_from_args(args, model_path, saved, open_picker=open_picker, config_warnings=warnings,
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
