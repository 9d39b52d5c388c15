"""The settings file: round trips that keep a person's edits, never raising on a bad file."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from llama_tui.engine.chat_templates import chat_format_names
from llama_tui.engine.config import (
    MAX_RECENT_MODELS,
    RELOAD_FIELDS,
    AppConfig,
    carry_changes,
    changed_fields,
    config_path,
    format_overrides,
    load_config,
    merge_cli,
    remember_model,
    save_config,
    validate_field,
)
from llama_tui.engine.settings import (
    LoadSettings,
    SamplingSettings,
    available_cores,
    default_batch_threads,
    default_threads,
)


def custom_config() -> AppConfig:
    return AppConfig(
        load=LoadSettings(n_ctx=8192, n_gpu_layers=-1, n_threads=3, seed=7, chat_format="chatml",
                          overrides={"tokenizer.ggml.add_bos_token": False, "llama.rope.scale": 1.5, "x": "y"}),
        sampling=SamplingSettings(temperature=0.2, top_p=0.5, top_k=0, min_p=0.0, repeat_penalty=1.1,
                                  max_reply_tokens=256),
        system_prompt='Be brief.\nNo "[bold]" markup, \\ backslashes or """ quotes are special.',
        last_model=Path("/models/a.gguf"),
        recent_models=(Path("/models/a.gguf"), Path("/models/b.gguf")),
    )


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    config, warnings = load_config(tmp_path / "nope.toml")
    assert config == AppConfig() and warnings == []


def test_config_path_is_in_the_config_dir() -> None:
    assert config_path().name == "config.toml"
    assert config_path().parent.name == "config"  # under LLAMA_TUI_HOME in tests


def test_round_trip_keeps_a_persons_comments_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = custom_config()
    save_config(config, path)
    assert load_config(path) == (config, [])

    # A person edits the file: a comment, a value, a key from some future version.
    text = path.read_text()
    text = text.replace("temperature = 0.2", "temperature = 0.3  # warmer for stories")
    text = text.replace("[sampling]", "# my sampling notes\n[sampling]\nmirostat = 2")
    text = "# hand-edited\n" + text + "\n[plugins]\nname = 'kept'\n"
    path.write_text(text)
    loaded, warnings = load_config(path)
    assert loaded.sampling.temperature == 0.3
    assert warnings == ["config.toml: unknown setting plugins (kept in the file, not used)",
                        "config.toml: unknown setting [sampling] mirostat (kept in the file, not used)"]

    save_config(replace_sampling(loaded, top_k=50), path)
    saved = path.read_text()
    for kept in ("# hand-edited", "temperature = 0.3  # warmer for stories", "# my sampling notes",
                 "mirostat = 2", "[plugins]", "name = 'kept'"):
        assert kept in saved
    assert "top_k = 50" in saved
    assert load_config(path)[0] == replace_sampling(loaded, top_k=50)
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed into place


def replace_sampling(config: AppConfig, **changes: object) -> AppConfig:
    return replace(config, sampling=replace(config.sampling, **changes))  # type: ignore[arg-type]


def test_unchanged_values_keep_their_spelling_and_removed_overrides_go(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[load]\nn_ctx = 8_192\n[load.overrides]\nold = 1\n")
    config, warnings = load_config(path)
    assert warnings == [] and config.load.n_ctx == 8192 and config.load.overrides == {"old": 1}
    save_config(replace(config, load=replace(config.load, overrides={"new": True})), path)
    saved = path.read_text()
    assert "n_ctx = 8_192" in saved
    assert tomllib.loads(saved)["load"]["overrides"] == {"new": True}


def test_default_threads_are_left_out_so_the_file_follows_the_machine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(AppConfig(), path)
    load = tomllib.loads(path.read_text())["load"]
    assert "n_threads" not in load and "n_threads_batch" not in load
    assert load_config(path)[0].load.n_threads == default_threads()
    assert load_config(path)[0].load.n_threads_batch == default_batch_threads()
    save_config(AppConfig(load=LoadSettings(n_threads=default_threads() + 1)), path)
    assert tomllib.loads(path.read_text())["load"]["n_threads"] == default_threads() + 1


def test_new_file_explains_itself_and_uses_file_spellings_for_none(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(AppConfig(), path)
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
    save_config(config, path)
    assert (tmp_path / "config.toml.broken").read_text() == "[load\nn_ctx = 4096\n"
    assert load_config(path) == (AppConfig(), [])


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
        'max_reply_tokens = 5000\n'  # more than the (default) context
    )
    config, warnings = load_config(path)
    defaults = AppConfig()
    assert config.load == LoadSettings(seed=12, overrides={"ok": 1})
    assert config.sampling == SamplingSettings(min_p=0.1)
    assert config.system_prompt == defaults.system_prompt
    assert config.recent_models == (Path("/m/a.gguf"), Path("/m/b.gguf"))
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
        "[sampling] max_reply_tokens = 5000 must be 0 (no limit) or a whole number from 1 to 4096",
        "recent_models: 3 is not a path",
    ):
        assert expected in text
    assert len(warnings) == 10
    assert all(w.startswith("config.toml: ") for w in warnings)


def test_a_section_that_is_not_a_table_gives_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('load = 3\n[sampling]\ntemperature = 1\n')
    config, warnings = load_config(path)
    assert config.load == LoadSettings() and config.sampling.temperature == 1.0
    assert warnings == ["config.toml: load must be a [load] table; using the defaults for all of it"]
    save_config(config, path)  # the bad value is replaced by a real table
    assert load_config(path) == (config, [])


def test_remember_model_moves_to_front_and_keeps_ten(tmp_path: Path) -> None:
    config = AppConfig()
    for index in range(12):
        config = remember_model(config, tmp_path / f"m{index}.gguf")
    assert config.last_model == tmp_path / "m11.gguf"
    assert config.recent_models == tuple(tmp_path / f"m{i}.gguf" for i in range(11, 1, -1))
    assert len(config.recent_models) == MAX_RECENT_MODELS

    again = remember_model(config, tmp_path / "m5.gguf")
    assert again.recent_models[0] == tmp_path / "m5.gguf"
    assert again.recent_models.count(tmp_path / "m5.gguf") == 1 and len(again.recent_models) == 10


def test_remember_model_stores_absolute_paths_without_resolving_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"")
    (tmp_path / "model.gguf").symlink_to(blob)
    monkeypatch.chdir(tmp_path)
    config = remember_model(AppConfig(), Path("model.gguf"))
    assert config.last_model == tmp_path / "model.gguf"


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
        ("max_reply_tokens", ["1", "4096"], ["0", "-1", "4097", "many"]),
        ("chat_format", [*chat_format_names(), "", "auto"], ["llama-2", "ChatML"]),
        ("overrides", ["", "a=1", "a=1, b.c=true, d=x,"], ["a", "=1", "a=1, b"]),
    ],
)
def test_validate_field_edges(name: str, good: list[str], bad: list[str]) -> None:
    for raw in good:
        value, error = validate_field(name, raw, n_ctx=4096)
        assert error is None, (name, raw, error)
    for raw in bad:
        value, error = validate_field(name, raw, n_ctx=4096)
        assert value is None and error, (name, raw)


def test_validate_field_values() -> None:
    assert validate_field("n_ctx", "2048") == (2048, None)
    assert validate_field("temperature", "1") == (1.0, None)
    assert isinstance(validate_field("temperature", "1")[0], float)
    assert validate_field("n_threads", "") == (default_threads(), None)
    assert validate_field("n_threads_batch", " ") == (default_batch_threads(), None)
    assert validate_field("max_reply_tokens", "") == (None, None)
    assert validate_field("max_reply_tokens", "100000") == (100000, None)  # no context given
    assert validate_field("max_reply_tokens", "513", n_ctx=512)[1] == (
        "must be empty (no limit) or a whole number from 1 to 512 (the context length)")
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
    config = custom_config()
    merged = merge_cli(config, {"n_ctx": 2048, "seed": 1, "overrides": {"x": "z", "new": 2},
                                "system_prompt": "CLI prompt", "temperature": 1.5})
    assert merged.load.n_ctx == 2048 and merged.load.seed == 1
    assert merged.load.overrides == {**config.load.overrides, "x": "z", "new": 2}
    assert merged.system_prompt == "CLI prompt" and merged.sampling.temperature == 1.5
    # What was not typed comes from the file.
    assert merged.load.n_gpu_layers == -1 and merged.load.chat_format == "chatml"
    assert merged.sampling.top_k == 0 and merged.recent_models == config.recent_models
    assert merge_cli(config, {}) == config
    with pytest.raises(KeyError):
        merge_cli(config, {"verbose": True})


def test_changed_fields_tell_whether_to_reload() -> None:
    old = custom_config()
    sampling_only = replace_sampling(replace(old, load=replace(old.load, seed=99)), temperature=1.0)
    assert changed_fields(old, sampling_only) == {"seed", "temperature"}
    assert not changed_fields(old, sampling_only) & RELOAD_FIELDS
    reload = replace(old, load=replace(old.load, n_ctx=1024), system_prompt="other")
    assert changed_fields(old, reload) == {"n_ctx", "system_prompt"}
    assert changed_fields(old, reload) & RELOAD_FIELDS == {"n_ctx"}


def test_save_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text("# mine\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    save_config(custom_config(), link)
    assert link.is_symlink()
    assert real.read_text().startswith("# mine\n")
    assert load_config(link)[0] == custom_config()


def test_threads_above_cores_are_accepted_up_to_256() -> None:
    assert validate_field("n_threads", str(available_cores() * 4)) == (available_cores() * 4, None)


def test_carry_changes_saves_panel_edits_but_not_command_line_values() -> None:
    saved = custom_config()
    shown = merge_cli(saved, {"n_ctx": 2048, "temperature": 1.5})  # this run's command line
    edited = replace_sampling(replace(shown, system_prompt="New."), top_k=7)
    to_save = carry_changes(saved, shown, edited)
    assert to_save == replace_sampling(replace(saved, system_prompt="New."), top_k=7)
    assert to_save.load.n_ctx == saved.load.n_ctx and to_save.sampling.temperature == 0.2
    # A command-line value changed in the panel is saved as changed.
    assert carry_changes(saved, shown, replace_sampling(shown, temperature=0.9)).sampling.temperature == 0.9
