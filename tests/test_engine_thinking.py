"""The engine's side of thinking on a real (tiny) llama.cpp model: markers from the file's
template and vocabulary, and marker tokens that reach the text."""

from __future__ import annotations

from pathlib import Path

from llama_tui.engine.events import Finished, TextDelta, ThinkingDelta, ThinkingFormat
from llama_tui.engine.model import ChatMessage, LoadedModel
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.engine.thinking import split_text
from tests.tiny_gguf import write_tiny_llama_gguf

SETTINGS = LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1)
HARMONY_TOKENS = ["<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|secret|>"]
# Enough of gpt-oss's template for its markers to be found.
HARMONY_TEMPLATE = (
    "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
    "{# the model writes <|channel|>analysis<|message|> then <|channel|>final<|message|> #}"
)


def test_markers_written_as_control_tokens_reach_the_text(tmp_path: Path) -> None:
    path = write_tiny_llama_gguf(tmp_path / "tiny-harmony.gguf", chat_template=HARMONY_TEMPLATE,
                                 control_tokens=HARMONY_TOKENS, favoured_token="<|channel|>")
    model = LoadedModel.load(path, SETTINGS)
    try:
        assert model.thinking_markers is not None and model.thinking_markers.style == "gpt-oss"
        events = list(model.chat([ChatMessage("user", "hi")], SamplingSettings(temperature=0.0, max_reply_tokens=3)))
        finished = events[-1]
        assert isinstance(finished, Finished)
        # The model writes <|channel|> every time: llama.cpp would decode it to nothing.
        assert finished.text == "<|channel|>" * 3
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == finished.text
        # Control tokens that are no part of a marker stay out of the text.
        secret = model._special_tokens(["<|secret|>"])["<|secret|>"]
        assert model._token_bytes(secret) == b""
        assert split_text(finished.text, model.thinking_markers) == ("", "<|channel|>" * 3)
    finally:
        model.close()


def test_a_model_without_thinking_has_no_markers(tiny_model: Path) -> None:
    model = LoadedModel.load(tiny_model, SETTINGS)
    try:
        assert model.thinking_markers is None
        assert model._special_tokens(["<think>", "x</s>"]) == {"</s>": 2}
    finally:
        model.close()


def test_markers_are_found_in_the_vocabulary_when_the_template_names_none(tmp_path: Path) -> None:
    path = write_tiny_llama_gguf(tmp_path / "tiny-think.gguf", chat_template="{{ messages[0]['content'] }}",
                                 control_tokens=["<think>", "</think>"], favoured_token="<think>")
    model = LoadedModel.load(path, SETTINGS)
    try:
        markers = model.thinking_markers
        assert markers is not None and (markers.open, markers.found_in) == ("<think>", "vocabulary")
        events = list(model.chat([ChatMessage("user", "hi")], SamplingSettings(temperature=0.0, max_reply_tokens=2)))
        finished = events[-1]
        # The reply is told apart: a second open marker is thinking text, and no answer came.
        assert isinstance(finished, Finished) and (finished.thinking, finished.text) == ("<think>", "")
        assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["<think>"]
        assert split_text("<think><think>", markers) == ("<think>", "")
    finally:
        model.close()


# Qwen3.5's way: the prompt opens the block, or closes an empty one when thinking is off.
OPENING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is false %}<think>\n\n</think>\n\n{% else %}<think>\n{% endif %}{% endif %}"
)


def test_a_chat_reply_says_how_it_marks_its_thinking(tmp_path: Path) -> None:
    path = write_tiny_llama_gguf(tmp_path / "tiny-opens.gguf", chat_template=OPENING_TEMPLATE,
                                 control_tokens=["<|im_start|>", "<|im_end|>", "<think>", "</think>"],
                                 favoured_token="</think>")
    model = LoadedModel.load(path, SETTINGS)
    try:
        for thinking in (True, False):
            # Before the split (LoadedModel._run): a ThinkingFormat says how, before any text.
            run = model._run(lambda t=thinking: model._fit_chat([ChatMessage("user", "hi")], SamplingSettings(
                temperature=0.0, max_reply_tokens=2), t), SamplingSettings(temperature=0.0, max_reply_tokens=2), None)
            events = list(run)
            formats = [e for e in events if isinstance(e, ThinkingFormat)]
            assert len(formats) == 1 and formats[0].markers == model.thinking_markers
            assert formats[0].opened_in_prompt is thinking
            assert events.index(formats[0]) < min(i for i, e in enumerate(events) if isinstance(e, TextDelta))
            # What chat() gives: the block the prompt opened is closed by the model's first
            # </think>, so the second is the answer; with thinking off, both are answer.
            sampling = SamplingSettings(temperature=0.0, max_reply_tokens=2)
            finished = list(model.chat([ChatMessage("user", "hi")], sampling, enable_thinking=thinking))[-1]
            assert isinstance(finished, Finished)
            assert (finished.thinking, finished.text) == (("", "</think>") if thinking else ("", "</think></think>"))
        # Raw completion has no chat template, so no format.
        events = list(model.complete("hello", SamplingSettings(temperature=0.0, max_reply_tokens=2)))
        assert not any(isinstance(e, ThinkingFormat) for e in events)
    finally:
        model.close()
