"""Tiny random-weight GGUF models for tests, written on the fly with gguf.GGUFWriter.

Why: the app's load/chat/error paths need a real llama.cpp model, but a real one is
hundreds of MB. A ~0.6 MB llama with random weights loads in milliseconds and
generates (nonsense) tokens, so tests stay fast and no binary is committed.
Crafted variants (no layers, a duplicated token string, truncated, not a GGUF)
exercise the error paths.

This module is a pytest plugin (listed in tests/conftest.py), so its fixtures are global.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np
import pytest

N_VOCAB = 512
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX_TRAIN = 2048

_UNK, _BOS, _EOS = 0, 1, 2
N_BANNED = 3 + 256  # special and byte tokens: never generated


def _vocab(duplicate_token: bool, control_tokens: Sequence[str] = ()) -> tuple[list[str], list[float], list[int]]:
    """SPM vocab: <unk>, <s>, </s>, the 256 byte tokens, then unique word pieces, the last
    of which are replaced by `control_tokens`."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256

    letters = string.ascii_lowercase
    pieces = ["▁", *letters, *string.ascii_uppercase, *string.digits, *".,!?'-:"]
    pieces += ["▁" + c for c in letters]
    pieces += ["▁" + a + b for a in letters for b in letters]  # cut to fit below
    n_words = N_VOCAB - len(tokens)
    assert len(pieces) >= n_words
    pieces = pieces[:n_words]
    if duplicate_token:  # crafted: the last piece repeats an earlier string
        pieces[-1] = pieces[1]
    if control_tokens:
        pieces[-len(control_tokens):] = control_tokens
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * (n_words - len(control_tokens)) + [gguf.TokenType.CONTROL] * len(control_tokens)

    # SPM merges prefer higher scores; special and byte tokens score 0.
    scores = [0.0] * (N_VOCAB - n_words) + [-float(i) for i in range(n_words)]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama_gguf(
    path: Path,
    *,
    chat_template: str | None = None,
    block_count: int = 2,
    duplicate_token: bool = False,
    name: str = "tiny-test-llama",
    seed: int = 0,
    control_tokens: Sequence[str] = (),
    favoured_token: str | None = None,
) -> Path:
    """Write a random-weight F32 llama GGUF (~0.6 MB) to `path`; deterministic per seed.

    `control_tokens` are added to the vocabulary as control tokens (like "<|channel|>");
    `favoured_token` is one the model then writes every time.

    block_count=0 and duplicate_token=True make crafted files that llama.cpp may
    reject or abort on: load those only in a subprocess.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    n_embd_kv = N_EMBD // N_HEAD * N_HEAD_KV

    def weight(*shape: int) -> np.ndarray:  # numpy shape is ggml's ne reversed
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w = gguf.GGUFWriter(path, "llama")
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(N_VOCAB)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(block_count)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)

    tokens, scores, types = _vocab(duplicate_token, control_tokens)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(_UNK)
    w.add_bos_token_id(_BOS)
    w.add_eos_token_id(_EOS)
    w.add_add_bos_token(True)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    # Dim 0 of every embedding is a constant that survives the tiny random layers, so
    # output.weight[:, 0] acts as a logit bias (llama has no output bias tensor). It
    # bans <unk>/<s>/</s> and the byte tokens: the model only emits ASCII word pieces
    # and never EOS, so generation always runs to max_tokens. (Stray 0xF0-0xFF byte
    # tokens make llama-cpp-python 0.3.36's create_completion ignore max_tokens
    # until the context overflows and llama_decode fails.)
    embd = rng.standard_normal((N_VOCAB, N_EMBD)).astype(np.float32)
    embd[:, 0] = 4.0
    w.add_tensor("token_embd.weight", embd)
    for i in range(block_count):
        blk = f"blk.{i}"
        w.add_tensor(f"{blk}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"{blk}.attn_q.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"{blk}.attn_k.weight", weight(n_embd_kv, N_EMBD))
        w.add_tensor(f"{blk}.attn_v.weight", weight(n_embd_kv, N_EMBD))
        w.add_tensor(f"{blk}.attn_output.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(f"{blk}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(f"{blk}.ffn_gate.weight", weight(N_FF, N_EMBD))
        w.add_tensor(f"{blk}.ffn_up.weight", weight(N_FF, N_EMBD))
        w.add_tensor(f"{blk}.ffn_down.weight", weight(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    out = weight(N_VOCAB, N_EMBD)
    out[:, 0] = 0.0
    out[:N_BANNED, 0] = -10.0
    if favoured_token is not None:
        out[tokens.index(favoured_token), 0] = 10.0
    w.add_tensor("output.weight", out)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_truncated_copy(src: Path, dst: Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first `keep_fraction` of `src` to `dst`, like an interrupted download."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(dst)


def write_not_a_gguf(path: Path) -> Path:
    """Write a text file with a .gguf name: wrong magic."""
    Path(path).write_text("This is not a GGUF model, just text with the wrong name.\n")
    return Path(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny model, without a chat template."""
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("tiny") / "tiny-test-llama.gguf")


@pytest.fixture(scope="session")
def tiny_model_chatml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a ChatML chat template in its metadata."""
    from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE

    return write_tiny_llama_gguf(
        tmp_path_factory.mktemp("tiny-chatml") / "tiny-test-llama-chatml.gguf",
        chat_template=CHATML_CHAT_TEMPLATE,
        name="tiny-test-llama-chatml",
    )


@pytest.fixture
def broken_model_files(tmp_path: Path, tiny_model: Path) -> dict[str, Path]:
    """Paths that must fail to load: 'missing', 'not_gguf', 'truncated'."""
    return {
        "missing": tmp_path / "does-not-exist.gguf",
        "not_gguf": write_not_a_gguf(tmp_path / "not-a-model.gguf"),
        "truncated": write_truncated_copy(tiny_model, tmp_path / "truncated.gguf"),
    }
