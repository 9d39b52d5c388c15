"""The fast GGUF header reader: fields, array skipping, corrupt files, problems, memory."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from llama_tui.engine.gguf_header import (
    QUANTIZATION_NAMES,
    GGUFHeaderError,
    MemoryEstimate,
    available_ram_bytes,
    estimate_memory,
    header_problems,
    read_gguf_header,
)
from tests.file_reads import READ_AHEAD, count_reads

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
N_TOKENS = 40_000
LONG_TOKEN = "x" * (3 << 20)  # longer than a read chunk: skipped by seeking


def _tokens() -> list[str]:
    # Varied lengths so token strings straddle the reader's chunk boundaries.
    tokens = [f"tok{i}" + "é" * (i % 37) for i in range(N_TOKENS - 1)]
    tokens.insert(N_TOKENS // 2, LONG_TOKEN)
    return tokens


def write_test_gguf(path: Path, *, block_count: int = 4, tensor: bool = True) -> Path:
    """A small llama-shaped GGUF: every field the header reader looks at, one tensor."""
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("Test Model")
    w.add_size_label("7M")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_context_length(2048)
    w.add_block_count(block_count)
    w.add_embedding_length(512)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_tokenizer_model("llama")
    w.add_token_list(_tokens())
    w.add_token_scores([float(-i) for i in range(N_TOKENS)])
    w.add_token_types([1] * N_TOKENS)
    w.add_array("test.nested", [[1, 2, 3], ["a", "bc"], [[4], [5, 6]]])
    # Keys after the arrays prove the skipping landed on the right byte.
    w.add_chat_template(TEMPLATE)
    w.add_string("test.after_arrays", "still aligned")
    w.add_float32("test.float", 0.5)
    w.add_bool("test.flag", True)
    w.add_int64("test.big", -(2**40))
    if tensor:
        w.add_tensor("token_embd.weight", np.ones((16, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def test_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_gguf(tmp_path_factory.mktemp("gguf-header") / "test.gguf")


def _raw_gguf(*kvs: bytes, kv_count: int | None = None, tensor_count: int = 0, version: int = 3) -> bytes:
    """A hand-built GGUF header, for files GGUFWriter refuses to write."""
    count = len(kvs) if kv_count is None else kv_count
    return b"GGUF" + struct.pack("<IQQ", version, tensor_count, count) + b"".join(kvs)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


# --- reading ---------------------------------------------------------------------------


def test_reads_every_field(test_gguf: Path) -> None:
    h = read_gguf_header(test_gguf)
    assert h.path == test_gguf
    assert h.file_size == test_gguf.stat().st_size
    assert h.version == 3
    assert h.tensor_count == 1
    assert h.architecture == "llama"
    assert h.name == "Test Model"
    assert h.size_label == "7M"
    assert h.parameter_count == 16 * 8
    assert h.file_type == 15
    assert h.quantization == "Q4_K_M"
    assert h.context_length == 2048
    assert h.block_count == 4
    assert h.embedding_length == 512
    assert h.head_count == 8
    assert h.head_count_kv == 2
    assert h.key_length is None and h.value_length is None
    assert h.head_dim == 512 // 8
    assert h.vocab_size == N_TOKENS
    assert h.chat_template == TEMPLATE
    # The tensor data (16 x 8 f32) ends exactly at the end of the file.
    assert h.data_offset % 32 == 0
    assert h.tensor_data_end == h.data_offset + 16 * 8 * 4 == h.file_size
    assert h.unknown_tensor_types == () and h.duplicate_keys == ()


def test_metadata_holds_scalars_and_strings_only(test_gguf: Path) -> None:
    h = read_gguf_header(test_gguf)
    assert h.metadata["general.architecture"] == "llama"
    assert h.metadata["llama.context_length"] == 2048
    assert h.metadata["tokenizer.ggml.model"] == "llama"
    assert h.metadata["test.after_arrays"] == "still aligned"
    assert h.metadata["test.float"] == 0.5
    assert h.metadata["test.flag"] is True
    assert h.metadata["test.big"] == -(2**40)
    assert h.kv_count == len(h.metadata) + len(h.array_lengths)
    assert "tokenizer.ggml.tokens" not in h.metadata
    assert h.array_lengths == {
        "tokenizer.ggml.tokens": N_TOKENS,
        "tokenizer.ggml.scores": N_TOKENS,
        "tokenizer.ggml.token_type": N_TOKENS,
        "test.nested": 3,
    }


def test_matches_gguf_reader(test_gguf: Path) -> None:
    reader = gguf.GGUFReader(test_gguf)
    h = read_gguf_header(test_gguf)
    assert h.data_offset == reader.data_offset
    for key, f in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[1] != gguf.GGUFValueType.ARRAY:  # GGUFReader flattens nested arrays
                assert h.array_lengths[key] == len(f.data), key
        else:
            assert h.metadata[key] == pytest.approx(f.contents()), key


def test_repr_leaves_out_the_bulky_fields(test_gguf: Path) -> None:
    text = repr(read_gguf_header(test_gguf))
    assert "Q4_K_M" in text and TEMPLATE not in text and "after_arrays" not in text


def test_string_path_is_accepted(test_gguf: Path) -> None:
    assert read_gguf_header(str(test_gguf)).path == test_gguf


def test_per_layer_head_counts_use_the_maximum(tmp_path: Path) -> None:
    w = gguf.GGUFWriter(tmp_path / "hybrid.gguf", "hybrid")
    w.add_block_count(3)
    w.add_array("hybrid.attention.head_count_kv", [0, 4, 2])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    h = read_gguf_header(tmp_path / "hybrid.gguf")
    assert h.head_count_kv == 4
    assert h.array_lengths["hybrid.attention.head_count_kv"] == 3


def test_quantization_names_match_llama_cpp() -> None:
    import llama_cpp

    constants = {
        name: value
        for name, value in vars(llama_cpp).items()
        if name.startswith("LLAMA_FTYPE_") and name != "LLAMA_FTYPE_GUESSED"
    }
    assert len(constants) >= 30
    for name, value in constants.items():
        short = name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
        assert QUANTIZATION_NAMES[value] == short


def test_engine_module_imports_neither_textual_nor_llama_cpp() -> None:
    code = (
        "import sys, llama_tui.engine.gguf_header;"
        "bad = {'textual', 'llama_cpp', 'gguf', 'numpy'} & set(sys.modules);"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


# --- errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GGUFHeaderError, match="does not exist"):
        read_gguf_header(tmp_path / "nope.gguf")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(GGUFHeaderError, match="folder"):
        read_gguf_header(tmp_path)


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"This is not a GGUF model.\n", "not a GGUF model file"),
        (b"<!DOCTYPE html><html>404</html>", "web page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS"),
        (b"", "empty"),
        (b"GG", "not a GGUF model file"),
    ],
)
def test_bad_magic(tmp_path: Path, content: bytes, hint: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFHeaderError, match=hint) as error:
        read_gguf_header(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("version", "hint"),
    [(1, "version 1"), (4, "version 4"), (3 << 24, "big-endian")],
)
def test_unsupported_version(tmp_path: Path, version: int, hint: str) -> None:
    path = tmp_path / "old.gguf"
    path.write_bytes(_raw_gguf(version=version))
    with pytest.raises(GGUFHeaderError, match=hint):
        read_gguf_header(path)


def test_truncated_header(tmp_path: Path, test_gguf: Path) -> None:
    data = test_gguf.read_bytes()
    h = read_gguf_header(test_gguf)
    # Cuts in the counts, a key, the token strings (both sides of the long token), the
    # keys after the arrays and the tensor infos.
    for cut in (6, 20, 60, 300_000, len(data) // 2, h.data_offset - 200):
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(GGUFHeaderError, match="truncated"):
            read_gguf_header(path)


def test_truncated_weights_are_a_problem_not_an_error(tmp_path: Path, test_gguf: Path) -> None:
    path = tmp_path / "short.gguf"
    h = read_gguf_header(test_gguf)
    path.write_bytes(test_gguf.read_bytes()[: h.data_offset + 100])
    short = read_gguf_header(path)
    assert short.vocab_size == N_TOKENS
    assert any("truncated" in p for p in header_problems(short))


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_raw_gguf(kv_count=2**62), id="kv_count"),
        pytest.param(_raw_gguf(tensor_count=2**60), id="tensor_count"),
        pytest.param(_raw_gguf(struct.pack("<Q", 2**60) + b"key"), id="key_length"),
        pytest.param(_raw_gguf(_string("k") + struct.pack("<IQ", 8, 2**50)), id="string_length"),
        pytest.param(_raw_gguf(_string("k") + struct.pack("<IIQ", 9, 8, 2**61)), id="string_array_count"),
        pytest.param(_raw_gguf(_string("k") + struct.pack("<IIQ", 9, 12, 2**61)), id="numeric_array_count"),
        pytest.param(_raw_gguf(_string("k") + struct.pack("<IB", 99, 0)), id="value_type"),
    ],
)
def test_absurd_lengths_fail_cleanly(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "crafted.gguf"
    path.write_bytes(raw + b"\0" * 64)
    with pytest.raises(GGUFHeaderError, match=r"corrupt|truncated"):
        read_gguf_header(path)


def test_damaged_files_raise_only_header_errors(tmp_path: Path, test_gguf: Path) -> None:
    """Random byte damage in the header: a result or GGUFHeaderError, nothing else."""
    data = test_gguf.read_bytes()[:200_000]  # the counts, keys and some token strings
    rng = random.Random(1234)
    path = tmp_path / "damaged.gguf"
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(300)] = rng.randrange(256)
        path.write_bytes(damaged)
        try:
            h = read_gguf_header(path)
        except GGUFHeaderError:
            continue
        header_problems(h)
        estimate_memory(h, 512, n_gpu_layers=1)


def test_error_is_a_value_error() -> None:
    assert issubclass(GGUFHeaderError, ValueError)


# --- problems --------------------------------------------------------------------------


def test_good_file_has_no_problems(test_gguf: Path) -> None:
    assert header_problems(read_gguf_header(test_gguf)) == []


def test_block_count_zero_is_a_problem(tmp_path: Path) -> None:
    h = read_gguf_header(write_test_gguf(tmp_path / "no-layers.gguf", block_count=0))
    assert h.block_count == 0
    problems = header_problems(h)
    assert len(problems) == 1
    assert "no layers" in problems[0] and "llama.block_count" in problems[0]


def test_empty_gguf_lists_every_missing_piece(tmp_path: Path) -> None:
    path = tmp_path / "bare.gguf"
    path.write_bytes(_raw_gguf())
    problems = " ".join(header_problems(read_gguf_header(path)))
    assert "architecture" in problems
    assert "vocabulary" in problems
    assert "no tensors" in problems


def test_zero_heads_and_embedding_are_problems(tmp_path: Path) -> None:
    w = gguf.GGUFWriter(tmp_path / "zero.gguf", "llama")
    w.add_block_count(2)
    w.add_embedding_length(0)
    w.add_head_count(0)
    w.add_token_list(["a", "b"])
    w.add_tensor("t", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    problems = " ".join(header_problems(read_gguf_header(tmp_path / "zero.gguf")))
    assert "embedding size" in problems and "0 attention heads" in problems


# --- memory ----------------------------------------------------------------------------


def test_estimate_memory_for_known_dims(test_gguf: Path) -> None:
    h = read_gguf_header(test_gguf)
    weights = h.file_size - h.data_offset
    assert weights == 16 * 8 * 4
    # K and V, 1024 tokens, 4 layers, 2 KV heads of 512 / 8 = 64 dims, 2 bytes each.
    kv = 2 * 1024 * 4 * 2 * 64 * 2
    # Work buffers for a 512-token batch: f32 logits over the vocabulary, f32 attention scores.
    compute = 512 * 4 * ((h.vocab_size or 0) + 1024 * (h.head_count or 0))
    assert compute > 0
    assert estimate_memory(h, 1024) == MemoryEstimate(
        weights_bytes=weights, kv_cache_bytes=kv, compute_bytes=compute, total_bytes=weights + kv + compute,
        ram_bytes=weights + kv + compute, vram_bytes=0,
    )
    half = estimate_memory(h, 1024, n_gpu_layers=2)
    assert half.vram_bytes == (weights + kv) // 2 and half.ram_bytes + half.vram_bytes == weights + kv + compute
    full = estimate_memory(h, 1024, n_gpu_layers=-1)
    assert full.vram_bytes == weights + kv and full.ram_bytes == compute
    assert estimate_memory(h, 1024, n_gpu_layers=99) == full
    # n_ctx 0 means the training context, as in llama.cpp.
    assert estimate_memory(h, 0).kv_cache_bytes == kv * 2048 // 1024


def test_estimate_memory_prefers_key_length(tmp_path: Path) -> None:
    w = gguf.GGUFWriter(tmp_path / "gqa.gguf", "gemma3")
    w.add_block_count(18)
    w.add_embedding_length(640)
    w.add_head_count(4)
    w.add_head_count_kv(1)
    w.add_key_length(256)
    w.add_value_length(128)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    h = read_gguf_header(tmp_path / "gqa.gguf")
    assert h.head_dim == 256
    assert estimate_memory(h, 4096).kv_cache_bytes == 4096 * 18 * 1 * (256 + 128) * 2


def test_available_ram() -> None:
    ram = available_ram_bytes()
    assert ram is not None and ram > 0


# --- the real starter model ------------------------------------------------------------


def test_starter_model_header_reads_only_the_header(starter_model: Path) -> None:
    """The picker reads the headers of models of hundreds of MB: the reader reads the
    header (vocabulary included) and never the tensor data. How long it takes is a figure
    of bench/latency.py."""
    with count_reads() as reads:
        h = read_gguf_header(starter_model)
    assert h.architecture == "gemma3"
    assert h.vocab_size is not None and h.vocab_size > 200_000
    assert h.quantization == "Q4_K_M"
    assert h.context_length and h.context_length > 0
    assert h.block_count and h.head_count and h.embedding_length
    # This GGUF has no tokenizer.chat_template: chat formatting must come from elsewhere.
    assert h.chat_template is None
    assert h.tensor_data_end == h.file_size  # every tensor accounted for
    assert header_problems(h) == []
    file = starter_model.resolve()
    assert reads.opens[file] == 1
    # Up to the header's end and one read-ahead chunk past it: ~7 of the file's 253 MB.
    assert reads.bytes[file] <= h.data_offset + READ_AHEAD
    assert h.data_offset + READ_AHEAD < h.file_size / 10
