"""The tiny GGUF factory makes files llama.cpp really loads, and broken files it really rejects."""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

from tests.tiny_gguf import N_BANNED, N_VOCAB, write_tiny_llama_gguf

MB = 1024 * 1024


@llama_cpp.llama_log_callback
def _silent_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """No-op llama.cpp log sink; module-level so ctypes keeps it alive."""


@pytest.fixture(autouse=True)
def quiet_llama() -> Iterator[None]:
    """Keep llama.cpp's C log off the test output, then restore llama-cpp-python's logger."""
    from llama_cpp import _logger

    llama_cpp.llama_log_set(_silent_log, ctypes.c_void_p(0))
    yield
    llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _load(path: Path) -> llama_cpp.Llama:
    # verbose=True: verbose=False redirects the process's stdout/stderr fds.
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=True)


def test_tiny_model_is_small_and_deterministic(tiny_model: Path, tmp_path: Path) -> None:
    assert tiny_model.stat().st_size < 1 * MB
    again = write_tiny_llama_gguf(tmp_path / "again.gguf")
    other = write_tiny_llama_gguf(tmp_path / "other.gguf", seed=1)
    assert again.read_bytes() == tiny_model.read_bytes()
    assert other.read_bytes() != tiny_model.read_bytes()


def test_tiny_model_loads_tokenizes_and_generates(tiny_model: Path) -> None:
    llm = _load(tiny_model)
    try:
        assert llm.metadata["general.name"] == "tiny-test-llama"
        assert "tokenizer.chat_template" not in llm.metadata
        assert llm.n_ctx() == 256
        assert llm.n_vocab() == N_VOCAB
        assert (llm.token_bos(), llm.token_eos()) == (1, 2)

        tokens = llm.tokenize(b"hello world")
        assert tokens[0] == 1 and len(tokens) > 2  # BOS, then pieces
        assert llm.detokenize(tokens[1:]) == b" hello world"  # SPM's leading space

        generated = list(itertools.islice(llm.generate(tokens, temp=0.0), 8))
        # Only word pieces: no EOS, no byte tokens (see the logit bias in tiny_gguf).
        assert len(generated) == 8 and all(N_BANNED <= t < N_VOCAB for t in generated)

        llm.reset()
        out = llm.create_completion("hello", max_tokens=8, temperature=0)
        assert out["choices"][0]["finish_reason"] == "length"
        assert out["usage"]["completion_tokens"] == 8
        assert out["choices"][0]["text"].strip().isascii()
    finally:
        llm.close()


def test_chatml_variant_exposes_its_template(tiny_model_chatml: Path) -> None:
    llm = _load(tiny_model_chatml)
    try:
        assert llm.metadata["general.name"] == "tiny-test-llama-chatml"
        assert llm.metadata["tokenizer.chat_template"] == CHATML_CHAT_TEMPLATE
        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0
        )
        assert reply["choices"][0]["message"]["role"] == "assistant"
    finally:
        llm.close()


@pytest.mark.parametrize("kind", ["missing", "not_gguf", "truncated"])
def test_broken_files_raise_instead_of_crashing(
    broken_model_files: dict[str, Path], kind: str
) -> None:
    path = broken_model_files[kind]
    assert path.exists() == (kind != "missing")
    with pytest.raises(ValueError):
        _load(path)


_LOAD_IN_CHILD = """
import sys, llama_cpp
try:
    llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=True)
except ValueError:
    sys.exit(3)
print("LOADED")
"""


def test_crafted_files_never_load(tmp_path: Path) -> None:
    """block_count=0 and a duplicated token string: llama.cpp (0.3.36) hits a GGML_ASSERT
    and aborts the process, so these must only ever be loaded in a child process."""
    crafted = [
        write_tiny_llama_gguf(tmp_path / "no-layers.gguf", block_count=0),
        write_tiny_llama_gguf(tmp_path / "dup-token.gguf", duplicate_token=True),
    ]
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}  # skip ggml's gdb backtrace on abort
    for path in crafted:
        child = subprocess.run(
            [sys.executable, "-c", _LOAD_IN_CHILD, str(path)],
            capture_output=True, text=True, timeout=60, env=env,
        )
        assert "LOADED" not in child.stdout, path.name
        # Either a clean refusal (ValueError) or an abort; today it is the abort.
        assert child.returncode in (3, -signal.SIGABRT), (path.name, child.stderr[-500:])
