"""Choosing the chat template that turns a conversation into a prompt.

Order: the template named by --chat-format, else the GGUF file's own
`tokenizer.chat_template`, else a built-in one picked by architecture. llama-cpp-python
would silently fall back to the llama-2 format, which makes Gemma answer nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from llama_cpp.llama_chat_format import (
    CHATML_CHAT_TEMPLATE,
    LLAMA3_INSTRUCT_CHAT_TEMPLATE,
    Jinja2ChatFormatter,
)

FILE_TEMPLATE = "gguf"

# Gemma has no system role: the system prompt leads the first user turn, as in Google's
# own template.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}"
    "{% set first_user_prefix = '' %}"
    "{% set loop_messages = messages %}"
    "{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '')"
    " + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# Mistral's [INST] format, lenient about a system prompt (it joins the first user turn).
MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% set system = messages[0]['content'] + '\n\n' if messages and messages[0]['role'] == 'system' else '' %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)

# For base (pretrained, not instruction-tuned) models: they have never seen turn markers, but
# they continue a plain transcript well. The Gemma 3 270M starter model is one of these.
TRANSCRIPT_TEMPLATE = (
    "{{ bos_token }}"
    "{{ messages[0]['content'] | trim if messages and messages[0]['role'] == 'system'"
    " else 'A conversation between a curious user and a helpful, knowledgeable assistant.' }}"
    "{{ '\n\n' }}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{{ ('User: ' if message['role'] == 'user' else 'Assistant: ') + message['content'] | trim + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

BUILT_IN_TEMPLATES: dict[str, str] = {
    "transcript": TRANSCRIPT_TEMPLATE,
    "gemma": GEMMA_TEMPLATE,
    "chatml": CHATML_CHAT_TEMPLATE,
    "llama-3": LLAMA3_INSTRUCT_CHAT_TEMPLATE,
    "mistral": MISTRAL_TEMPLATE,
}

# Stop strings besides the end-of-generation tokens llama.cpp already knows.
_EXTRA_STOPS: dict[str, list[str]] = {
    "transcript": ["\nUser:"],
    "gemma": ["<end_of_turn>"],
    "chatml": ["<|im_end|>"],
    "llama-3": ["<|eot_id|>"],
}


@functools.lru_cache(maxsize=8)
def _formatter(source: str, eos_token: str, bos_token: str) -> Jinja2ChatFormatter:
    """A template compiled once (rendering is stateless): compiling it took a few ms before
    every prompt, and more when old turns had to be dropped to fit the context."""
    return Jinja2ChatFormatter(source, eos_token, bos_token)


def chat_format_names() -> list[str]:
    return [FILE_TEMPLATE, *BUILT_IN_TEMPLATES]


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    """"gguf" for the file's own template, else a built-in name."""
    reason: str
    """Why this template was chosen, shown to the user."""
    source: str
    bos_token: str
    eos_token: str

    def render(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        """The prompt text for these messages, and the stop strings to use."""
        response = _formatter(self.source, self.eos_token, self.bos_token)(messages=messages)
        stops = [self.eos_token, *_EXTRA_STOPS.get(self.name, [])]
        return response.prompt, [stop for stop in stops if stop]


_INSTRUCT_WORDS = re.compile(r"\b(it|instruct|chat|sft|dpo|rlhf)\b", re.IGNORECASE)


def looks_instruction_tuned(metadata: dict[str, str]) -> bool:
    """Whether the file says it was fine-tuned to follow turns (e.g. "gemma-3-270m-it")."""
    described = " ".join(metadata.get(key, "") for key in ("general.finetune", "general.name", "general.basename"))
    return bool(_INSTRUCT_WORDS.search(described.replace("-", " ").replace("_", " ")))


def template_for_architecture(metadata: dict[str, str]) -> tuple[str, str]:
    """A built-in template name for a model whose file has none, and why it was picked."""
    architecture = metadata.get("general.architecture", "")
    if not looks_instruction_tuned(metadata):
        return "transcript", (
            "the file has no template and its metadata names no instruct or chat fine-tune, "
            "so it is treated as a base model and given a plain User/Assistant transcript"
        )
    if architecture.startswith("gemma"):
        return "gemma", f"the file has no template; {architecture} models use Gemma turns"
    if architecture == "llama" and metadata.get("tokenizer.ggml.pre") == "llama-bpe":
        return "llama-3", "the file has no template; a llama-bpe vocabulary means Llama 3"
    if architecture in ("mistral", "mistral3"):
        return "mistral", f"the file has no template; {architecture} uses [INST] turns"
    return "chatml", f"the file has no template; ChatML is the common default for {architecture or 'unknown models'}"


def choose_chat_template(
    metadata: dict[str, str], bos_token: str, eos_token: str, requested: str | None = None
) -> ChatTemplate:
    """Pick the template by request, by the file's own, then by architecture."""
    file_template = metadata.get("tokenizer.chat_template")
    if requested and requested not in chat_format_names():
        raise ValueError(
            f"unknown chat format {requested!r}; choose one of: {', '.join(chat_format_names())}"
        )
    if requested == FILE_TEMPLATE and not file_template:
        raise ValueError("the model file has no chat template; choose a built-in chat format")
    if requested and requested != FILE_TEMPLATE:
        name, reason = requested, "chosen in the settings"
    elif file_template:
        return ChatTemplate(FILE_TEMPLATE, "the model file's own template", file_template, bos_token, eos_token)
    else:
        name, reason = template_for_architecture(metadata)
    return ChatTemplate(name, reason, BUILT_IN_TEMPLATES[name], bos_token, eos_token)
