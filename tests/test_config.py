"""The settings file: round trips that keep a person's edits, never raising on a bad file."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from llama_tui.engine.chat_templates import chat_format_names
from llama_tui.engine.config import (
    MAX_CONFIG_BYTES,
    MAX_RECENT_MODELS,
    AppConfig,
    ConfigSaveError,
    add_recent_model,
    config_path,
    format_overrides,
    load_config,
    merge_cli,
    remember_model_in_file,
    save_changes,
    validate_field,
)
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import (
    RELOAD_FIELDS,
    ChatSettings,
    LoadSettings,
    SamplingSettings,
    Settings,
    available_cores,
    default_batch_threads,
    default_threads,
)


def custom_config() -> AppConfig:
    return AppConfig(
        settings=Settings(
            load=LoadSettings(n_ctx=8192, n_gpu_layers=-1, n_threads=3, chat_format="chatml",
                              overrides={"tokenizer.ggml.add_bos_token": False, "llama.rope.scale": 1.5, "x": "y"}),
            sampling=SamplingSettings(seed=7, temperature=0.2, top_p=0.5, top_k=0, min_p=0.0, repeat_penalty=1.1,
                                      max_reply_tokens=256),
            chat=ChatSettings(system_prompt='Be brief.\nNo "[bold]" markup, \\ backslashes or """ quotes are special.'),
        ),
        last_model=ModelRef.file("/models/a.gguf"),
        recent_models=(ModelRef.file("/models/a.gguf"), ModelRef.server("http://gpu:8080/v1", "qwen")),
    )


def write_config(config: AppConfig, path: Path) -> None:
    """Save `config` the two ways the app saves: the settings that differ from the defaults,
    then each recent model, oldest first."""
    save_changes(Settings().changed(config.settings), path)
    for model in reversed(config.recent_models):
        remember_model_in_file(model, path)


def file_ref(path: Path | str) -> ModelRef:
    return ModelRef.file(path)


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    config, warnings = load_config(tmp_path / "nope.toml")
    assert config == AppConfig() and warnings == []


def test_config_path_is_in_the_config_dir() -> None:
    assert config_path().name == "config.toml"
    assert config_path().parent.name == "config"  # under LLAMA_TUI_HOME in tests


def test_round_trip_keeps_a_persons_comments_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = custom_config()
    write_config(config, path)
    assert load_config(path) == (config, [])

    # A person edits the file: a comment, a value, a key from some future version.
    text = path.read_text()
    text = text.replace("temperature = 0.2", "temperature = 0.3  # warmer for stories")
    text = text.replace("[sampling]", "# my sampling notes\n[sampling]\nmirostat = 2")
    text = "# hand-edited\n" + text + "\n[plugins]\nname = 'kept'\n"
    path.write_text(text)
    loaded, warnings = load_config(path)
    assert loaded.settings.sampling.temperature == 0.3
    assert warnings == ["config.toml: unknown setting plugins (kept in the file, not used)",
                        "config.toml: unknown setting [sampling] mirostat (kept in the file, not used)"]

    save_changes({"top_k": 50}, path)
    saved = path.read_text()
    for kept in ("# hand-edited", "temperature = 0.3  # warmer for stories", "# my sampling notes",
                 "mirostat = 2", "[plugins]", "name = 'kept'"):
        assert kept in saved
    assert "top_k = 50" in saved
    assert load_config(path)[0] == replace_sampling(loaded, top_k=50)
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed into place


def replace_sampling(config: AppConfig, **changes: object) -> AppConfig:
    return replace(config, settings=config.settings.with_values(changes))


def test_unchanged_values_keep_their_spelling_and_removed_overrides_go(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[load]\nn_ctx = 8_192\n[load.overrides]\nold = 1\n")
    config, warnings = load_config(path)
    assert warnings == [] and config.settings.load.n_ctx == 8192 and config.settings.load.overrides == {"old": 1}
    save_changes({"overrides": {"new": True}}, path)
    saved = path.read_text()
    assert "n_ctx = 8_192" in saved
    assert tomllib.loads(saved)["load"]["overrides"] == {"new": True}


def test_default_threads_are_left_out_so_the_file_follows_the_machine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_changes({}, path)
    load = tomllib.loads(path.read_text())["load"]
    assert "n_threads" not in load and "n_threads_batch" not in load
    assert load_config(path)[0].settings.load.n_threads == default_threads()
    assert load_config(path)[0].settings.load.n_threads_batch == default_batch_threads()
    save_changes({"n_threads": default_threads() + 1}, path)
    assert tomllib.loads(path.read_text())["load"]["n_threads"] == default_threads() + 1
    save_changes({"n_threads": default_threads()}, path)  # set back to this machine's default
    assert "n_threads" not in tomllib.loads(path.read_text())["load"]


def test_new_file_explains_itself_and_uses_file_spellings_for_none(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_changes({}, path)
    text = path.read_text()
    assert text.startswith("# llama-tui settings")
    data = tomllib.loads(text)
    assert data["load"]["chat_format"] == "" and data["sampling"]["max_reply_tokens"] == 0
    assert "last_model" not in data


def test_broken_toml_gives_defaults_a_warning_and_is_kept_aside_on_save(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[load\nn_ctx = 4096\n")
    config, warnings = load_config(path)
    assert config == AppConfig()
    assert len(warnings) == 1 and "not valid TOML" in warnings[0] and "line 1" in warnings[0]
    save_changes({"top_k": 5}, path)
    assert (tmp_path / "config.toml.broken").read_text() == "[load\nn_ctx = 4096\n"
    assert load_config(path) == (replace_sampling(AppConfig(), top_k=5), [])


def test_a_broken_file_that_cannot_be_kept_aside_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[load\nn_ctx = 4096\n")
    # A link into a folder that does not exist: the copy fails, for root too.
    (tmp_path / "config.toml.broken").symlink_to(tmp_path / "missing" / "broken")
    with pytest.raises(ConfigSaveError, match=r"not valid TOML and could not be copied to config\.toml\.broken"):
        save_changes({"top_k": 5}, path)
    with pytest.raises(ConfigSaveError):
        remember_model_in_file(file_ref(tmp_path / "m.gguf"), path)
    assert path.read_text() == "[load\nn_ctx = 4096\n"


def test_not_utf8_gives_defaults_and_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"system_prompt = \"\xff\"\n")
    config, warnings = load_config(path)
    assert config == AppConfig() and len(warnings) == 1


def test_bad_values_fall_back_one_by_one_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'system_prompt = 5\n'
        'recent_models = ["/m/a.gguf", 3, "/m/a.gguf", "/m/b.gguf"]\n'
        '[load]\n'
        'n_ctx = 10\n'             # below 64
        'n_gpu_layers = true\n'    # a bool is not a number
        'seed = 12\n'              # fine
        'chat_format = "llama-2"\n'
        '[load.overrides]\n'
        'ok = 1\n'
        'bad = [1, 2]\n'
        '[sampling]\n'
        'temperature = "hot"\n'
        'top_p = nan\n'
        'top_k = 1.5\n'
        'min_p = 0.1\n'            # fine
        'max_reply_tokens = 2000000\n'  # more than any context
    )
    config, warnings = load_config(path)
    defaults = AppConfig()
    assert config.settings.load == LoadSettings(overrides={"ok": 1})
    assert config.settings.sampling == SamplingSettings(seed=12, min_p=0.1)  # seed: read where older files kept it
    assert config.settings.chat.system_prompt == defaults.settings.chat.system_prompt
    assert config.recent_models == (file_ref("/m/a.gguf"), file_ref("/m/b.gguf"))
    text = "\n".join(warnings)
    for expected in (
        "system_prompt = 5 must be a string",
        "[load] n_ctx = 10 must be a whole number from 64 to 1048576; using 4096",
        "[load] n_gpu_layers = true must be a whole number from -1 to 999",
        '[load] chat_format = "llama-2" must be empty (auto) or one of: gguf',
        "[load.overrides] bad = [1, 2] must be a number, true/false or a string; left out",
        '[sampling] temperature = "hot" must be a number from 0 to 5; using 0.8',
        "[sampling] top_p = nan",
        "[sampling] top_k = 1.5 must be a whole number from 0 to 1000 (0 turns it off); using 40",
        "[sampling] max_reply_tokens = 2000000 must be 0 (no limit) or a whole number from 1 to 1048576",
        "recent_models: 3 is not a model",
    ):
        assert expected in text
    assert len(warnings) == 10
    assert all(w.startswith("config.toml: ") for w in warnings)


def test_a_section_that_is_not_a_table_gives_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('load = 3\n[sampling]\ntemperature = 1\n')
    config, warnings = load_config(path)
    assert config.settings.load == LoadSettings() and config.settings.sampling.temperature == 1.0
    assert warnings == ["config.toml: load must be a [load] table; using the defaults for all of it"]
    save_changes({"top_k": 5}, path)  # not a load setting: the bad value stays
    assert "load = 3\n" in path.read_text()
    save_changes({"n_ctx": 2048}, path)  # a load setting: the bad value is replaced by a real table
    assert load_config(path) == (replace(config, settings=config.settings.with_values({"n_ctx": 2048, "top_k": 5})), [])


def test_remember_model_moves_to_front_and_keeps_ten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for index in range(12):
        recent = remember_model_in_file(file_ref(tmp_path / f"m{index}.gguf"), path)
    config, warnings = load_config(path)
    assert warnings == [] and config.last_model == file_ref(tmp_path / "m11.gguf")
    assert config.recent_models == recent == tuple(file_ref(tmp_path / f"m{i}.gguf") for i in range(11, 1, -1))
    assert len(config.recent_models) == MAX_RECENT_MODELS

    m5 = file_ref(tmp_path / "m5.gguf")
    again = remember_model_in_file(m5, path)
    assert again[0] == m5 == load_config(path)[0].last_model
    assert again.count(m5) == 1 and len(again) == 10
    assert add_recent_model(again, m5) == again


def test_remember_model_stores_absolute_paths_without_resolving_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"")
    (tmp_path / "model.gguf").symlink_to(blob)
    monkeypatch.chdir(tmp_path)
    remember_model_in_file(file_ref("model.gguf"), tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml")[0].last_model == file_ref(tmp_path / "model.gguf")


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("n_ctx", ["64", "1048576", " 4096 "], ["63", "1048577", "4096.0", "", "lots"]),
        ("n_gpu_layers", ["-1", "0", "999"], ["-2", "1000", ""]),
        ("n_threads", ["1", "256"], ["0", "257", "-1", "two"]),
        ("n_threads_batch", ["1", "256"], ["0", "257"]),
        ("seed", ["0", str(2**32 - 1)], ["-1", str(2**32), "1.0"]),
        ("temperature", ["0", "5", "0.7"], ["-0.1", "5.01", "nan", "inf", "0,7", ""]),
        ("top_p", ["0", "1"], ["-0.01", "1.01"]),
        ("top_k", ["0", "1000"], ["-1", "1001", "2.5"]),
        ("min_p", ["0", "1"], ["-0.1", "1.1"]),
        ("repeat_penalty", ["0.5", "3"], ["0.49", "3.01"]),
        ("max_reply_tokens", ["1", "4097", "1048576", ""], ["0", "-1", "1048577", "many"]),
        ("chat_format", [*chat_format_names(), "", "auto"], ["llama-2", "ChatML"]),
        ("speculative", ["off", "on", "auto", " on "], ["", "yes", "ON", "true"]),
        ("overrides", ["", "a=1", "a=1, b.c=true, d=x,"], ["a", "=1", "a=1, b"]),
    ],
)
def test_validate_field_edges(name: str, good: list[str], bad: list[str]) -> None:
    for raw in good:
        value, error = validate_field(name, raw)
        assert error is None, (name, raw, error)
    for raw in bad:
        value, error = validate_field(name, raw)
        assert value is None and error, (name, raw)


def test_validate_field_values() -> None:
    assert validate_field("n_ctx", "2048") == (2048, None)
    assert validate_field("temperature", "1") == (1.0, None)
    assert isinstance(validate_field("temperature", "1")[0], float)
    assert validate_field("n_threads", "") == (default_threads(), None)
    assert validate_field("n_threads_batch", " ") == (default_batch_threads(), None)
    assert validate_field("max_reply_tokens", "") == (None, None)
    assert validate_field("max_reply_tokens", "100000") == (100000, None)  # the engine stops at a full context
    assert validate_field("max_reply_tokens", "0")[1] == "must be empty (no limit) or a whole number from 1 to 1048576"
    assert validate_field("chat_format", "auto") == (None, None)
    assert validate_field("chat_format", "gemma") == ("gemma", None)
    assert validate_field("overrides", "a=1, b=2.5, c=true, d=hello") == (
        {"a": 1, "b": 2.5, "c": True, "d": "hello"}, None)
    assert validate_field("overrides", "oops")[1] == "expected KEY=VALUE, got 'oops'"
    assert validate_field("seed", "x")[1] == "must be a whole number from 0 to 4294967295"
    assert validate_field("system_prompt", "  [b]hi[/b]\n") == ("  [b]hi[/b]\n", None)
    with pytest.raises(KeyError):
        validate_field("mirostat", "2")


def test_format_overrides_reads_back() -> None:
    overrides = {"a": 1, "b": 2.5, "c": False, "d": "text"}
    assert format_overrides(overrides) == "a=1, b=2.5, c=false, d=text"
    assert validate_field("overrides", format_overrides(overrides)) == (overrides, None)


def test_merge_cli_wins_for_typed_flags_only() -> None:
    settings = custom_config().settings
    merged = merge_cli(settings, {"n_ctx": 2048, "seed": 1, "overrides": {"x": "z", "new": 2},
                                  "system_prompt": "CLI prompt", "temperature": 1.5})
    assert merged.load.n_ctx == 2048 and merged.sampling.seed == 1
    assert merged.load.overrides == {**settings.load.overrides, "x": "z", "new": 2}
    assert merged.chat.system_prompt == "CLI prompt" and merged.sampling.temperature == 1.5
    # What was not typed comes from the file.
    assert merged.load.n_gpu_layers == -1 and merged.load.chat_format == "chatml"
    assert merged.sampling.top_k == 0
    assert merge_cli(settings, {}) == settings
    with pytest.raises(KeyError):
        merge_cli(settings, {"verbose": True})


def test_changed_settings_tell_whether_to_reload() -> None:
    old = custom_config().settings
    sampling_only = old.with_values({"seed": 99, "temperature": 1.0})
    assert set(old.changed(sampling_only)) == {"seed", "temperature"}  # the seed needs no reload
    assert not old.changed(sampling_only).keys() & RELOAD_FIELDS
    reload = old.with_values({"n_ctx": 1024, "system_prompt": "other"})
    assert old.changed(reload) == {"n_ctx": 1024, "system_prompt": "other"}
    assert old.changed(reload).keys() & RELOAD_FIELDS == {"n_ctx"}


def test_save_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text("# mine\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_config(custom_config(), link)
    assert link.is_symlink()
    assert real.read_text().startswith("# mine\n")
    assert load_config(link)[0] == custom_config()


def test_threads_above_cores_are_accepted_up_to_256() -> None:
    assert validate_field("n_threads", str(available_cores() * 4)) == (available_cores() * 4, None)


def test_panel_edits_are_saved_but_not_command_line_values(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    saved = custom_config()
    write_config(saved, path)
    shown = merge_cli(saved.settings, {"n_ctx": 2048, "temperature": 1.5})  # this run's command line
    edited = shown.with_values({"system_prompt": "New.", "top_k": 7})
    assert shown.changed(edited) == {"top_k": 7, "system_prompt": "New."}
    save_changes(shown.changed(edited), path)
    assert load_config(path) == (replace_sampling(saved, system_prompt="New.", top_k=7), [])
    # A command-line value changed in the panel is saved as changed.
    save_changes(shown.changed(shown.with_values({"temperature": 0.9})), path)
    assert load_config(path)[0].settings.sampling.temperature == 0.9


def test_save_changes_refuses_a_name_that_is_not_a_setting(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        save_changes({"top_k": 5, "last_model": "/m.gguf"}, tmp_path / "config.toml")
    assert not (tmp_path / "config.toml").exists()


def test_an_invalid_value_survives_remembering_a_model_and_changing_another_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = (
        "# mine\n"
        'system_prompt = "Be brief."\n'
        "\n"
        "[load]\n"
        "n_ctx = 8_192  # big\n"
        "n_gpu_layers = true\n"
        "\n"
        "[sampling]\n"
        'temperature = "hot"   # the app cannot use this\n'
        "top_k = 40\n"
        "mirostat = 2\n"
    )
    path.write_text(original)
    config, warnings = load_config(path)
    assert config.settings.sampling.temperature == SamplingSettings().temperature and len(warnings) == 3
    remember_model_in_file(file_ref(tmp_path / "m.gguf"), path)
    save_changes({"top_k": 5}, path)
    # Byte for byte what the person wrote, but for the one value changed and the models used.
    lines = path.read_text().splitlines(keepends=True)
    models = [line for line in lines if line.startswith(("last_model = ", "recent_models = "))]
    assert len(models) == 2
    assert "".join(line for line in lines if line not in models) == original.replace("top_k = 40", "top_k = 5")
    assert load_config(path)[1] == warnings


def test_two_instances_keep_both_changes_and_both_models(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sampling]\ntop_k = 40\n")
    first, _ = load_config(path)  # both instances start from the same file
    second, _ = load_config(path)
    remember_model_in_file(file_ref(tmp_path / "a.gguf"), path)  # the first opens a model,
    remember_model_in_file(file_ref(tmp_path / "b.gguf"), path)  # then the second another
    save_changes(first.settings.changed(first.settings.with_values({"temperature": 0.3})), path)
    save_changes(second.settings.changed(second.settings.with_values({"top_k": 5})), path)
    config, warnings = load_config(path)
    assert warnings == []
    assert config.settings.sampling.temperature == 0.3 and config.settings.sampling.top_k == 5
    assert config.last_model == file_ref(tmp_path / "b.gguf")
    assert config.recent_models == (file_ref(tmp_path / "b.gguf"), file_ref(tmp_path / "a.gguf"))


def test_a_too_large_file_is_neither_read_nor_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    head = b"[sampling]\ntop_k = 5\n"
    path.write_bytes(head + b"#" * (MAX_CONFIG_BYTES - len(head)) + b"\n")  # one byte over
    before = path.read_bytes()
    config, warnings = load_config(path)
    assert config == AppConfig()  # top_k = 5 was not read
    assert len(warnings) == 1 and "larger than 1 MiB, too large for a settings file" in warnings[0]
    assert "leaving the file alone" in warnings[0]
    for save in (
        lambda: save_changes({"top_k": 7}, path),
        lambda: remember_model_in_file(file_ref(tmp_path / "m.gguf"), path),
    ):
        with pytest.raises(ConfigSaveError, match="larger than 1 MiB, too large for a settings file; it was left as"):
            save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no .broken, no temporary file


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    head = b"[sampling]\ntop_k = 5\n"
    path.write_bytes(head + b"#" * (MAX_CONFIG_BYTES - len(head) - 1) + b"\n")
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert load_config(path) == (replace_sampling(AppConfig(), top_k=5), [])


def test_saving_where_the_folder_is_a_file_raises_config_save_error(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("not a folder\n")
    path = tmp_path / "config" / "config.toml"
    with pytest.raises(ConfigSaveError, match=f"cannot read {path}: {tmp_path / 'config'} is a file, not a folder"):
        save_changes({"top_k": 5}, path)
    (tmp_path / "parent").write_text("not a folder\n")
    path = tmp_path / "parent" / "sub" / "config.toml"
    with pytest.raises(ConfigSaveError, match=f"cannot (read|write) {path}: {tmp_path / 'parent'} is a file"):
        remember_model_in_file(file_ref(tmp_path / "m.gguf"), path)
    assert (tmp_path / "config").read_text() == (tmp_path / "parent").read_text() == "not a folder\n"


_NO_PERMISSION_PROBE = """
import sys
from pathlib import Path
from llama_tui.engine.config import ConfigSaveError, load_config, save_changes
for path in map(Path, sys.argv[1:]):
    try:
        save_changes({"top_k": 5}, path)
        print("saved")
    except ConfigSaveError as error:
        print("ConfigSaveError:", error)
print("load:", load_config(Path(sys.argv[2]))[1])
"""


def run_without_root_powers(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python argv` where file permissions hold: as root, through capsh dropping the
    capabilities that let root ignore them."""
    command = [sys.executable, *argv]
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: file permissions cannot be enforced")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", shlex.join(command)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_saving_without_permission_raises_config_save_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # no new files in it: neither the config nor the temporary file
    unreadable = tmp_path / "config.toml"
    unreadable.write_text("[sampling]\ntop_k = 40\n")
    unreadable.chmod(0o000)
    try:
        done = run_without_root_powers("-c", _NO_PERMISSION_PROBE, str(locked / "config.toml"), str(unreadable))
    finally:
        locked.chmod(0o755)
        unreadable.chmod(0o644)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"ConfigSaveError: cannot write {locked / 'config.toml'}: Permission denied",
        f"ConfigSaveError: cannot read {unreadable}: Permission denied",
    ]
    assert "cannot read" in done.stdout.splitlines()[2]  # load_config warns, it does not raise
    assert list(locked.iterdir()) == [] and unreadable.read_text() == "[sampling]\ntop_k = 40\n"


def test_a_broken_file_is_not_replaced_when_a_model_is_merely_opened(tmp_path: Path) -> None:
    """Opening a model remembers it in the file; a file that is not valid TOML is then left
    exactly as the user wrote it (their values would be lost in the copy aside)."""
    path = tmp_path / "config.toml"
    path.write_text("temperature = 0.2\n[sampling\ntop_k = 12\n")
    with pytest.raises(ConfigSaveError, match="not valid TOML, so it was left as it is"):
        remember_model_in_file(file_ref(tmp_path / "m.gguf"), path)
    assert path.read_text() == "temperature = 0.2\n[sampling\ntop_k = 12\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_each_broken_copy_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[first\n")
    save_changes({"top_k": 5}, path)
    path.write_text("[second\n")
    save_changes({"top_k": 6}, path)
    assert (tmp_path / "config.toml.broken").read_text() == "[first\n"
    assert (tmp_path / "config.toml.broken-2").read_text() == "[second\n"
