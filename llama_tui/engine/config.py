"""Persistent settings: one TOML file a person can edit, and the checks every value passes.

| what                               | read by                     | written by                  |
|------------------------------------|-----------------------------|-----------------------------|
| config_dir() / config.toml         | `load_config` (tomllib)     | `save_config` (tomlkit)     |

Saving edits the existing file in place with tomlkit, so a person's comments, formatting and
keys llama-tui does not know survive; the write is atomic (temporary file, then rename).
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table

from llama_tui import paths
from llama_tui.engine.chat_templates import chat_format_names
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


def load_config(path: Path | None = None) -> tuple[AppConfig, list[str]]:
    """The settings in `path` (default: config_path()), and warnings about what was ignored."""
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
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


def _update(document: tomlkit.TOMLDocument, config: AppConfig) -> None:
    _set(document, "system_prompt", config.system_prompt)
    if config.last_model is None:
        document.pop("last_model", None)
    else:
        _set(document, "last_model", str(config.last_model))
    _set(document, "recent_models", [str(p) for p in config.recent_models])

    load = _table(document, "load")
    for name in LOAD_FIELDS:
        value = getattr(config.load, name)
        if name == "overrides":
            continue
        if name in THREAD_DEFAULTS and value == THREAD_DEFAULTS[name]():
            load.pop(name, None)  # left out, it follows the machine the file is used on
        else:
            _set(load, name, _to_toml(name, value))
    overrides = _table(load, "overrides")
    for key in [key for key in overrides if key not in config.load.overrides]:
        del overrides[key]
    for key, value in config.load.overrides.items():
        _set(overrides, key, value)

    sampling = _table(document, "sampling")
    for name in SAMPLING_FIELDS:
        _set(sampling, name, _to_toml(name, getattr(config.sampling, name)))


def _existing_document(path: Path) -> tomlkit.TOMLDocument | None:
    """The file as tomlkit reads it; a file it cannot read is copied aside, not lost."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        text = data.decode("utf-8")
        tomllib.loads(text)  # what load_config rejects is broken, even if tomlkit copes
        return tomlkit.parse(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, TOMLKitError):
        shutil.copy2(path, path.with_name(path.name + ".broken"))
        return None


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


def save_config(config: AppConfig, path: Path | None = None) -> None:
    """Write `config` to `path` (default: config_path()), keeping what a person wrote there."""
    path = path or config_path()
    document = _existing_document(path)
    if document is None:  # not `or`: a file holding only comments is an empty, falsy document
        document = tomlkit.parse(_TEMPLATE)
    _update(document, config)
    _write_atomically(path, tomlkit.dumps(document))


# -- changing -------------------------------------------------------------------------------


def remember_model(config: AppConfig, path: Path) -> AppConfig:
    """`config` with `path` as the last model, first among the recent ones."""
    # Absolute but not resolved: a Hugging Face cache path is a symlink to a blob without
    # the file's name.
    path = Path(os.path.abspath(path.expanduser()))
    recent = (path, *(p for p in config.recent_models if p != path))
    return replace(config, last_model=path, recent_models=recent[:MAX_RECENT_MODELS])


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


def carry_changes(base: AppConfig, before: AppConfig, after: AppConfig) -> AppConfig:
    """`base` with the settings that differ between `before` and `after` taken from `after`.

    For saving what the settings panel returned: `before` is what it showed (the file with
    the command line on top), `base` the file's own settings, so a value typed on the command
    line is saved only when it was changed in the panel.
    """
    changed = changed_fields(before, after)
    load = {name: getattr(after.load, name) for name in changed if name in LOAD_FIELDS}
    sampling = {name: getattr(after.sampling, name) for name in changed if name in SAMPLING_FIELDS}
    return replace(
        base,
        load=replace(base.load, **load),
        sampling=replace(base.sampling, **sampling),
        system_prompt=after.system_prompt if "system_prompt" in changed else base.system_prompt,
    )
