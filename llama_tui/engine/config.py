"""Persistent settings: one TOML file a person can edit, and the checks every value passes.

| what                               | read by                     | written by                  |
|------------------------------------|-----------------------------|-----------------------------|
| config_dir() / config.toml         | `load_config` (tomllib)     | `save_changes`,             |
|                                    |                             | `remember_model_in_file`    |
|                                    |                             | (tomlkit)                   |

Saving never writes the app's whole idea of the settings: it reads the file as it is on disk at
that moment and changes only what was changed in the app (`save_changes`) or the models used
(`remember_model_in_file`). So a person's comments, formatting, keys llama-tui does not know,
values it cannot use, and what another running instance saved meanwhile all survive; the write
is atomic (temporary file, then rename). Saving raises only ConfigSaveError.
Loading never raises: a missing file gives the defaults, a broken file or a bad value gives the
default for what is broken plus a warning to show. Command-line flags win over the file for
one run (`merge_cli`) and are never saved.

    system_prompt = "..."          # top level: chat and model history
    last_model = "/models/x.gguf"
    recent_models = ["/models/x.gguf", ...]
    [load]                         # LoadSettings
    [load.overrides]               # GGUF metadata overrides, KEY = value
    [sampling]                     # SamplingSettings
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table

from llama_tui import paths
from llama_tui.engine.chat_templates import chat_format_names
from llama_tui.engine.drafting import SPECULATIVE_MODES
from llama_tui.engine.settings import (
    LoadSettings,
    OverrideValue,
    SamplingSettings,
    default_batch_threads,
    default_threads,
    parse_override,
)

MAX_RECENT_MODELS = 10
MAX_CONTEXT = 1_048_576
MAX_THREADS = 256

MAX_CONFIG_BYTES = 1024 * 1024
"""Larger settings files are neither read nor written. A real one is a few KB (the template is
1.5 KB; a long system prompt adds some), while saving parses the file with tomlkit on the UI
thread, which here takes about a second per MiB of dense keys: a 100 MB file froze the app
for ~50 s. 1 MiB leaves hundreds of times the room a person needs and bounds that pause."""

LOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LoadSettings))
SAMPLING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SamplingSettings))

RELOAD_FIELDS: frozenset[str] = frozenset(
    {"n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch", "chat_format", "overrides"}
)
"""Settings that only take effect after reloading the model; the rest apply to the next reply."""

THREAD_DEFAULTS: dict[str, Callable[[], int]] = {
    "n_threads": default_threads,
    "n_threads_batch": default_batch_threads,
}
"""Thread settings left out of the file (or empty in the panel) follow the machine."""

GPU_INSTALL_HINT = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
)
"""How to get a GPU build of llama.cpp (CUDA; other backends take another -DGGML_... flag)."""


class ConfigSaveError(Exception):
    """The settings could not be saved; the text says why, for a person. The file is unchanged."""


@dataclass(frozen=True)
class AppConfig:
    """Everything llama-tui remembers between runs."""

    load: LoadSettings = field(default_factory=LoadSettings)
    """How models are loaded; changing most of these reloads the model (RELOAD_FIELDS)."""
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    """How replies are sampled; changes apply to the next reply."""
    system_prompt: str = ""
    """The system prompt, used from the next message on; empty for none."""
    last_model: Path | None = None
    """The model opened last, to open again when no model is named on the command line."""
    recent_models: tuple[Path, ...] = ()
    """Models opened recently, most recent first, at most MAX_RECENT_MODELS."""


def config_path() -> Path:
    """Where the settings file lives (moves with LLAMA_TUI_HOME, like every other file)."""
    return paths.config_dir() / "config.toml"


def gpu_offload_supported() -> bool:
    """Whether this build of llama.cpp can offload layers to a GPU."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


# -- checking values ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Number:
    kind: type[int] | type[float]
    low: float
    high: float
    note: str = ""
    """Said after the range in error messages, e.g. what 0 means."""

    def message(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        return f"must be {what} from {_plain(self.low)} to {_plain(self.high)}{self.note}"


def load_settings_problems(load: LoadSettings) -> list[str]:
    """Why these load settings cannot be used: the ranges the panel and the CLI check too."""
    found = []
    for name in LOAD_FIELDS:
        spec = _NUMBERS.get(name)
        if spec is not None:
            _, error = _check_number(spec, getattr(load, name))
            if error:
                found.append(f"{name} {error}")
    return found


def _plain(number: float) -> str:
    """5 rather than 5.0, 4294967295 rather than 4.29497e+09."""
    return str(int(number)) if float(number).is_integer() else str(number)


_NUMBERS: dict[str, _Number] = {
    "n_ctx": _Number(int, 64, MAX_CONTEXT),
    "n_gpu_layers": _Number(int, -1, 999, " (-1 offloads all layers)"),
    "n_threads": _Number(int, 1, MAX_THREADS),
    "n_threads_batch": _Number(int, 1, MAX_THREADS),
    "seed": _Number(int, 0, 2**32 - 1),
    "temperature": _Number(float, 0, 5),
    "top_p": _Number(float, 0, 1),
    "top_k": _Number(int, 0, 1000, " (0 turns it off)"),
    "min_p": _Number(float, 0, 1),
    "repeat_penalty": _Number(float, 0.5, 3),
}


def _check_number(spec: _Number, value: object) -> tuple[object | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, spec.message()
    if spec.kind is int and not isinstance(value, int):
        return None, spec.message()
    if math.isnan(value) or not spec.low <= value <= spec.high:
        return None, spec.message()
    return spec.kind(value), None


def _max_reply_message(n_ctx: int | None, no_limit: str = "empty") -> str:
    limit = f"{n_ctx} (the context length)" if n_ctx else str(MAX_CONTEXT)
    return f"must be {no_limit} (no limit) or a whole number from 1 to {limit}"


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


def validate_field(name: str, raw: str, *, n_ctx: int | None = None) -> tuple[object | None, str | None]:
    """Parse what a person typed for the setting `name`: (value, None), or (None, error).

    `n_ctx` is the context length that max_reply_tokens must fit in (checked against the
    largest context when not given). Empty threads mean the machine's default, an empty
    max_reply_tokens no limit, an empty or "auto" chat_format the automatic choice.
    Raises KeyError for a name that is not a setting.
    """
    text = raw.strip()
    if name in _NUMBERS:
        spec = _NUMBERS[name]
        if not text and name in THREAD_DEFAULTS:
            return THREAD_DEFAULTS[name](), None
        try:
            value: object = int(text) if spec.kind is int else float(text)
        except ValueError:
            return None, spec.message()
        return _check_number(spec, value)
    if name == "max_reply_tokens":
        if not text:
            return None, None
        try:
            tokens = int(text)
        except ValueError:
            return None, _max_reply_message(n_ctx)
        if not 1 <= tokens <= (n_ctx or MAX_CONTEXT):
            return None, _max_reply_message(n_ctx)
        return tokens, None
    if name == "speculative":
        if text in SPECULATIVE_MODES:
            return text, None
        return None, f"must be one of: {', '.join(SPECULATIVE_MODES)}"
    if name == "chat_format":
        if text in ("", "auto"):
            return None, None
        if text in chat_format_names():
            return text, None
        return None, f"must be empty (auto) or one of: {', '.join(chat_format_names())}"
    if name == "overrides":
        try:
            return _parse_overrides(raw), None
        except ValueError as error:
            return None, str(error)
    if name == "system_prompt":
        return raw, None
    raise KeyError(name)


# -- reading --------------------------------------------------------------------------------


def _from_toml(name: str, value: object, n_ctx: int | None) -> tuple[object | None, str | None]:
    """Check a value as TOML gave it; the file's spellings of None are "" and 0."""
    if name in _NUMBERS:
        return _check_number(_NUMBERS[name], value)
    if name == "max_reply_tokens":
        if value == 0 and not isinstance(value, bool):
            return None, None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= (n_ctx or MAX_CONTEXT):
            return None, _max_reply_message(n_ctx, no_limit="0")
        return value, None
    if name == "overrides":
        if not isinstance(value, dict):
            return None, "must be a [load.overrides] table"
        return dict(value), None
    if not isinstance(value, str):
        return None, "must be a string"
    return validate_field(name, value)


def _to_toml(name: str, value: object) -> object:
    """The inverse of _from_toml."""
    if name == "chat_format":
        return value or ""
    if name == "max_reply_tokens":
        return value or 0
    return value


def _show(value: object) -> str:
    """A value as the file would spell it, for warnings."""
    if value == {}:
        return "none"
    try:
        return tomlkit.item(value).as_string()  # type: ignore[arg-type]
    except Exception:  # a value tomlkit cannot write: show Python's spelling
        return repr(value)


class _Reader:
    """Reads one parsed file, collecting a warning for everything it had to ignore."""

    def __init__(self, path: Path, data: dict[str, object]) -> None:
        self.where = path.name
        self.data = data
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.where}: {text}")

    def section(self, name: str, known: tuple[str, ...], n_ctx: int | None = None) -> dict[str, object]:
        """The valid values of [name]; bad ones are left out (their default applies)."""
        table = self.data.get(name, {})
        if not isinstance(table, dict):
            self.warn(f"{name} must be a [{name}] table; using the defaults for all of it")
            return {}
        values: dict[str, object] = {}
        for key, raw in table.items():
            if key not in known:
                self.warn(f"unknown setting [{name}] {key} (kept in the file, not used)")
                continue
            if key == "overrides" and isinstance(raw, dict):
                values[key] = self.overrides(raw)
                continue
            value, error = _from_toml(key, raw, n_ctx)
            if error is not None:
                default = _default_of(name, key)
                self.warn(f"[{name}] {key} = {_show(raw)} {error}; using {_show(_to_toml(key, default))}")
            else:
                values[key] = value
        return values

    def overrides(self, table: dict[str, object]) -> dict[str, OverrideValue]:
        """The usable GGUF overrides; others are left out one by one."""
        usable: dict[str, OverrideValue] = {}
        for key, value in table.items():
            if isinstance(value, (bool, int, float, str)):
                usable[key] = value
            else:
                self.warn(f"[load.overrides] {key} = {_show(value)} must be a number, true/false "
                          "or a string; left out")
        return usable

    def text(self, key: str) -> str:
        raw = self.data.get(key, "")
        if not isinstance(raw, str):
            self.warn(f"{key} = {_show(raw)} must be a string; ignored")
            return ""
        return raw

    def model_paths(self) -> tuple[Path | None, tuple[Path, ...]]:
        last = self.text("last_model")
        raw = self.data.get("recent_models", [])
        if not isinstance(raw, list):
            self.warn("recent_models must be a list of paths; ignored")
            raw = []
        recent: list[Path] = []
        for item in raw:
            if not isinstance(item, str) or not item:
                self.warn(f"recent_models: {_show(item)} is not a path; left out")
            elif Path(item) not in recent:
                recent.append(Path(item))
        return (Path(last) if last else None), tuple(recent[:MAX_RECENT_MODELS])


_TOP_LEVEL = frozenset({"system_prompt", "last_model", "recent_models", "load", "sampling"})


def _default_of(section: str, key: str) -> object:
    return getattr(LoadSettings() if section == "load" else SamplingSettings(), key)


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
    load = LoadSettings(**reader.section("load", LOAD_FIELDS))  # type: ignore[arg-type]
    sampling = SamplingSettings(**reader.section("sampling", SAMPLING_FIELDS, n_ctx=load.n_ctx))  # type: ignore[arg-type]
    last_model, recent_models = reader.model_paths()
    config = AppConfig(
        load=load,
        sampling=sampling,
        system_prompt=reader.text("system_prompt"),
        last_model=last_model,
        recent_models=recent_models,
    )
    return config, reader.warnings


# -- writing --------------------------------------------------------------------------------

# A new file starts from this, so the person opening it finds each setting explained.
_TEMPLATE = f'''\
# llama-tui settings. Edit freely: your comments and any keys llama-tui does not know are
# kept when the app saves here. Command-line flags override these for a single run.

system_prompt = ""

[load]
# Changing these reloads the model (except seed).
n_ctx = 4096            # context length in tokens, 64..{MAX_CONTEXT}
n_gpu_layers = 0        # layers offloaded to the GPU, -1 = all; needs a GPU build of llama.cpp
# n_threads = 4         # threads for generation; left out: this machine's cores but one
# n_threads_batch = 4   # threads for prompt evaluation; left out: this machine's cores
seed = 561371           # the same seed and prompt give the same reply
chat_format = ""        # "" = the file's own template, else picked by architecture; or one of
                        # {", ".join(chat_format_names())}

[load.overrides]
# GGUF metadata overrides, e.g.
# "tokenizer.ggml.add_bos_token" = false

[sampling]
# These apply to the next reply.
temperature = 0.8       # 0..5; 0 always picks the likeliest token
top_p = 0.95            # 0..1
top_k = 40              # 0..1000; 0 turns it off
min_p = 0.05            # 0..1
repeat_penalty = 1.0    # 0.5..3; 1 turns it off
max_reply_tokens = 0    # stop a reply after this many tokens; 0 = no limit
speculative = "auto"    # drafting from text already in the chat: "auto" (only while it pays),
                        # "on" or "off"; it never changes a reply, only its speed
'''


def _same(item: object, value: object) -> bool:
    current = item.unwrap() if hasattr(item, "unwrap") else item  # type: ignore[attr-defined]
    return type(current) is type(value) and current == value


def _set(container: Container | Table, key: str, value: object) -> None:
    """Set `key`, leaving the item (and its spelling, e.g. 4_096) alone when unchanged."""
    if key in container and _same(container[key], value):
        return
    if isinstance(value, str) and "\n" in value:
        value = tomlkit.string(value, multiline=True)
    container[key] = value


def _table(container: Container | Table, key: str) -> Table:
    found = container.get(key)
    if isinstance(found, dict):  # a [table], an inline table or a table split across the file
        return found  # type: ignore[return-value]
    container[key] = tomlkit.table()
    return container[key]  # type: ignore[return-value]


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
    """The file as it is on disk now, for tomlkit to edit; a new file starts from _TEMPLATE.

    A file load_config cannot parse is left alone unless `replace_broken` (the user saved
    settings in the app): then it is replaced by the template, but only once a copy of it is
    kept as NAME.broken (NAME.broken-2... if that exists): if that copy fails, so does the
    save. Raises ConfigSaveError.
    """
    try:
        data = _read_capped(path)
    except FileNotFoundError:
        return tomlkit.parse(_TEMPLATE)
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
    return tomlkit.parse(_TEMPLATE)


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


_SETTINGS = frozenset({*LOAD_FIELDS, *SAMPLING_FIELDS, "system_prompt"})


def _apply(document: tomlkit.TOMLDocument, name: str, value: object) -> None:
    """Set one setting in the document, as the file spells it."""
    if name == "system_prompt":
        _set(document, name, value)
    elif name in SAMPLING_FIELDS:
        _set(_table(document, "sampling"), name, _to_toml(name, value))
    elif name == "overrides":
        assert isinstance(value, Mapping)
        overrides = _table(_table(document, "load"), "overrides")
        for key in [key for key in overrides if key not in value]:
            del overrides[key]
        for key, item in value.items():
            _set(overrides, key, item)
    elif name in THREAD_DEFAULTS and value == THREAD_DEFAULTS[name]():
        _table(document, "load").pop(name, None)  # left out, it follows the machine the file is used on
    else:
        _set(_table(document, "load"), name, _to_toml(name, value))


def save_changes(changes: Mapping[str, object], path: Path | None = None) -> None:
    """Write the settings in `changes` into `path` (default: config_path()) as it is on disk now.

    `changes` maps setting names (as in validate_field) to values as AppConfig holds them; give
    only what was changed in the app (`changed_values`). Everything else in the file stays as it
    is: comments, spelling, unknown keys, values llama-tui cannot use, and what another running
    instance saved. Raises KeyError for a name that is not a setting, ConfigSaveError when the
    file cannot be saved.
    """
    for name in changes:
        if name not in _SETTINGS:
            raise KeyError(name)
    path = path or config_path()
    document = _document_to_edit(path, replace_broken=True)  # the user saved in the app
    for name, value in changes.items():
        _apply(document, name, value)
    _write_document(path, document)


def remember_model_in_file(model: Path, path: Path | None = None) -> tuple[Path, ...]:
    """Make `model` the last model, first among the recent ones, in `path` as it is on disk now.

    Reading the list afresh keeps the models another running instance remembered meanwhile.
    Returns the recent models as saved. Raises ConfigSaveError.
    """
    path = path or config_path()
    document = _document_to_edit(path, replace_broken=False)  # not for remembering a model
    _, on_disk = _Reader(path, document.unwrap()).model_paths()  # unusable entries drop out
    recent = add_recent_model(on_disk, model)
    _set(document, "last_model", str(recent[0]))
    _set(document, "recent_models", [str(p) for p in recent])
    _write_document(path, document)
    return recent


# -- changing -------------------------------------------------------------------------------


def add_recent_model(recent: Iterable[Path], model: Path) -> tuple[Path, ...]:
    """`recent` with `model` first (once), at most MAX_RECENT_MODELS."""
    # Absolute but not resolved: a Hugging Face cache path is a symlink to a blob without
    # the file's name.
    model = Path(os.path.abspath(model.expanduser()))
    return (model, *(p for p in recent if p != model))[:MAX_RECENT_MODELS]


def merge_cli(config: AppConfig, explicit: Mapping[str, object]) -> AppConfig:
    """`config` with the settings typed on the command line on top, for this run only.

    `explicit` maps setting names (as in validate_field) to values, only for flags the user
    typed. Overrides are merged key by key with the file's. Raises KeyError for a name that
    is not a setting.
    """
    load: dict[str, object] = {}
    sampling: dict[str, object] = {}
    system_prompt = config.system_prompt
    for name, value in explicit.items():
        if name == "overrides":
            load[name] = {**config.load.overrides, **value}  # type: ignore[dict-item]
        elif name in LOAD_FIELDS:
            load[name] = value
        elif name in SAMPLING_FIELDS:
            sampling[name] = value
        elif name == "system_prompt":
            system_prompt = str(value)
        else:
            raise KeyError(name)
    return replace(
        config,
        load=replace(config.load, **load),  # type: ignore[arg-type]
        sampling=replace(config.sampling, **sampling),  # type: ignore[arg-type]
        system_prompt=system_prompt,
    )


def changed_fields(old: AppConfig, new: AppConfig) -> frozenset[str]:
    """Names of the settings that differ; `changed_fields(a, b) & RELOAD_FIELDS` means reload."""
    changed = {name for name in LOAD_FIELDS if getattr(old.load, name) != getattr(new.load, name)}
    changed |= {name for name in SAMPLING_FIELDS if getattr(old.sampling, name) != getattr(new.sampling, name)}
    if old.system_prompt != new.system_prompt:
        changed.add("system_prompt")
    return frozenset(changed)


def changed_values(old: AppConfig, new: AppConfig) -> dict[str, object]:
    """The settings that differ, with their values in `new`: what save_changes takes."""
    def value(name: str) -> object:
        if name == "system_prompt":
            return new.system_prompt
        return getattr(new.load if name in LOAD_FIELDS else new.sampling, name)

    return {name: value(name) for name in sorted(changed_fields(old, new))}
