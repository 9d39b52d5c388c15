"""Presets (engine.presets): what a reply gets with one, and how the settings file spells them."""

from __future__ import annotations

from pathlib import Path

from llama_tui.engine.config import load_config
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.presets import BUILT_IN, NO_PRESET, default_preset, effective
from llama_tui.engine.settings import Settings

YOURS = Settings().with_values({"system_prompt": "Answer like a pirate.", "temperature": 0.9})


def test_a_preset_gives_its_prompt_and_sampling_and_one_without_a_prompt_keeps_yours() -> None:
    prompt, sampling = effective(BUILT_IN, "Concise", YOURS)
    assert prompt == BUILT_IN["Concise"].system_prompt and sampling.temperature == 0.3
    prompt, sampling = effective(BUILT_IN, "Starter", YOURS)
    assert prompt == "Answer like a pirate." and sampling.temperature == 0.3
    assert effective(BUILT_IN, "Starter", YOURS, own_prompt="Be brief.")[0] == "Be brief."  # the conversation's own
    assert effective(BUILT_IN, NO_PRESET, YOURS) == ("Answer like a pirate.", YOURS.sampling)


def test_the_starter_model_starts_with_the_starter_preset_and_other_models_with_none() -> None:
    assert default_preset(ModelRef.starter()) == "Starter" and "Starter" in BUILT_IN
    assert default_preset(ModelRef.file("/m/a.gguf")) == NO_PRESET


def test_a_preset_without_a_system_prompt_in_the_file_keeps_yours(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[presets.Calm]\ntemperature = 0.2\n[presets.Quiet]\nsystem_prompt = ""\n')
    config, warnings = load_config(path)
    assert warnings == []
    assert config.presets["Calm"].system_prompt is None and config.presets["Quiet"].system_prompt == ""
