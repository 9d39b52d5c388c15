"""The chat templates of real models that llama.cpp ships, read from the llama-cpp-python sdist.

llama.cpp keeps the templates of ~70 models in models/templates/*.jinja of its source, which
the llama-cpp-python sdist vendors. The sdist of the installed version is downloaded once
with pip (as bench/llama_bench.py does) into .cache/ at the top of the repository, which git
ignores; only the templates are unpacked. Nothing is copied into the repository.

    python tests/template_corpus.py    # prints how each template renders, and its thinking markers
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
TEMPLATES_IN_SDIST = "vendor/llama.cpp/models/templates/"
# A 76 MB download and a PEP 517 metadata step: minutes on a slow line, never forever.
DOWNLOAD_SECONDS = 900

CHAT = [
    {"role": "system", "content": "You are a terse assistant. Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And three landmarks there?"},
]


class CorpusUnavailable(Exception):
    """The sdist could not be downloaded or read; str() says why."""


def templates_dir() -> Path:
    """The folder holding the corpus' .jinja files, downloading and unpacking them once."""
    wanted = version("llama_cpp_python")
    target = CACHE / f"llama-cpp-python-{wanted}-templates"
    if target.is_dir() and any(target.glob("*.jinja")):
        return target
    sdist = _download(wanted)
    unpacking = target.with_name(target.name + ".tmp")
    unpacking.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(sdist) as tar:
            for member in tar:
                folder, _, name = member.name.rpartition("/")
                if member.isfile() and name.endswith(".jinja") and (folder + "/").endswith(TEMPLATES_IN_SDIST):
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    (unpacking / name).write_bytes(extracted.read())
    except (OSError, tarfile.TarError) as error:
        raise CorpusUnavailable(f"cannot read {sdist.name}: {error}") from error
    if not any(unpacking.glob("*.jinja")):
        raise CorpusUnavailable(f"{sdist.name} has no {TEMPLATES_IN_SDIST}*.jinja")
    unpacking.replace(target)  # whole or not at all, should two runs race
    return target


def _download(wanted: str) -> Path:
    folder = CACHE / "sdist"
    sdist = folder / f"llama_cpp_python-{wanted}.tar.gz"
    if sdist.exists():
        return sdist
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"llama-cpp-python=={wanted}", "-d", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CorpusUnavailable(f"pip download of the llama-cpp-python {wanted} sdist failed: {error}") from error
    if done.returncode or not sdist.exists():
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CorpusUnavailable(f"pip download of the llama-cpp-python {wanted} sdist failed: {last}")
    return sdist


def load_corpus() -> dict[str, str]:
    """Template name (the file name without .jinja) to its source, sorted by name."""
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(templates_dir().glob("*.jinja"))}


# The bos and eos tokens each family's vocabulary has, told from the file name; "" when unsure.
_FAMILY_TOKENS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("llama-3", "Llama-3", "Hermes-3", "firefunction", "functionary"), "<|begin_of_text|>", "<|eot_id|>"),
    (("gemma",), "<bos>", "<eos>"),
    (("deepseek", "DeepSeek"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    (("mistral", "Mistral", "Devstral", "Ministral"), "<s>", "</s>"),
    (("Qwen", "QwQ", "Hermes-2"), "", "<|im_end|>"),
    (("Phi-3",), "<s>", "<|endoftext|>"),
)


def likely_tokens(name: str) -> tuple[str, str]:
    """The (bos, eos) a model with this template most likely has."""
    for signs, bos, eos in _FAMILY_TOKENS:
        if any(sign in name for sign in signs):
            return bos, eos
    return "", ""


def main() -> None:
    from llama_tui.engine.chat_templates import fallback_template_choice
    from llama_tui.engine.jinja_chat import render_chat
    from llama_tui.engine.thinking import has_thinking_switch, starts_thinking, strip_thinking, thinking_markers

    corpus = load_corpus()
    print(f"{len(corpus)} templates from {templates_dir()}\n")
    print(f"{'template':48} {'renders':8} {'markers':36} {'opens':6} {'switch':6} {'leaks':5} fallback")
    for name, source in corpus.items():
        bos, eos = likely_tokens(name)
        try:
            prompt = render_chat(source, CHAT, bos_token=bos, eos_token=eos)
            renders = "yes"
        except Exception as error:  # noqa: BLE001 - a report of whatever goes wrong
            prompt, renders = "", f"NO ({type(error).__name__}: {error})"
        markers = thinking_markers(source)
        shown = f"{markers.style}: {markers.open!r}…{markers.close!r}" if markers else "-"
        opens = "yes" if starts_thinking(prompt, markers) else "no"
        leaks = "-"
        if markers is not None:
            answer_prefix = (markers.answer_prefixes or ("",))[0]
            thinking_reply = f"{markers.open}\nSECRET THOUGHT\n{markers.close}\n\n{answer_prefix}Paris."
            chat = [*CHAT[:2], {"role": "assistant", "content": thinking_reply}, CHAT[3]]
            try:
                leaks = "yes" if "SECRET THOUGHT" in render_chat(source, chat, bos_token=bos, eos_token=eos) else "no"
            except Exception as error:  # noqa: BLE001
                leaks = f"raises ({type(error).__name__})"
            stripped = [*CHAT[:2], {"role": "assistant", "content": strip_thinking(thinking_reply, markers)}, CHAT[3]]
            assert "SECRET THOUGHT" not in render_chat(source, stripped, bos_token=bos, eos_token=eos)
        fallback = fallback_template_choice({"tokenizer.chat_template": source})[0]
        switch = "yes" if has_thinking_switch(source) else "no"
        print(f"{name:48} {renders:8} {shown:36} {opens:6} {switch:6} {leaks:5} {fallback}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
