"""Every setting, described once.

Each setting is one field of a section dataclass below, and the `setting(...)` call that makes
the field describes it: its default, range, label, hint, command-line flag, whether changing it
reloads the model, and which kinds of model use it. The command line (cli.py), the settings
panel (ui/settings_screen.py), the checks (engine/config.validate_field) and the commented
settings file (engine/config.py) are all made from `SETTINGS`. Adding a setting is adding a field.

    [load]      LoadSettings      how llama.cpp loads a model (changes reload it)
    [sampling]  SamplingSettings  how the next token is chosen (the next reply)
    [chat]      ChatSettings      the chat itself (the next message)
    [server]    ServerSettings    models on an OpenAI-compatible server
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, Literal

from llama_tui.engine.drafting import SPECULATIVE_MODES, SpeculativeMode

# The seed the original Rust CLI used; kept so runs stay reproducible across the two.
DEFAULT_SEED = 561371
# The Rust CLI had no context option and used the model's default; 4096 fits chat on
# small machines while leaving room for a long conversation.
DEFAULT_CONTEXT = 4096
MAX_CONTEXT = 1_048_576
MAX_THREADS = 256

OverrideValue = bool | int | float | str
Kind = Literal["int", "float", "bool", "text", "choice", "overrides"]
Backend = Literal["local", "server"]
BOTH: frozenset[Backend] = frozenset({"local", "server"})
LOCAL: frozenset[Backend] = frozenset({"local"})
SERVER: frozenset[Backend] = frozenset({"server"})


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for generating tokens: all cores but one, which is left for the UI.

    llama.cpp's threads meet at a barrier after every step, so one thread losing its core
    (to the UI rendering the reply, or another program) stalls all of them: on a busy 2-core
    machine 2 threads decoded at 12-60 tok/s where 1 thread held 60.
    """
    return max(1, available_cores() - 1)


def default_batch_threads() -> int:
    # Prompt evaluation runs while the UI is idle, so it may use every core (never more).
    return available_cores()


def chat_format_names() -> list[str]:
    from llama_tui.engine.chat_templates import chat_format_names as names  # llama_cpp: load it late

    return names()


@dataclass(frozen=True)
class Describe:
    """What `setting(...)` knows about one setting (kept in the field's metadata)."""

    label: str
    """What the settings panel calls it."""
    hint: str
    """One line on what it does: next to the field, in --help, as the comment in the file."""
    kind: Kind
    low: float | None = None
    high: float | None = None
    note: str = ""
    """Said after the range, e.g. what 0 means: "(0 turns it off)"."""
    empty: str = ""
    """What leaving it empty means, when it may be empty ("no limit", "auto"); the value is None."""
    flags: tuple[str, ...] = ()
    """Command-line flags; none: set in the panel or the file only."""
    metavar: str | None = None
    reload: bool = False
    """Changing it reloads the model."""
    backends: frozenset[Backend] = BOTH
    choices: Callable[[], Sequence[str]] | None = None
    machine_default: Callable[[], int] | None = None
    """For thread counts: left out of the file (or empty), it follows the machine it runs on."""
    multiline: bool = False
    """Text of several lines (a system prompt)."""


_DESCRIBE = "llama_tui.setting"


def setting(default: Any, **describe: Any) -> Any:
    """A dataclass field with its description; `default` may be a zero-argument callable
    (machine_default) for values that depend on the machine."""
    info = Describe(**describe)
    if info.machine_default is not None:
        return field(default_factory=info.machine_default, metadata={_DESCRIBE: info})
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={_DESCRIBE: info})
    return field(default=default, metadata={_DESCRIBE: info})


@dataclass(frozen=True)
class LoadSettings:
    """What llama.cpp needs to load a model; changing any of these reloads it."""

    n_ctx: int = setting(
        DEFAULT_CONTEXT, label="Context length", kind="int", low=64, high=MAX_CONTEXT, reload=True,
        hint="context length in tokens; llama.cpp rounds it up to a multiple of 256",
        flags=("--max-token",), metavar="N", backends=LOCAL,
    )
    n_gpu_layers: int = setting(
        0, label="GPU layers", kind="int", low=-1, high=999, note=" (-1 offloads all layers)", reload=True,
        hint="layers offloaded to a GPU, -1 for all; needs a GPU build of llama.cpp",
        flags=("-g", "--n-gpu-layers"), metavar="N", backends=LOCAL,
    )
    n_threads: int = setting(
        None, label="Threads", kind="int", low=1, high=MAX_THREADS, reload=True, machine_default=default_threads,
        hint="threads for generating (default: the cores but one, kept for the UI)",
        flags=("--threads",), metavar="N", backends=LOCAL,
    )
    n_threads_batch: int = setting(
        None, label="Prompt threads", kind="int", low=1, high=MAX_THREADS, reload=True,
        machine_default=default_batch_threads,
        hint="threads for reading the prompt (default: all cores)",
        flags=("--threads-batch",), metavar="N", backends=LOCAL,
    )
    chat_format: str | None = setting(
        None, label="Chat format", kind="choice", choices=chat_format_names, empty="auto", reload=True,
        hint="chat template: the file's own, else picked by architecture (base models: transcript)",
        flags=("--chat-format",), backends=LOCAL,
    )
    overrides: dict[str, OverrideValue] = setting(
        {}, label="Metadata overrides", kind="overrides", reload=True,
        hint="GGUF metadata, KEY=VALUE: read as int, float, bool, else string",
        flags=("-o", "--override"), metavar="KEY=VALUE", backends=LOCAL,
    )


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is chosen; these apply to the next reply without a reload."""

    seed: int = setting(
        DEFAULT_SEED, label="Seed", kind="int", low=0, high=2**32 - 1,
        hint="the same seed and prompt give the same reply", flags=("-s", "--seed"),
    )
    temperature: float = setting(
        0.8, label="Temperature", kind="float", low=0, high=5, hint="0 always picks the likeliest token",
        flags=("--temperature",), metavar="T",
    )
    top_p: float = setting(
        0.95, label="Top p", kind="float", low=0, high=1,
        hint="keep the likeliest tokens up to this probability; 1 turns it off", flags=("--top-p",), metavar="P",
    )
    top_k: int = setting(
        40, label="Top k", kind="int", low=0, high=1000, note=" (0 turns it off)",
        hint="keep this many likeliest tokens; 0 turns it off", flags=("--top-k",), metavar="K",
    )
    min_p: float = setting(
        0.05, label="Min p", kind="float", low=0, high=1,
        hint="drop tokens less likely than this share of the likeliest; 0 turns it off",
        flags=("--min-p",), metavar="P",
    )
    repeat_penalty: float = setting(
        1.0, label="Repeat penalty", kind="float", low=0.5, high=3,
        hint="above 1 discourages repeating; 1 turns it off", flags=("--repeat-penalty",), metavar="X",
    )
    max_reply_tokens: int | None = setting(
        None, label="Max reply tokens", kind="int", low=1, high=MAX_CONTEXT, empty="no limit",
        hint="stop a reply after this many tokens (it also stops when the context is full)",
        flags=("--max-reply-tokens",), metavar="N",
    )
    speculative: SpeculativeMode = setting(
        "auto", label="Speculative", kind="choice", choices=lambda: SPECULATIVE_MODES, backends=LOCAL,
        hint="guess the next tokens from text already in the chat and check them in one batch (faster when a "
        "reply repeats text); auto: only while the guesses are right",
        flags=("--speculative",),
    )


@dataclass(frozen=True)
class ChatSettings:
    """The chat itself; these apply from the next message."""

    system_prompt: str = setting(
        "", label="System prompt", kind="text", multiline=True, hint="what the model is told before the chat",
        flags=("--system-prompt",), metavar="TEXT",
    )
    thinking: bool = setting(
        True, label="Thinking", kind="bool",
        hint="let a reasoning model think before it answers, where its template can switch that (ctrl+t)",
        flags=("--thinking",),
    )
    thinking_budget: int | None = setting(
        None, label="Thinking budget", kind="int", low=1, high=MAX_CONTEXT, empty="no limit",
        hint="the most tokens a reasoning model may think; then it is made to answer",
        flags=("--thinking-budget",), metavar="N",
        backends=LOCAL,  # the engine ends the thinking itself; the chat API has no such field
    )
    saved_contexts_mib: int = setting(
        1024, label="Saved contexts (MiB)", kind="int", low=0, high=1_000_000, note=" (0 turns it off)",
        hint="disk kept for the model's memory of recent chats, so resuming one does not read it all again",
        backends=LOCAL,
    )
    resume_last: bool = setting(
        False, label="Resume last chat", kind="bool",
        hint="on: start where the last conversation left off; off: start a new chat",
        flags=("--resume-last",),
    )


@dataclass(frozen=True)
class ServerSettings:
    """Models on an OpenAI-compatible server (llama-server, vLLM, Ollama...)."""

    api_key_env: str = setting(
        "LLAMA_TUI_API_KEY", label="API key variable", kind="text", backends=SERVER,
        hint="the environment variable that holds the server's API key (never written to this file)",
        flags=("--api-key-env",), metavar="VAR",
    )
    context_size: int | None = setting(
        None, label="Server context", kind="int", low=64, high=MAX_CONTEXT, empty="ask the server",
        backends=SERVER, hint="the server model's context length, when the server does not say",
        flags=("--server-context",), metavar="N",
    )


SECTIONS: dict[str, type] = {
    "load": LoadSettings,
    "sampling": SamplingSettings,
    "chat": ChatSettings,
    "server": ServerSettings,
}


@dataclass(frozen=True, kw_only=True)
class Setting(Describe):
    """One row of the table: a field of a section, with its description."""

    name: str
    section: str
    make_default: Callable[[], Any]

    @property
    def default(self) -> Any:
        return self.make_default()


def _default_maker(f: Field[Any]) -> Callable[[], Any]:
    if f.default is not MISSING:
        default = f.default
        return lambda: default
    assert f.default_factory is not MISSING, f"{f.name}: every setting has a default or a default_factory"
    return f.default_factory


def _row(section: str, f: Field[Any]) -> Setting:
    return Setting(**vars(f.metadata[_DESCRIBE]), name=f.name, section=section, make_default=_default_maker(f))


SETTINGS: dict[str, Setting] = {f.name: _row(section, f) for section, cls in SECTIONS.items() for f in fields(cls)}
"""Every setting by name, in the order the panel and the file show them."""

RELOAD_FIELDS: frozenset[str] = frozenset(name for name, s in SETTINGS.items() if s.reload)


@dataclass(frozen=True)
class Settings:
    """All the settings in effect: the settings file's, with the command line's on top."""

    load: LoadSettings = field(default_factory=LoadSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    def get(self, name: str) -> Any:
        return getattr(getattr(self, SETTINGS[name].section), name)

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """These settings with `values` (by setting name) in place. Raises KeyError."""
        by_section: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            by_section.setdefault(SETTINGS[name].section, {})[name] = value
        return replace(self, **{
            section: replace(getattr(self, section), **changes) for section, changes in by_section.items()
        })

    def changed(self, other: Settings) -> dict[str, Any]:
        """The settings whose value in `other` differs from this one's, with `other`'s value."""
        return {name: other.get(name) for name in SETTINGS if self.get(name) != other.get(name)}


def parse_override(text: str) -> tuple[str, OverrideValue]:
    """Parse KEY=VALUE as the Rust CLI did: int, then float, then bool, else string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    for convert in (int, float):
        try:
            return key, convert(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return key, raw.lower() == "true"
    return key, raw
