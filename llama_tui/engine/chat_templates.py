"""Choosing the chat template that turns a conversation into a prompt.

Order: the template named by --chat-format, else the GGUF file's own
`tokenizer.chat_template`, else a built-in one picked by architecture. llama-cpp-python
would silently fall back to the llama-2 format, which makes Gemma answer nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, LLAMA3_INSTRUCT_CHAT_TEMPLATE

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
#
# The transcript opens with a few worked exchanges. Asked a bare question after a one-line
# header, the starter mostly deflected ("I'm a fan of the show." for who wrote Romeo and
# Juliet, "What is the output?" for a Python function); shown how an assistant answers (short
# and direct, a list when asked for tips, code when asked for code), it answers: 8 of 12
# newcomer questions right or close, against 5, and 9 of 12 questions held out from choosing
# the examples (4 of them fully right), against 3, every answer ending by itself
# (bench/first_answers.py; results/first_answers.txt).
# A system prompt takes the header's place; the examples stay. Examples that echo a likely
# request get copied (a translation example made a "thank-you note" come out as
# "'Thank you' in German is 'Danke'"), so none does.
TRANSCRIPT_HEADER = (
    "Below is a conversation between a user and an AI assistant. The assistant is helpful and "
    "knowledgeable: it answers questions correctly in a sentence or two, and when asked to write "
    "something, it writes it."
)
TRANSCRIPT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Hi there!", "Hello! I'm an AI assistant. How can I help you?"),
    ("What is the largest planet in the solar system?", "Jupiter is the largest planet in the solar system."),
    ("Give me two tips for sleeping better.",
     "1. Go to bed at the same time every night.\n2. Keep screens out of the bedroom."),
    ("Write a short poem about the sea.", "Grey waves roll in and slip away,\nthe gulls cry out above the bay."),
    ("Write a Python function that adds two numbers.", "def add(a, b):\n    return a + b"),
    ("What is a noun?", "A noun is a word that names a person, place or thing, like 'teacher', 'city' or 'book'."),
)


def _verbatim(text: str) -> str:
    """`text` in a Jinja template, taken as it is."""
    assert "{% endraw %}" not in text
    return "{% raw %}" + text + "{% endraw %}"


def _transcript(with_examples: bool) -> str:
    return (
        "{{ bos_token }}"
        "{% if messages and messages[0]['role'] == 'system' %}{{ messages[0]['content'] | trim }}"
        "{% else %}" + _verbatim(TRANSCRIPT_HEADER) + "{% endif %}"
        "{{ '\\n\\n' }}"
        + (_verbatim("".join(f"User: {asked}\nAssistant: {answered}\n" for asked, answered in TRANSCRIPT_EXAMPLES))
           if with_examples else "")
        + "{% for message in messages if message['role'] != 'system' %}"
        "{{ ('User: ' if message['role'] == 'user' else 'Assistant: ') + message['content'] | trim + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    )


TRANSCRIPT_TEMPLATE = _transcript(with_examples=True)

# The same formats less their worked examples, used when a chat would not fit the context
# with them: the examples go before any turn of the conversation does (about 230 tokens with
# the starter's vocabulary, but a small vocabulary can take three times that).
COMPACT_TEMPLATES: dict[str, str] = {"transcript": _transcript(with_examples=False)}

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

    @property
    def from_file(self) -> bool:
        """The model file's own template: code from a stranger, rendered in a sandbox process
        (engine.template_sandbox); the built-in ones are ours and render in this process."""
        return self.name == FILE_TEMPLATE

    @property
    def compact_source(self) -> str | None:
        """The same format without its worked examples, if it has any (COMPACT_TEMPLATES)."""
        return None if self.from_file else COMPACT_TEMPLATES.get(self.name)

    @property
    def stops(self) -> list[str]:
        """Stop strings besides the end-of-generation tokens llama.cpp knows."""
        stops = [self.eos_token, *_EXTRA_STOPS.get(self.name, [])]
        return [stop for stop in stops if stop]


_INSTRUCT_WORDS = re.compile(r"\b(it|instruct|chat|sft|dpo|rlhf)\b", re.IGNORECASE)


def looks_instruction_tuned(metadata: dict[str, str]) -> bool:
    """Whether the file says it was fine-tuned to follow turns (e.g. "gemma-3-270m-it")."""
    described = " ".join(metadata.get(key, "") for key in ("general.finetune", "general.name", "general.basename"))
    return bool(_INSTRUCT_WORDS.search(described.replace("-", " ").replace("_", " ")))


def template_for_architecture(metadata: dict[str, str]) -> tuple[str, str]:
    """A built-in template name for a model whose file has none, and why it was picked."""
    if not looks_instruction_tuned(metadata):
        return "transcript", (
            "the file has no template and its metadata names no instruct or chat fine-tune, "
            "so it is treated as a base model and given a User/Assistant transcript that opens with a few "
            "worked exchanges"
        )
    name, why = _chat_template_for_architecture(metadata)
    return name, f"the file has no template; {why}"


def _chat_template_for_architecture(metadata: dict[str, str]) -> tuple[str, str]:
    architecture = metadata.get("general.architecture", "")
    if architecture.startswith("gemma"):
        return "gemma", f"{architecture} models use Gemma turns"
    if architecture == "llama" and metadata.get("tokenizer.ggml.pre") == "llama-bpe":
        return "llama-3", "a llama-bpe vocabulary means Llama 3"
    if architecture in ("mistral", "mistral3"):
        return "mistral", f"{architecture} uses [INST] turns"
    return "chatml", f"ChatML is the common default for {architecture or 'unknown models'}"


# Turn markers that show which built-in format a file's template writes, as llama.cpp's
# llama_chat_detect_template reads them. Checked in this order.
_FORMAT_SIGNS: tuple[tuple[str, str], ...] = (
    ("<|im_start|>", "chatml"),
    ("<start_of_turn>", "gemma"),
    ("<|start_header_id|>", "llama-3"),
    ("[INST]", "mistral"),
)


def fallback_template_choice(metadata: dict[str, str]) -> tuple[str, str]:
    """The built-in template to use when the file's own template fails, and why.

    The failed template still shows the turn markers the model was trained on, so those
    decide first; else the architecture does. A file with a chat template is a chat model,
    so the base-model transcript is never the fallback.
    """
    source = metadata.get("tokenizer.chat_template", "")
    for sign, name in _FORMAT_SIGNS:
        if sign in source:
            return name, f"the file's template writes {sign} turns"
    return _chat_template_for_architecture(metadata)


def fallback_template_name(metadata: dict[str, str]) -> str:
    """The name of the built-in template to fall back to (see fallback_template_choice)."""
    return fallback_template_choice(metadata)[0]


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
