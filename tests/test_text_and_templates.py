"""Pure pieces: control-character neutralising, stop strings, UTF-8 across tokens, template choice."""

from __future__ import annotations

import pytest

from llama_tui.engine.chat_templates import choose_chat_template, looks_instruction_tuned
from llama_tui.engine.jinja_chat import render_chat
from llama_tui.engine.settings import parse_override
from llama_tui.engine.text_stream import StopScanner, TokenTextDecoder
from llama_tui.text import neutralise_controls


@pytest.mark.parametrize("raw, shown", [
    ("plain [bold]text[/]", "plain [bold]text[/]"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("title\x1b]0;pwned\x07 after", "title after"),
    ("bell\x07 null\x00", "bell\u2407 null\u2400"),
    ("line\r\nnext\rover", "line\nnextover"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("c1\x9bcontrol", "c1\ufffdcontrol"),
])
def test_neutralise_controls(raw: str, shown: str) -> None:
    assert neutralise_controls(raw) == shown


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_a_real_one() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.feed("Paris is") == "Paris is"
    assert scanner.feed(" nice.\nUs") == " nice."  # "\nUs" might start a stop string
    assert scanner.feed("e") == ""  # "\nUse" still might
    assert scanner.feed("d") == "\nUsed"  # it was not one
    assert scanner.feed(" well\nUser: hi") == " well"
    assert scanner.stopped


def test_stop_scanner_flushes_what_it_held_when_the_stream_ends() -> None:
    scanner = StopScanner(["<end>"])
    assert scanner.feed("text <en") == "text "
    assert scanner.flush() == "<en"
    assert not scanner.stopped


def test_decoder_joins_a_character_split_across_tokens() -> None:
    pieces = {1: "é".encode()[:1], 2: "é".encode()[1:] + b"!", 3: b"\xff", 4: "→".encode()[:2]}
    decoder = TokenTextDecoder(pieces.__getitem__)
    assert decoder.feed(1) == ""
    assert decoder.feed(2) == "é!"
    # Invalid bytes, or a character cut off by the end of the reply, show as a replacement.
    assert decoder.feed(3) == "\ufffd"
    assert decoder.feed(4) == ""
    assert decoder.flush() == "\ufffd"


@pytest.mark.parametrize("metadata, expected", [
    ({"general.architecture": "gemma3", "general.name": "Gemma 3 270m"}, "transcript"),
    ({"general.architecture": "gemma3", "general.name": "gemma-3-270m-it"}, "gemma"),
    ({"general.architecture": "llama", "general.finetune": "Instruct", "tokenizer.ggml.pre": "llama-bpe"}, "llama-3"),
    ({"general.architecture": "qwen2", "general.name": "Qwen2.5 0.5B Instruct"}, "chatml"),
    ({"general.architecture": "llama", "general.finetune": "chat", "tokenizer.chat_template": "{{ x }}"}, "gguf"),
    # README: "Instruction-tuned models (an it/instruct/chat fine-tune in the name) get their
    # architecture's turn format (Gemma, Llama 3, Mistral, else ChatML)"; base models a transcript.
    ({"general.architecture": "mistral3", "general.name": "Mistral Small 3.1 24B Instruct"}, "mistral"),
    ({"general.architecture": "mistral", "general.finetune": "Instruct"}, "mistral"),
    ({"general.architecture": "phi3", "general.name": "Some Model Chat"}, "chatml"),
    ({"general.architecture": "llama", "general.name": "Llama 3.2 1B", "tokenizer.ggml.pre": "llama-bpe"},
     "transcript"),
])
def test_template_choice(metadata: dict[str, str], expected: str) -> None:
    assert choose_chat_template(metadata, "<s>", "</s>").name == expected


def test_requested_template_wins_and_unknown_ones_are_refused() -> None:
    metadata = {"general.architecture": "gemma3", "tokenizer.chat_template": "{{ x }}"}
    assert choose_chat_template(metadata, "<bos>", "<eos>", "chatml").name == "chatml"
    with pytest.raises(ValueError, match="unknown chat format 'nope'"):
        choose_chat_template(metadata, "<bos>", "<eos>", "nope")
    with pytest.raises(ValueError, match="no chat template"):
        choose_chat_template({"general.architecture": "gemma3"}, "<bos>", "<eos>", "gguf")


def test_templates_keep_the_system_prompt_and_end_with_the_reply_cue() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    for name in ("transcript", "gemma", "chatml", "llama-3", "mistral"):
        template = choose_chat_template({"general.architecture": "x"}, "<s>", "</s>", name)
        prompt = render_chat(template.source, messages, bos_token="<s>", eos_token="</s>")
        assert "Be brief." in prompt and "Hi" in prompt, name
        assert "</s>" in template.stops
    gemma = render_chat(choose_chat_template({}, "<bos>", "<eos>", "gemma").source, messages,
                        bos_token="<bos>", eos_token="<eos>")
    assert gemma.endswith("<start_of_turn>model\n") and "Be brief.\n\nHi" in gemma


def test_a_built_in_template_is_compiled_once_not_for_every_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_tui.engine import jinja_chat

    compiled: list[str] = []
    original = jinja_chat.compile_template

    def counting(source: str) -> object:
        compiled.append(source)
        return original(source)

    monkeypatch.setattr(jinja_chat, "compile_template", counting)
    jinja_chat._compiled.cache_clear()
    template = choose_chat_template({"general.architecture": "x"}, "<s>", "</s>", "chatml")
    prompts = [render_chat(template.source, [{"role": "user", "content": f"message {n}"}], bos_token="<s>",
                           eos_token="</s>") for n in range(5)]
    assert len(compiled) == 1
    assert all(f"message {n}" in prompt for n, prompt in enumerate(prompts))
    jinja_chat._compiled.cache_clear()  # nothing compiled by the stand-in stays cached


def test_instruction_tuned_detection_reads_whole_words() -> None:
    assert looks_instruction_tuned({"general.name": "Mistral-7B-Instruct-v0.3"})
    assert not looks_instruction_tuned({"general.name": "Titan Kit"})  # "it" inside words does not count


@pytest.mark.parametrize("text, expected", [
    ("k=1", ("k", 1)), ("k=-2", ("k", -2)), ("k=0.5", ("k", 0.5)), ("k=1e3", ("k", 1000.0)),
    ("k=true", ("k", True)), ("k=False", ("k", False)), ("k=hello", ("k", "hello")), ("k=", ("k", "")),
    ("k=a=b", ("k", "a=b")),
])
def test_override_values_are_typed_like_the_rust_cli(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected
