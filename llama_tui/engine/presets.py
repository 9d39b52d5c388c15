"""Presets: a named system prompt with the sampling settings that suit it.

A conversation uses one (chosen from the chat screen, F8), and the app remembers which one
each model was last used with. They live in the settings file, one table each:

    [presets.Concise]
    system_prompt = "Answer in as few words as the question allows."
    temperature = 0.3

A file without a [presets] table gets BUILT_IN; a file with one has exactly the presets it
lists, so a person can change or delete any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import SamplingSettings, Settings

SAMPLING_KEYS = frozenset(f.name for f in fields(SamplingSettings))

NO_PRESET = ""
"""A conversation without a preset uses the settings (F6) as they are."""
STARTER_PRESET = "Starter"


@dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str | None
    """None: the conversation's or the settings' system prompt, as without a preset (a preset
    without system_prompt in the settings file)."""
    sampling: Mapping[str, Any] = field(default_factory=dict)
    """SamplingSettings values that differ from the settings in effect."""


BUILT_IN: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("Concise", "Answer in as few words as the question allows. No preamble, no summary.",
           {"temperature": 0.3}),
    Preset("Explain", "Explain clearly and step by step, with a short example where it helps. "
                      "Say when you are unsure.", {"temperature": 0.5}),
    Preset("Code", "You are a careful programmer. Answer with working code in fenced blocks and a "
                   "short explanation; keep the user's style and names.", {"temperature": 0.2, "top_p": 0.9}),
    Preset("Write", "Help the user write: keep their voice, fix grammar and flow, and say what you "
                    "changed.", {"temperature": 0.7}),
    Preset("Creative", "Be imaginative and vivid; surprise the reader.", {"temperature": 1.0, "top_p": 0.98}),
    # The system prompt stays yours (none by default, so a base model's transcript keeps its
    # own header); a low temperature keeps a small model on the question (bench/first_answers.py).
    Preset(STARTER_PRESET, None, {"temperature": 0.3}),
)}


def default_preset(ref: ModelRef) -> str:
    """The preset a model gets before one was chosen for it: the starter's own for the
    starter model (a newcomer's first answers), none for any other."""
    return STARTER_PRESET if ref.kind == "starter" else NO_PRESET


def effective(
    presets: Mapping[str, Preset], name: str, settings: Settings, own_prompt: str = ""
) -> tuple[str, SamplingSettings]:
    """(system prompt, sampling) for a reply in a conversation with preset `name` that was
    held so far with the system prompt `own_prompt` (Conversation.system_prompt).

    A known preset gives both. Without one (none chosen, or no longer in the settings file)
    the sampling is the settings', and the system prompt the conversation's own if it has
    one (an imported or reopened conversation goes on as it was held), else the settings'."""
    preset = presets.get(name) if name else None
    if preset is None:
        return own_prompt or settings.chat.system_prompt, settings.sampling
    sampling = settings.with_values(dict(preset.sampling)).sampling
    if preset.system_prompt is None:
        return own_prompt or settings.chat.system_prompt, sampling
    return preset.system_prompt, sampling
