"""The command line: the Rust CLI's flags, defaults, and clear usage errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llama_tui import cli
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import DEFAULT_SEED, SETTINGS, available_cores
from tests.tiny_gguf import write_tiny_llama_gguf


def options(argv: list[str]):
    args = cli.build_parser().parse_args(argv)
    model, _ = cli.choose_model(args, cli.AppConfig())
    return args, cli.options_from_args(args, model)


def test_defaults_match_the_seed_cli() -> None:
    args, opts = options([])
    assert args.command is None and opts.model == ModelRef.starter()
    assert opts.settings.sampling.seed == DEFAULT_SEED == 561371
    assert opts.mode == "chat" and not opts.verbose
    # Never more threads than cores; generation leaves one core to the UI.
    assert opts.settings.load.n_threads == max(1, available_cores() - 1)
    assert opts.settings.load.n_threads_batch == available_cores()
    assert opts.settings.load.n_ctx == 4096 and opts.settings.load.n_gpu_layers == 0


@pytest.mark.parametrize("argv", [
    ["-s", "5", "-g", "3", "--threads", "1", "local", "m.gguf"],
    ["local", "m.gguf", "-s", "5", "-g", "3", "--threads", "1"],
    ["-s", "5", "local", "m.gguf", "-g", "3", "--threads", "1"],
])
def test_options_work_before_or_after_the_model_command(argv: list[str]) -> None:
    args, opts = options(argv)
    assert args.command == "local" and opts.model == ModelRef.file("m.gguf") and opts.model_named
    assert (opts.settings.sampling.seed, opts.settings.load.n_gpu_layers, opts.settings.load.n_threads) == (5, 3, 1)


def test_all_flags_reach_the_settings() -> None:
    _, opts = options([
        "-m", "completion", "--max-token", "1024", "-o", "a.int=1", "-o", "b.float=1.5", "-o", "c.bool=true",
        "-o", "d.str=hello", "-g", "-1", "--threads-batch", "2", "-v", "--chat-format", "chatml",
        "--system-prompt", "Be kind.", "local", "x.gguf",
    ])
    assert opts.mode == "completion" and opts.verbose
    load = opts.settings.load
    assert load.n_ctx == 1024 and load.n_gpu_layers == -1 and load.n_threads_batch == 2
    assert opts.settings.load.overrides == {"a.int": 1, "b.float": 1.5, "c.bool": True, "d.str": "hello"}
    assert type(opts.settings.load.overrides["a.int"]) is int and type(opts.settings.load.overrides["c.bool"]) is bool
    assert opts.settings.load.chat_format == "chatml" and opts.settings.chat.system_prompt == "Be kind."


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads: must be a whole number from 1"),
    (["-s", "abc"], "--seed: must be a whole number from 0 to 4294967295"),
    (["-s", "-1"], "--seed: must be a whole number from 0"),
    (["--max-token", "10"], "--max-token: must be a whole number from 64"),
    (["-o", "novalue"], "expected KEY=VALUE"),
    (["-m", "poem"], "invalid choice"),
    (["-g", "-2"], "from -1 to 999 (-1 offloads all layers)"),
    (["local"], "the following arguments are required: path"),
    (["hf-model", "only-repo"], "the following arguments are required: file"),
])
def test_bad_values_get_a_usage_error_not_a_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: llama-tui" in err and "Traceback" not in err


def test_help_states_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 561371" in out and "default: 4096" in out and "starter model" in out


def test_hf_model_is_handed_to_the_app_to_download() -> None:
    args, opts = options(["-s", "3", "hf-model", "acme/tiny-GGUF", "tiny-F32.gguf"])
    assert cli.choose_model(args, cli.AppConfig()) == (None, False)
    assert opts.hub_download == ("acme/tiny-GGUF", "tiny-F32.gguf") and opts.settings.sampling.seed == 3


def test_saved_settings_are_defaults_and_flags_override_them_for_one_run(tmp_path: Path) -> None:
    from llama_tui.engine.config import AppConfig

    saved = AppConfig(
        settings=AppConfig().settings.with_values({"seed": 99, "n_ctx": 8192, "system_prompt": "Saved prompt."})
    )
    args = cli.build_parser().parse_args(["-s", "5"])
    opts = cli.options_from_args(args, None, saved)
    assert opts.settings.sampling.seed == 5  # typed
    assert opts.settings.load.n_ctx == 8192 and opts.settings.chat.system_prompt == "Saved prompt."  # from the file
    assert opts.saved_config is saved and saved.settings.sampling.seed == 99  # the file's values are not changed


def test_no_model_command_opens_the_last_model_then_the_starter(tmp_path: Path) -> None:
    from llama_tui.engine.config import AppConfig

    args = cli.build_parser().parse_args([])
    last = ModelRef.file(write_tiny_llama_gguf(tmp_path / "last.gguf"))
    assert cli.choose_model(args, AppConfig(last_model=last)) == (last, False)
    # A last model that was deleted since: the starter model (installed with the test extra).
    gone = ModelRef.file(tmp_path / "gone.gguf")
    assert cli.choose_model(args, AppConfig(last_model=gone)) == (ModelRef.starter(), False)
    # A server model used last is opened again (whether it answers is found out then).
    server = ModelRef.server("http://gpu:8080/v1", "qwen")
    assert cli.choose_model(args, AppConfig(last_model=server)) == (server, False)


def test_overrides_before_and_after_the_model_command_are_all_kept() -> None:
    _, opts = options(["-o", "a=1", "local", "m.gguf", "-o", "b=2", "-o", "a=3"])
    assert opts.settings.load.overrides == {"a": 3, "b": 2}  # the later value of a key wins


def test_settings_file_warnings_are_handed_to_the_app() -> None:
    args = cli.build_parser().parse_args([])
    opts = cli.options_from_args(args, None, cli.AppConfig(), config_warnings=["config.toml: [load] n_ctx = 1 ..."])
    assert opts.config_warnings == ("config.toml: [load] n_ctx = 1 ...",)
    assert cli.options_from_args(args, None).config_warnings == ()


def test_chat_format_takes_the_names_the_readme_lists(capsys: pytest.CaptureFixture[str]) -> None:
    """README: `--chat-format NAME`: `gguf` (the file's own), `transcript`, `gemma`, `chatml`,
    `llama-3`, `mistral`."""
    listed = ["gguf", "transcript", "gemma", "chatml", "llama-3", "mistral"]
    for name in listed:
        _, opts = options(["--chat-format", name, "local", "m.gguf"])
        assert opts.settings.load.chat_format == name
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--chat-format", "llama-2"])
    err = capsys.readouterr().err
    assert "invalid choice: 'llama-2'" in err and "'gguf', 'transcript', 'gemma', 'chatml', 'llama-3', 'mistral'" in err


def run_llama_tui(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`llama-tui ARGV` as a user runs it, its output captured (no terminal: no app starts)."""
    from tests.terminal import LLAMA_TUI

    return subprocess.run([*LLAMA_TUI, *argv], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)


def test_help_prints_the_log_file_path(tmp_path: Path) -> None:
    """README, The log: "a log file (`llama-tui --help` prints its path)"."""
    from tests.terminal import app_env

    done = run_llama_tui("--help", env=app_env(tmp_path, COLUMNS="400"))  # no line breaks in the paths
    assert done.returncode == 0, done.stderr
    assert f"Logs go to {tmp_path / 'llama-tui' / 'log' / 'llama-tui.log'}." in done.stdout


def test_help_prints_the_log_file_path_whole_in_an_80_column_terminal() -> None:
    from tests.terminal import app_env

    home = Path("/home/jean-luc.picard")  # only computed into paths: nothing is read or written there
    env = app_env(home, COLUMNS="80")
    del env["LLAMA_TUI_HOME"]  # the real layout: ~/.local/state/llama-tui/log
    done = run_llama_tui("--help", env=env)
    assert done.returncode == 0, done.stderr
    assert f"{home}/.local/state/llama-tui/log/llama-tui.log" in done.stdout


@pytest.mark.parametrize("argv, message", [
    (["--max-token", "lots"], "--max-token: must be a whole number from 64"),
    (["local"], "the following arguments are required: path"),
    (["--mode", "poem", "local", "m.gguf"], "invalid choice: 'poem'"),
    (["remote", "127.0.0.1:88765"], "has no usable port: a port is a number from 1 to 65535"),
])
def test_bad_values_on_the_real_command_line_get_a_usage_error(tmp_path: Path, argv: list[str], message: str) -> None:
    """README, Command line: "Bad values get a usage error" (exit code 2, no traceback, no app)."""
    from tests.terminal import app_env

    done = run_llama_tui(*argv, env=app_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("usage: llama-tui") and message in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_remote_opens_a_server_model() -> None:
    """`llama-tui remote URL [--model ID] [--api-key-env VAR]`."""
    _, opts = options(["remote", "gpu-box:8080", "--model", "qwen3", "--api-key-env", "MY_KEY"])
    assert opts.model == ModelRef.server("http://gpu-box:8080/v1", "qwen3") and opts.model_named
    assert opts.settings.server.api_key_env == "MY_KEY"
    _, only = options(["remote", "http://h:1234/v1"])
    assert only.model == ModelRef.server("http://h:1234/v1", "")  # the server's only model


def test_resume_is_handed_to_the_app() -> None:
    _, opts = options(["--resume", "last"])
    assert opts.resume == "last" and not opts.model_named


def test_every_setting_with_a_flag_is_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The flags are made from the table of settings: each has its flag and its hint in --help."""
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for setting in SETTINGS.values():
        for flag in setting.flags:
            assert flag in out, flag
        if setting.flags:
            assert " ".join(setting.hint.split()[:4]) in out, setting.name


def test_sampling_flags_reach_the_settings() -> None:
    _, opts = options(["--temperature", "0.2", "--top-k", "5", "--top-p", "0.5", "--min-p", "0.1",
                       "--repeat-penalty", "1.2", "--max-reply-tokens", "64", "--resume-last"])
    sampling = opts.settings.sampling
    assert (sampling.temperature, sampling.top_k, sampling.top_p, sampling.min_p, sampling.repeat_penalty,
            sampling.max_reply_tokens) == (0.2, 5, 0.5, 0.1, 1.2, 64)
    assert opts.settings.chat.resume_last is True


def test_without_a_terminal_the_app_says_so_and_ends(tmp_path: Path) -> None:
    """Piped, the app would draw into the pipe and spin on its input: one line, exit code 2."""
    from tests.terminal import app_env

    done = run_llama_tui("local", str(tmp_path / "m.gguf"), env=app_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("the app needs a terminal: its input and output are not one here "
                                        "(history, export and import work anywhere)")
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert run_llama_tui("history", env=app_env(tmp_path)).returncode == 0  # these work anywhere
