"""Real models' chat templates (llama.cpp's models/templates, from the llama-cpp-python sdist).

Every template must render a chat with a system prompt, or fall back to a built-in format;
the thinking markers found in each are checked against what the template itself writes.
The sdist is downloaded once (tests/template_corpus.py); without it these tests skip, saying
why. `python tests/template_corpus.py` prints the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from llama_tui.engine.chat_templates import BUILT_IN_TEMPLATES, fallback_template_choice, fallback_template_name
from llama_tui.engine.jinja_chat import render_chat
from llama_tui.engine.template_sandbox import TemplateSandbox
from llama_tui.engine.thinking import has_thinking_switch, starts_thinking, strip_thinking, thinking_markers
from tests.template_corpus import CHAT, CorpusUnavailable, likely_tokens, load_corpus

SYSTEM, LAST_QUESTION = CHAT[0]["content"], CHAT[-1]["content"]

# What llama-cpp-python's Jinja2ChatFormatter (and so this app before) could not render
# with a system prompt and no tools, and why.
FORMATTER_FAILED = {
    "CohereForAI-c4ai-command-r-plus-tool_use": "'NoneType' object is not iterable",  # tools=None
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": "'NoneType' object is not iterable",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": "'NoneType' object is not iterable",
    "fireworks-ai-llama-3-firefunction-v2": 'can only concatenate str (not "NoneType") to str',  # functions=None
    "google-gemma-2-2b-it": "System role not supported",
}

# Template -> (the thinking style found, whether the prompt opens the block with thinking on).
THINKING = {
    "Apertus-8B-Instruct": ("apertus", False),
    "Apriel-1.6-15b-Thinker-fixed": ("apriel", True),
    "Bielik-11B-v3.0-Instruct": ("<think>", True),
    "ByteDance-Seed-OSS": ("<seed:think>", False),
    "Cohere2MoE": ("cohere", True),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": ("cohere", False),
    "GLM-4.6": ("<think>", False),
    "GLM-4.7-Flash": ("<think>", True),
    "HuggingFaceTB-SmolLM3-3B": ("<think>", False),
    "Kimi-K2-Thinking": ("<think>", False),
    "Kimi-K3": ("kimi", True),
    "LFM2.5-8B-A1B": ("<think>", False),
    "LFM2.5-Instruct": ("<think>", False),
    "MiniMax-M2": ("<think>", True),
    "MiniMax-M3": ("<mm:think>", False),
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": ("<think>", True),
    "NVIDIA-Nemotron-Nano-v2": ("<think>", True),
    "Qwen-QwQ-32B": ("<think>", True),
    "Qwen-Qwen3-0.6B": ("<think>", False),
    "Qwen3.5-4B": ("<think>", True),
    "Reka-Edge": ("<think>", True),
    "Spark2.5": ("<think>", True),
    "StepFun3.5-Flash": ("<think>", True),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": ("<think>", True),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("<think>", True),
    "deepseek-ai-DeepSeek-V3.1": ("<think>", True),
    "deepseek-ai-DeepSeek-V3.2": ("<think>", True),
    "deepseek-ai-DeepSeek-V4-Flash-0731": ("<think>", True),
    "deepseek-ai-DeepSeek-V4": ("<think>", True),
    "google-gemma-4-31B-it-interleaved": ("gemma-4", False),
    "google-gemma-4-31B-it": ("gemma-4", False),
    "ibm-granite-granite-3.3-2B-Instruct": ("granite", False),
    "inclusionai-ling-3.0-flash": ("<think>", True),
    "llama-cpp-deepseek-r1": ("<think>", True),
    "llama-cpp-rwkv-world": ("<think>", True),
    "mistralai-Ministral-3-14B-Reasoning-2512": ("mistral", False),
    "muse-glimmer": ("muse", False),
    "openai-gpt-oss-120b": ("gpt-oss", False),
    "openbmb-MiniCPM5-1B": ("<think>", True),
    "poolside-Laguna-S-2.1": ("<think>", True),
    "poolside-Laguna-XS-2.1": ("<think>", True),
    "poolside-Laguna-XS.2": ("<think>", True),
    "unsloth-Apriel-1.5": ("<thinking>", False),
    "upstage-Solar-Open-100B": ("solar", False),
}
# Tokens the vocabulary has where the template builds its markers with str.format.
VOCABULARY = {"tencent-Hy3": {"<think:opensource>", "</think:opensource>"}}


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    try:
        return load_corpus()
    except CorpusUnavailable as error:
        pytest.skip(f"llama.cpp's template corpus is not available: {error}")


def render(name: str, source: str, messages: Sequence[Mapping[str, str]] = CHAT, *,
           add_generation_prompt: bool = True, enable_thinking: bool = True) -> str:
    bos, eos = likely_tokens(name)
    return render_chat(source, messages, bos_token=bos, eos_token=eos, add_generation_prompt=add_generation_prompt,
                       enable_thinking=enable_thinking)


def failures(corpus: dict[str, str], enable_thinking: bool) -> Iterator[str]:
    for name, source in corpus.items():
        try:
            prompt = render(name, source, enable_thinking=enable_thinking)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            yield f"{name}: {type(error).__name__}: {error}"
            continue
        if SYSTEM not in prompt or LAST_QUESTION not in prompt:
            yield f"{name}: the system prompt or the last question is missing"


def test_the_corpus_is_read_from_the_sdist(corpus: dict[str, str]) -> None:
    assert len(corpus) >= 60
    assert set(FORMATTER_FAILED) <= set(corpus)


@pytest.mark.parametrize("enable_thinking", [True, False])
def test_every_template_renders_a_chat_with_a_system_prompt(corpus: dict[str, str], enable_thinking: bool) -> None:
    assert list(failures(corpus, enable_thinking=enable_thinking)) == []


def test_what_jinja2_chat_formatter_could_not_render_now_renders(corpus: dict[str, str]) -> None:
    formatter_failed = {}
    for name, source in corpus.items():
        bos, eos = likely_tokens(name)
        try:
            Jinja2ChatFormatter(source, eos, bos)(messages=CHAT)  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - recorded and compared
            formatter_failed[name] = str(error)
    assert formatter_failed == FORMATTER_FAILED
    for name in formatter_failed:
        assert SYSTEM in render(name, corpus[name])
    # Gemma 2 has no system role: the system prompt leads the first user turn.
    gemma2 = render("google-gemma-2-2b-it", corpus["google-gemma-2-2b-it"])
    assert f"<start_of_turn>user\n{SYSTEM}\n\n{CHAT[1]['content']}<end_of_turn>" in gemma2


def test_the_sandbox_renders_every_template_as_this_process_does(corpus: dict[str, str]) -> None:
    with TemplateSandbox(time_limit=120.0) as sandbox:
        for name, source in corpus.items():
            bos, eos = likely_tokens(name)
            for thinking in (True, False):
                in_sandbox = sandbox.render(source, CHAT, bos_token=bos, eos_token=eos, cancelled=lambda: False,
                                            template_name=name, enable_thinking=thinking)
                assert in_sandbox == render(name, source, enable_thinking=thinking), name


def test_every_template_renders_or_falls_back(corpus: dict[str, str]) -> None:
    for name, source in corpus.items():
        metadata = {"tokenizer.chat_template": source, "general.architecture": "llama"}
        fallback, reason = fallback_template_choice(metadata)
        assert fallback != "transcript" and reason, name
        bos, eos = likely_tokens(name)
        try:
            render_chat(source, CHAT, bos_token=bos, eos_token=eos)
        except Exception:  # noqa: BLE001 - any failure: the engine falls back
            pass  # the engine would fall back: the fallback must work, checked below
        assert SYSTEM in render_chat(BUILT_IN_TEMPLATES[fallback], CHAT, bos_token=bos, eos_token=eos), name
    # The failed template's own turn markers pick the format.
    assert fallback_template_name({"tokenizer.chat_template": corpus["google-gemma-2-2b-it"]}) == "gemma"
    assert fallback_template_name({"tokenizer.chat_template": corpus["meta-llama-Llama-3.1-8B-Instruct"]}) == "llama-3"
    assert fallback_template_name({"tokenizer.chat_template": corpus["Qwen-Qwen3-0.6B"]}) == "chatml"
    nemo = corpus["mistralai-Mistral-Nemo-Instruct-2407"]
    assert fallback_template_name({"tokenizer.chat_template": nemo}) == "mistral"


def test_the_thinking_markers_of_each_template(corpus: dict[str, str]) -> None:
    found = {}
    for name, source in corpus.items():
        markers = thinking_markers(source, VOCABULARY.get(name, set()))
        if markers is not None and name not in VOCABULARY:
            found[name] = (markers.style, starts_thinking(render(name, source), markers))
    assert found == {name: expected for name, expected in THINKING.items() if name in corpus}
    hunyuan = thinking_markers(corpus["tencent-Hy3"], VOCABULARY["tencent-Hy3"])
    assert hunyuan is not None and hunyuan.close == "</think:opensource>" and hunyuan.found_in == "vocabulary"


def test_the_markers_found_are_the_ones_the_template_writes_around_earlier_thinking(corpus: dict[str, str]) -> None:
    """Where a template writes an earlier reply's reasoning (reasoning_content, gpt-oss's
    `thinking`, Solar's `reasoning`) into the prompt, the markers found surround it."""
    thought = "THOUGHT-PROBE"
    reply = {"role": "assistant", "content": "ANSWER-PROBE", "reasoning_content": thought, "thinking": thought,
             "reasoning": thought}
    chat = [*CHAT, reply]
    checked = 0
    for name, source in corpus.items():
        text = render(name, source, chat, add_generation_prompt=False)
        if thought not in text:
            continue
        markers = thinking_markers(source, VOCABULARY.get(name, set()))
        assert markers is not None, name
        before, after = text.split(thought, 1)
        # Apriel's open marker is written by the generation prompt only.
        assert markers.open.strip() in before or name.startswith("Apriel"), name
        assert after.startswith(markers.close) or after.lstrip().startswith(markers.close), name
        checked += 1
    assert checked >= 25


def test_the_thinking_switch_is_found_where_enable_thinking_changes_the_prompt(corpus: dict[str, str]) -> None:
    for name, source in corpus.items():
        changes = render(name, source, enable_thinking=True) != render(name, source, enable_thinking=False)
        assert has_thinking_switch(source) == changes, name
        if changes:
            markers = thinking_markers(source)
            assert not starts_thinking(render(name, source, enable_thinking=False), markers), name


def test_an_earlier_replys_thinking_stays_out_of_the_prompt_once_stripped(corpus: dict[str, str]) -> None:
    leaks, refuses = [], []
    for name, source in corpus.items():
        markers = thinking_markers(source, VOCABULARY.get(name, set()))
        if markers is None:
            continue
        prefix = markers.answer_prefixes[0] if markers.answer_prefixes else ""
        stored = f"{markers.open}\nSECRET-THOUGHT\n{markers.close}\n\n{prefix}Paris."
        with_thinking = [*CHAT[:2], {"role": "assistant", "content": stored}, CHAT[3]]
        try:
            if "SECRET-THOUGHT" in render(name, source, with_thinking):
                leaks.append(name)
        except Exception:  # noqa: BLE001 - a refusal
            refuses.append(name)  # gpt-oss refuses channel tags in content
        answer_only = [*CHAT[:2], {"role": "assistant", "content": strip_thinking(stored, markers)}, CHAT[3]]
        prompt = render(name, source, answer_only)
        assert "SECRET-THOUGHT" not in prompt and "Paris." in prompt, name
    print(f"\n{len(leaks)} templates keep an earlier reply's thinking when it is passed back in the text: {leaks}")
    print(f"{len(refuses)} refuse it: {refuses}")
    assert len(leaks) >= 20  # why the engine sends back the answer only
    assert "openai-gpt-oss-120b" in refuses
