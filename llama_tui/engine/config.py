"""The settings file: one TOML file a person can edit, and the checks every value passes.

| what                               | read by                     | written by                  |
|------------------------------------|-----------------------------|-----------------------------|
| config_dir() / config.toml         | `load_config` (tomllib)     | `save_changes`,             |
|                                    |                             | `remember_model_in_file`    |
|                                    |                             | (tomlkit)                   |

Every check, default and comment comes from the one table of settings (engine.settings).
Saving never writes the app's whole idea of the settings: it reads the file as it is on disk at
that moment and changes only what was changed in the app (`save_changes`) or the models used
(`remember_model_in_file`). So a person's comments, formatting, keys llama-tui does not know,
values it cannot use, and what another running instance saved meanwhile all survive; the write
is atomic (temporary file, then rename). Saving raises only ConfigSaveError.
Loading never raises: a missing file gives the defaults, a broken file or a bad value gives the
default for what is broken plus a warning to show. Command-line flags win over the file for
one run (`merge_cli`) and are never saved.

    last_model = "/models/x.gguf"  # top level: models used (engine.model_ref spellings)
    recent_models = ["/models/x.gguf", "server:http://host:8080/v1#qwen", ...]
    [load]                         # LoadSettings
    [load.overrides]               # GGUF metadata overrides, KEY = value
    [sampling]                     # SamplingSettings
    [chat]                         # ChatSettings
    [server]                       # ServerSettings

Files written before these sections existed keep working: a top-level `system_prompt` and a
`seed` under [load] are read where they are, and moved when changed in the app.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from llama_tui import paths
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.presets import BUILT_IN, SAMPLING_KEYS, Preset
from llama_tui.engine.settings import (
    RELOAD_FIELDS,
    SECTIONS,
    SETTINGS,
    LoadSettings,
    OverrideValue,
    Setting,
    Settings,
    parse_override,
)

__all__ = [
    "MAX_CONFIG_BYTES", "MAX_RECENT_MODELS", "RELOAD_FIELDS", "AppConfig", "ConfigSaveError", "GPU_INSTALL_HINT",
    "add_recent_model", "config_path", "format_overrides", "gpu_offload_supported", "load_config",
    "load_settings_problems", "merge_cli", "remember_model_in_file", "save_changes", "validate_field",
]

MAX_RECENT_MODELS = 10

MAX_CONFIG_BYTES = 1024 * 1024
"""Larger settings files are neither read nor written. A real one is a few KB (the template is
1.5 KB; a long system prompt adds some), while saving parses the file with tomlkit on the UI
thread, which here takes about a second per MiB of dense keys: a 100 MB file froze the app
for ~50 s. 1 MiB leaves hundreds of times the room a person needs and bounds that pause."""

GPU_INSTALL_HINT = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
)
"""How to get a GPU build of llama.cpp (CUDA; other backends take another -DGGML_... flag)."""

_LEGACY = {("", "system_prompt"): "chat", ("load", "seed"): "sampling"}
"""(table, key) where older files keep a setting that now lives in another section."""


class ConfigSaveError(Exception):
    """The settings could not be saved; the text says why, for a person. The file is unchanged."""


@dataclass(frozen=True)
class AppConfig:
    """Everything llama-tui remembers between runs."""

    settings: Settings = field(default_factory=Settings)
    last_model: ModelRef | None = None
    """The model opened last, to open again when no model is named on the command line."""
    recent_models: tuple[ModelRef, ...] = ()
    """Models opened recently, most recent first, at most MAX_RECENT_MODELS."""
    presets: dict[str, Preset] = field(default_factory=lambda: dict(BUILT_IN))
    """Named system prompts with their sampling ([presets.NAME] tables)."""
    model_presets: dict[str, str] = field(default_factory=dict)
    """The preset each model was last used with: ModelRef text -> preset name."""


def config_path() -> Path:
    """Where the settings file lives (moves with LLAMA_TUI_HOME, like every other file)."""
    return paths.config_dir() / "config.toml"


def gpu_offload_supported() -> bool:
    """Whether this build of llama.cpp can offload layers to a GPU."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


# -- checking values ------------------------------------------------------------------------


def _plain(number: float) -> str:
    """5 rather than 5.0, 4294967295 rather than 4.29497e+09."""
    return str(int(number)) if float(number).is_integer() else str(number)


def _range_message(s: Setting, empty: str = "empty") -> str:
    """"must be a whole number from 1 to 4096", with what empty means."""
    what = "a whole number" if s.kind == "int" else "a number"
    high = _plain(s.high if s.high is not None else math.inf)
    text = f"{what} from {_plain(s.low if s.low is not None else -math.inf)} to {high}{s.note}"
    return f"must be {empty} ({s.empty}) or {text}" if s.empty else f"must be {text}"


def _check_number(s: Setting, value: object) -> tuple[Any, str | None]:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (s.kind == "int" and not isinstance(value, int))
    ):
        return None, _range_message(s)
    high = s.high
    if math.isnan(value) or (s.low is not None and value < s.low) or (high is not None and value > high):
        return None, _range_message(s)
    return (int(value) if s.kind == "int" else float(value)), None


def load_settings_problems(load: LoadSettings) -> list[str]:
    """Why these load settings cannot be used: the ranges the panel and the CLI check too."""
    found = []
    for name, s in SETTINGS.items():
        if s.section == "load" and s.kind in ("int", "float"):
            value = getattr(load, name)
            if value is None and s.empty:
                continue
            _, error = _check_number(s, value)
            if error:
                found.append(f"{name} {error}")
    return found


def format_overrides(overrides: Mapping[str, OverrideValue]) -> str:
    """Overrides as the settings panel shows them: "KEY=VALUE, KEY=VALUE"."""
    def show(value: OverrideValue) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return ", ".join(f"{key}={show(value)}" for key, value in overrides.items())


def _parse_overrides(raw: str) -> dict[str, OverrideValue]:
    """"KEY=VALUE, KEY=VALUE" (values cannot contain commas) into a dict; raises ValueError."""
    parsed: dict[str, OverrideValue] = {}
    for part in raw.split(","):
        if part.strip():
            key, value = parse_override(part.strip())
            parsed[key] = value
    return parsed


def validate_field(name: str, raw: str) -> tuple[Any, str | None]:
    """Parse what a person typed for the setting `name`: (value, None), or (None, error).

    Empty means the machine's default for thread counts, and None where the setting may be
    empty ("no limit", "auto"). Raises KeyError for a name that is not a setting.
    """
    s = SETTINGS[name]
    text = raw.strip()
    if s.kind in ("int", "float"):
        if not text and s.machine_default is not None:
            return s.machine_default(), None
        if not text and s.empty:
            return None, None
        try:
            value: Any = int(text) if s.kind == "int" else float(text)
        except ValueError:
            return None, _range_message(s)
        return _check_number(s, value)
    if s.kind == "choice":
        assert s.choices is not None
        if s.empty and text in ("", s.empty):
            return None, None
        if text in s.choices():
            return text, None
        return None, f"must be {'empty (' + s.empty + ') or ' if s.empty else ''}one of: {', '.join(s.choices())}"
    if s.kind == "bool":
        if text.lower() in ("on", "yes", "true", "1"):
            return True, None
        if text.lower() in ("off", "no", "false", "0"):
            return False, None
        return None, "must be on or off"
    if s.kind == "overrides":
        try:
            return _parse_overrides(raw), None
        except ValueError as error:
            return None, str(error)
    return raw, None  # text


# -- reading --------------------------------------------------------------------------------


def _from_toml(s: Setting, value: object) -> tuple[Any, str | None]:
    """Check a value as TOML gave it; the file spells "empty" as 0 (numbers) or "" (choices)."""
    if s.kind in ("int", "float"):
        if s.empty and value == 0 and not isinstance(value, bool):
            return None, None
        value_checked, error = _check_number(s, value)
        if error and s.empty:
            error = _range_message(s, empty="0")
        return value_checked, error
    if s.kind == "bool":
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if s.kind == "overrides":
        if not isinstance(value, dict):
            return None, "must be a [load.overrides] table"
        return dict(value), None
    if not isinstance(value, str):
        return None, "must be a string"
    return validate_field(s.name, value)


def _to_toml(s: Setting, value: object) -> object:
    """The inverse of _from_toml."""
    if value is None:
        return 0 if s.kind in ("int", "float") else ""
    return value


def _show(value: object) -> str:
    """A value as the file would spell it, for warnings."""
    if value == {}:
        return "none"
    try:
        return tomlkit.item(value).as_string()
    except Exception:  # noqa: BLE001 - a value tomlkit cannot write: show Python's spelling
        return repr(value)


class _Reader:
    """Reads one parsed file, collecting a warning for everything it had to ignore."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.where = path.name
        self.data = data
        self.warnings: list[str] = []
        self._not_tables: set[str] = set()

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.where}: {text}")

    def table(self, name: str) -> dict[str, Any]:
        if not name:
            return self.data
        table = self.data.get(name, {})
        if not isinstance(table, dict):
            if name not in self._not_tables:  # said once, however often it is read
                self._not_tables.add(name)
                self.warn(f"{name} must be a [{name}] table; using the defaults for all of it")
            return {}
        return table

    def settings(self) -> Settings:
        values: dict[str, Any] = {}
        # The legacy places first, so the proper section wins when a file has both.
        for (table, key), _section in _LEGACY.items():
            if key in self.table(table):
                self.value(SETTINGS[key], self.table(table)[key], values, f"[{table}] " if table else "")
        for section in SECTIONS:
            for key, raw in self.table(section).items():
                setting = SETTINGS.get(key)
                if setting is None or setting.section != section:
                    if (section, key) not in _LEGACY:
                        self.warn(f"unknown setting [{section}] {key} (kept in the file, not used)")
                    continue
                self.value(setting, raw, values, f"[{section}] ")
        return Settings().with_values(values)

    def value(self, s: Setting, raw: object, values: dict[str, Any], where: str) -> None:
        if s.kind == "overrides" and isinstance(raw, dict):
            values[s.name] = self.overrides(raw)
            return
        value, error = _from_toml(s, raw)
        if error is not None:
            self.warn(f"{where}{s.name} = {_show(raw)} {error}; using {_show(_to_toml(s, s.default))}")
        else:
            values[s.name] = value

    def overrides(self, table: dict[str, Any]) -> dict[str, OverrideValue]:
        """The usable GGUF overrides; others are left out one by one."""
        usable: dict[str, OverrideValue] = {}
        for key, value in table.items():
            if isinstance(value, (bool, int, float, str)):
                usable[key] = value
            else:
                self.warn(f"[load.overrides] {key} = {_show(value)} must be a number, true/false "
                          "or a string; left out")
        return usable

    def presets(self) -> dict[str, Preset]:
        if "presets" not in self.data:
            return dict(BUILT_IN)
        found: dict[str, Preset] = {}
        for name, table in self.table("presets").items():
            if not isinstance(table, dict):
                self.warn(f"presets.{name} must be a table; left out")
                continue
            system = table.get("system_prompt")  # none: the settings' system prompt stays
            if system is not None and not isinstance(system, str):
                self.warn(f"[presets.{name}] system_prompt must be a string; left out")
                continue
            sampling: dict[str, Any] = {}
            for key, raw in table.items():
                if key == "system_prompt":
                    continue
                if key not in SAMPLING_KEYS:
                    self.warn(f"unknown setting [presets.{name}] {key} (a preset sets system_prompt and sampling)")
                    continue
                self.value(SETTINGS[key], raw, sampling, f"[presets.{name}] ")
            found[name] = Preset(name, system, sampling)
        return found

    def model_presets(self) -> dict[str, str]:
        table = self.table("model_presets")
        return {model: name for model, name in table.items() if isinstance(name, str)}

    def models(self) -> tuple[ModelRef | None, tuple[ModelRef, ...]]:
        last = self.model(self.data.get("last_model", ""), "last_model")
        raw = self.data.get("recent_models", [])
        if not isinstance(raw, list):
            self.warn("recent_models must be a list of models; ignored")
            raw = []
        recent: list[ModelRef] = []
        for item in raw:
            ref = self.model(item, "recent_models")
            if ref is not None and ref not in recent:
                recent.append(ref)
        return last, tuple(recent[:MAX_RECENT_MODELS])

    def model(self, raw: object, where: str) -> ModelRef | None:
        if raw == "":
            return None
        try:
            if not isinstance(raw, str):
                raise ValueError("not a string")
            return ModelRef.from_text(raw)
        except ValueError:
            self.warn(f"{where}: {_show(raw)} is not a model (a path, hf:..., server:...); left out")
            return None


_TOP_LEVEL = frozenset({"system_prompt", "last_model", "recent_models", "presets", "model_presets", *SECTIONS})


def _read_capped(path: Path) -> bytes | None:
    """The file's bytes, or None when it is larger than MAX_CONFIG_BYTES (read no further)."""
    with path.open("rb") as file:
        data = file.read(MAX_CONFIG_BYTES + 1)
    return data if len(data) <= MAX_CONFIG_BYTES else None


def _too_large(what: str) -> str:
    return f"{what} larger than {MAX_CONFIG_BYTES // 2**20} MiB, too large for a settings file"


def load_config(path: Path | None = None) -> tuple[AppConfig, list[str]]:
    """The settings in `path` (default: config_path()), and warnings about what was ignored."""
    path = path or config_path()
    try:
        raw = _read_capped(path)
        if raw is None:
            return AppConfig(), [f"{_too_large(f'{path} is')}: using the default settings and leaving the file alone"]
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return AppConfig(), []
    except (OSError, UnicodeDecodeError) as error:
        return AppConfig(), [f"cannot read {path}: {error}; using the default settings"]
    except tomllib.TOMLDecodeError as error:
        return AppConfig(), [
            f"{path} is not valid TOML ({error}); using the default settings "
            f"(saving settings keeps a copy of it as {path.name}.broken)"
        ]
    reader = _Reader(path, data)
    for key in data:
        if key not in _TOP_LEVEL:
            reader.warn(f"unknown setting {key} (kept in the file, not used)")
    settings = reader.settings()
    last_model, recent_models = reader.models()
    return AppConfig(settings, last_model, recent_models, reader.presets(), reader.model_presets()), reader.warnings


# -- writing --------------------------------------------------------------------------------

_SECTION_NOTES = {
    "load": "How llama.cpp loads a model; changing these reloads it.",
    "sampling": "How the next token is chosen; these apply to the next reply.",
    "chat": "The chat; these apply from the next message.",
    "server": "Models on an OpenAI-compatible server.",
}


def _template() -> str:
    """A new file starts from this, so the person opening it finds each setting explained
    (made from the table of settings, like everything else about them)."""
    lines = [
        "# llama-tui settings. Edit freely: your comments and any keys llama-tui does not know are",
        "# kept when the app saves here. Command-line flags override these for a single run.",
    ]
    for section in SECTIONS:
        lines += ["", f"[{section}]", f"# {_SECTION_NOTES[section]}"]
        for s in (s for s in SETTINGS.values() if s.section == section):
            if s.kind == "overrides":
                continue
            spelled = tomlkit.item(_to_toml(s, s.default)).as_string()
            comment = s.hint
            if s.kind in ("int", "float") and s.low is not None and s.high is not None:
                comment += f" ({_plain(s.low)}..{_plain(s.high)})"
            if s.empty:
                comment += f"; {spelled} = {s.empty}"
            if s.kind == "choice" and s.choices is not None:
                comment += f"; or one of: {', '.join(s.choices())}"
            line = f"{s.name} = {spelled}"
            if s.machine_default is not None:  # left out, it follows the machine the file is used on
                line = f"# {s.name} = {spelled}"
            lines.append(f"{line:<23} # {comment}")
        if section == "load":
            lines += ["", "[load.overrides]", "# GGUF metadata overrides, e.g.",
                      '# "tokenizer.ggml.add_bos_token" = false']
    lines += ["", "# Presets: a system prompt and the sampling that suits it, chosen per conversation (F8).",
              "# Change, add or delete them here; they take system_prompt (left out: yours stays) and the",
              "# sampling section's keys."]
    for preset in BUILT_IN.values():
        lines += ["", f"[presets.{tomlkit.key(preset.name).as_string()}]"]
        if preset.system_prompt is not None:  # left out: the settings' system prompt stays
            lines.append(f"system_prompt = {tomlkit.item(preset.system_prompt).as_string()}")
        lines += [f"{key} = {tomlkit.item(value).as_string()}" for key, value in preset.sampling.items()]
    return "\n".join(lines) + "\n"


def _same(item: object, value: object) -> bool:
    current = item.unwrap() if hasattr(item, "unwrap") else item
    return type(current) is type(value) and current == value


def _set(container: MutableMapping[str, Any], key: str, value: object) -> None:
    """Set `key`, leaving the item (and its spelling, e.g. 4_096) alone when unchanged."""
    if key in container and _same(container[key], value):
        return
    if isinstance(value, str) and "\n" in value:
        value = tomlkit.string(value, multiline=True)
    container[key] = value


def _table(container: MutableMapping[str, Any], key: str) -> MutableMapping[str, Any]:
    found = container.get(key)
    if isinstance(found, dict):  # a [table], an inline table or a table split across the file
        return found
    container[key] = tomlkit.table()
    return container[key]


def _reason(error: OSError, path: Path) -> str:
    """Why saving `path` failed, for a person: "Permission denied" rather than
    "[Errno 13] Permission denied: '/x/.config.toml.k3j_a.tmp'"."""
    blocker = next((parent for parent in path.parents if parent.is_file()), None)
    if blocker is not None:  # mkdir and open say "File exists" or "Not a directory" then
        return f"{blocker} is a file, not a folder"
    if not error.strerror:
        return str(error)
    # The file, its folder or the temporary file beside it need no naming: the message names the file.
    folders = (path.parent, Path(os.path.realpath(path)).parent)
    elsewhere = error.filename and Path(error.filename).parent not in folders
    return f"{error.strerror}: {error.filename}" if elsewhere else error.strerror


def _document_to_edit(path: Path, *, replace_broken: bool) -> tomlkit.TOMLDocument:
    """The file as it is on disk now, for tomlkit to edit; a new file starts from _template().

    A file load_config cannot parse is left alone unless `replace_broken` (the user saved
    settings in the app): then it is replaced by the template, but only once a copy of it is
    kept as NAME.broken (NAME.broken-2... if that exists): if that copy fails, so does the
    save. Raises ConfigSaveError.
    """
    try:
        data = _read_capped(path)
    except FileNotFoundError:
        return tomlkit.parse(_template())
    except OSError as error:
        raise ConfigSaveError(f"cannot read {path}: {_reason(error, path)}") from error
    if data is None:
        raise ConfigSaveError(f"{_too_large(f'{path} is')}; it was left as it is")
    try:
        text = data.decode("utf-8")
        tomllib.loads(text)  # what load_config rejects is broken, even if tomlkit copes
        return tomlkit.parse(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TOMLKitError):
        pass
    if not replace_broken:
        raise ConfigSaveError(f"{path} is not valid TOML, so it was left as it is")
    broken = path.with_name(path.name + ".broken")
    number = 1
    while broken.exists():  # an earlier broken copy is the user's too
        number += 1
        broken = path.with_name(f"{path.name}.broken-{number}")
    try:
        broken.write_bytes(data)  # the very bytes judged broken, not a later version
    except OSError as error:
        raise ConfigSaveError(
            f"{path} is not valid TOML and could not be copied to {broken.name} ({_reason(error, broken)}), "
            "so it was left as it is"
        ) from error
    return tomlkit.parse(_template())


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    if path.is_symlink():  # e.g. a dotfiles checkout: write through the link, keep the link
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_document(path: Path, document: tomlkit.TOMLDocument) -> None:
    text = tomlkit.dumps(document)
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:  # load_config would refuse it
        raise ConfigSaveError(f"{_too_large('the settings would be')}; {path} was left as it is")
    try:
        _write_atomically(path, text)
    except OSError as error:
        raise ConfigSaveError(f"cannot write {path}: {_reason(error, path)}") from error


def _apply(document: tomlkit.TOMLDocument, s: Setting, value: object) -> None:
    """Set one setting in the document, as the file spells it, in its own section."""
    for (old_table, key), section in _LEGACY.items():  # a setting read from its old place moves
        if key == s.name and section == s.section:
            (_table(document, old_table) if old_table else document).pop(key, None)
    table = _table(document, s.section)
    if s.kind == "overrides":
        assert isinstance(value, Mapping)
        overrides = _table(table, "overrides")
        for key in [key for key in overrides if key not in value]:
            del overrides[key]
        for key, item in value.items():
            _set(overrides, key, item)
    elif s.machine_default is not None and value == s.machine_default():
        table.pop(s.name, None)  # left out, it follows the machine the file is used on
    else:
        _set(table, s.name, _to_toml(s, value))


def save_changes(changes: Mapping[str, object], path: Path | None = None) -> None:
    """Write the settings in `changes` into `path` (default: config_path()) as it is on disk now.

    `changes` maps setting names to values; give only what was changed in the app
    (`Settings.changed`). Everything else in the file stays as it is: comments, spelling,
    unknown keys, values llama-tui cannot use, and what another running instance saved.
    Raises KeyError for a name that is not a setting, ConfigSaveError when the file cannot be
    saved.
    """
    rows = [(SETTINGS[name], value) for name, value in changes.items()]  # KeyError before any write
    path = path or config_path()
    document = _document_to_edit(path, replace_broken=True)  # the user saved in the app
    for s, value in rows:
        _apply(document, s, value)
    _write_document(path, document)


def remember_model_in_file(model: ModelRef, path: Path | None = None) -> tuple[ModelRef, ...]:
    """Make `model` the last model, first among the recent ones, in `path` as it is on disk now.

    Reading the list afresh keeps the models another running instance remembered meanwhile.
    Returns the recent models as saved. Raises ConfigSaveError.
    """
    path = path or config_path()
    document = _document_to_edit(path, replace_broken=False)  # not for remembering a model
    _, on_disk = _Reader(path, document.unwrap()).models()  # unusable entries drop out
    recent = add_recent_model(on_disk, model)
    _set(document, "last_model", recent[0].to_text())
    _set(document, "recent_models", [ref.to_text() for ref in recent])
    _write_document(path, document)
    return recent


def remember_preset_for_model(model: ModelRef, preset: str, path: Path | None = None) -> None:
    """Remember that `model` was last used with `preset` ([model_presets]). Raises ConfigSaveError."""
    path = path or config_path()
    document = _document_to_edit(path, replace_broken=False)
    _set(_table(document, "model_presets"), model.to_text(), preset)
    _write_document(path, document)


# -- changing -------------------------------------------------------------------------------


def add_recent_model(recent: Iterable[ModelRef], model: ModelRef) -> tuple[ModelRef, ...]:
    """`recent` with `model` first (once), at most MAX_RECENT_MODELS."""
    return (model, *(ref for ref in recent if ref != model))[:MAX_RECENT_MODELS]


def merge_cli(settings: Settings, explicit: Mapping[str, object]) -> Settings:
    """`settings` with the settings typed on the command line on top, for this run only.

    `explicit` maps setting names to values, only for flags the user typed. Overrides are
    merged key by key with the file's. Raises KeyError for a name that is not a setting.
    """
    values = dict(explicit)
    if "overrides" in values:
        typed = values["overrides"]
        assert isinstance(typed, Mapping)
        values["overrides"] = {**settings.load.overrides, **typed}
    return settings.with_values(values)
