"""A fast GGUF header reader for the model picker: metadata without loading the model.

Pure Python on `struct` (no llama_cpp, no gguf, no numpy). `gguf.GGUFReader` builds every
array, which takes ~11 s on the Gemma 3 starter model (262k-token vocabulary); here
arrays are skipped (numeric ones by seeking, string ones by walking their lengths), so
the same header reads in well under a second.

Layout (GGUF v2/v3, little-endian): magic "GGUF", u32 version, u64 tensor_count,
u64 kv_count, the key/value pairs, then one info record per tensor, then (aligned) the
tensor data. The tensor infos are read too: they are small and give the exact start of
the data, the parameter count and whether the data runs past the end of the file.

Every length in the file is checked against the bytes that remain before anything is
allocated or looped over, so a crafted or truncated file fails with `GGUFHeaderError`.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "GGUFHeader",
    "GGUFHeaderError",
    "MemoryEstimate",
    "QUANTIZATION_NAMES",
    "available_ram_bytes",
    "check_gguf_start",
    "estimate_memory",
    "estimate_memory_for",
    "header_problems",
    "read_gguf_header",
]

Scalar = str | int | float | bool

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_DEFAULT_ALIGNMENT = 32
_CHUNK = 1 << 20  # 1 MiB reads: few syscalls, little memory
_MAX_STRING = 64 << 20  # chat templates are KBs; a longer "string" is a corrupt length
_MAX_ARRAY_DEPTH = 8
_MAX_TENSOR_DIMS = 4  # GGML_MAX_DIMS; llama.cpp rejects more
_MAX_READ_ARRAY = 4096  # largest per-layer array we read instead of skipping

# llama.cpp's LLAMA_FTYPE_* (llama.h), the value of general.file_type.
QUANTIZATION_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}

# ggml tensor types: (elements per block, bytes per block), from gguf's GGML_QUANT_SIZES.
# Used only to find where the tensor data ends; a type missing here is one llama.cpp
# no longer loads (e.g. the removed Q4_0_4_4 repacks).
_QK_K = 256
_GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (_QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),  # Q2_K
    11: (_QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),  # Q3_K
    12: (_QK_K, 2 + 2 + _QK_K // 2 + 12),  # Q4_K
    13: (_QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),  # Q5_K
    14: (_QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),  # Q6_K
    15: (_QK_K, 4 + _QK_K + _QK_K // 8),  # Q8_K
    16: (_QK_K, 2 + _QK_K // 4),  # IQ2_XXS
    17: (_QK_K, 2 + _QK_K // 4 + _QK_K // 32),  # IQ2_XS
    18: (_QK_K, 2 + _QK_K // 4 + _QK_K // 8),  # IQ3_XXS
    19: (_QK_K, 2 + _QK_K // 8 + _QK_K // 16),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (_QK_K, 2 + _QK_K // 4 + _QK_K // 8 + _QK_K // 32 + 4),  # IQ3_S
    22: (_QK_K, 2 + _QK_K // 4 + _QK_K // 16),  # IQ2_S
    23: (_QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 64),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (_QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32),  # IQ1_M
    30: (1, 2),  # BF16
    34: (_QK_K, 2 + 4 * 13),  # TQ1_0
    35: (_QK_K, 2 + 64),  # TQ2_0
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
}

# GGUF value types -> struct format of one item (8 = string, 9 = array are special).
_STRING, _ARRAY = 8, 9
_SCALAR_CODES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_SCALAR_FORMATS = {value_type: struct.Struct("<" + code) for value_type, code in _SCALAR_CODES.items()}
_INT_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GGUFHeaderError(ValueError):
    """The file is missing, unreadable, not a GGUF file or has a corrupt header."""


@dataclass(frozen=True)
class GGUFHeader:
    """What the picker shows about a model file, read from its header only."""

    path: Path
    file_size: int
    version: int
    tensor_count: int
    kv_count: int
    data_offset: int  # where the tensor data starts: the header's size in bytes
    architecture: str | None
    name: str | None
    size_label: str | None
    parameter_count: int | None  # counted from the tensor shapes; None for split files
    file_type: int | None
    quantization: str | None  # "Q4_K_M" etc., from file_type
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None  # a per-layer array is reduced to its maximum
    head_count_kv: int | None
    key_length: int | None
    value_length: int | None
    vocab_size: int | None  # length of tokenizer.ggml.tokens
    chat_template: str | None = field(repr=False)
    metadata: dict[str, Scalar] = field(repr=False)  # every scalar and string key
    array_lengths: dict[str, int] = field(repr=False)  # every array key -> its length
    tensor_data_end: int | None = None  # end of the last tensor; None if a type is unknown
    unknown_tensor_types: tuple[int, ...] = ()
    duplicate_keys: tuple[str, ...] = ()

    @property
    def head_dim(self) -> int | None:
        """Size of one attention head: key_length, else embedding_length / head_count."""
        if self.key_length:
            return self.key_length
        if self.embedding_length and self.head_count:
            return self.embedding_length // self.head_count
        return None


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough memory need of a model at a given context size (bytes)."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    """llama.cpp's work buffers: the logits of a batch and attention scores dominate."""
    total_bytes: int
    ram_bytes: int
    vram_bytes: int


def _corrupt(path: Path, detail: str) -> GGUFHeaderError:
    return GGUFHeaderError(f"{path} has a corrupt header: {detail}")


class _Truncated(Exception):
    """Internal: the file ended inside the header."""


class _Buffer:
    """Forward-only reads over a file in large chunks, with seeks for long skips."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self.size = size
        self._buf = b""
        self._pos = 0  # position in _buf
        self._base = 0  # file offset of _buf[0]

    @property
    def offset(self) -> int:
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        return self.size - self.offset

    def _fill(self, n: int) -> None:
        """Make n bytes available at _pos (n was already checked against the file size)."""
        rest = self._buf[self._pos :]
        self._base += self._pos
        self._file.seek(self._base + len(rest))
        more = self._file.read(max(_CHUNK, n - len(rest)))
        self._buf = rest + more
        self._pos = 0
        if len(self._buf) < n:  # the file shrank while we read it
            raise _Truncated

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise _Truncated
        if self._pos + n > len(self._buf):
            self._fill(n)
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def unpack(self, fmt: struct.Struct) -> int | float | bool:
        if self._pos + fmt.size > len(self._buf):
            if fmt.size > self.remaining:
                raise _Truncated
            self._fill(fmt.size)
        (value,) = fmt.unpack_from(self._buf, self._pos)
        self._pos += fmt.size
        return value

    def u32(self) -> int:
        return int(self.unpack(_U32))

    def u64(self) -> int:
        return int(self.unpack(_U64))

    def skip(self, n: int) -> None:
        if n > self.remaining:
            raise _Truncated
        if self._pos + n <= len(self._buf):
            self._pos += n
        else:  # past the buffer: drop it and continue from the new offset
            self._base = self.offset + n
            self._buf = b""
            self._pos = 0

    def skip_strings(self, count: int) -> None:
        """Skip `count` length-prefixed strings; the hot loop for a 262k-token vocabulary."""
        buf, pos, unpack_from = self._buf, self._pos, _U64.unpack_from
        for _ in range(count):
            if pos + 8 > len(buf):
                self._pos = pos
                if self.remaining < 8:
                    raise _Truncated
                self._fill(8)
                buf, pos = self._buf, self._pos
            (n,) = unpack_from(buf, pos)
            pos += 8 + n
            if pos > len(buf):  # the string runs past the buffer: skip the rest by seeking
                self._pos = pos - n
                self.skip(n)
                buf, pos = self._buf, self._pos
        self._pos = pos


def read_gguf_header(path: Path | str) -> GGUFHeader:
    """Read the metadata of a GGUF v2/v3 file; raises GGUFHeaderError with a readable reason."""
    path = Path(path)
    with _reading(path) as file:
        return _read(file, path, os.fstat(file.fileno()).st_size)


def check_gguf_start(path: Path | str) -> None:
    """Raise GGUFHeaderError unless `path` is a readable file that starts as a GGUF model
    does. Reads 8 bytes, so it may run where a whole header would take too long."""
    path = Path(path)
    with _reading(path) as file:
        _check_magic(path, file.read(8), os.fstat(file.fileno()).st_size)


@contextmanager
def _reading(path: Path) -> Iterator[BinaryIO]:
    """The file opened for reading; what goes wrong becomes a GGUFHeaderError that says so."""
    try:
        with path.open("rb") as file:
            yield file
    except FileNotFoundError:
        raise GGUFHeaderError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise GGUFHeaderError(f"{path} is a folder, not a GGUF model file.") from None
    except PermissionError:
        raise GGUFHeaderError(f"{path} cannot be read: permission denied.") from None
    except _Truncated:
        raise GGUFHeaderError(
            f"{path} is truncated: the file ends inside its header "
            "(an interrupted download or copy?)."
        ) from None
    except OSError as error:
        raise GGUFHeaderError(f"{path} cannot be read: {error.strerror or error}.") from None


def _read(file: BinaryIO, path: Path, size: int) -> GGUFHeader:
    head = file.read(8)
    _check_magic(path, head, size)
    version = _U32.unpack_from(head, 4)[0]
    if version not in _SUPPORTED_VERSIONS:
        raise GGUFHeaderError(_version_message(path, version))

    buf = _Buffer(file, size)
    buf.skip(8)
    tensor_count = buf.u64()
    kv_count = buf.u64()
    # Smallest possible records: a key/value is 8 (key length) + 4 (type) + 1 (u8) bytes,
    # a tensor info 8 (name length) + 4 (dims) + 4 (type) + 8 (offset) bytes.
    if kv_count * 13 + tensor_count * 24 > buf.remaining:
        raise _corrupt(
            path,
            f"it claims {kv_count:,} metadata keys and "
            f"{tensor_count:,} tensors, more than a {size:,}-byte file can hold "
            "(a truncated or damaged file)."
        )

    metadata: dict[str, Scalar] = {}
    array_lengths: dict[str, int] = {}
    array_maxima: dict[str, int] = {}  # small per-layer int arrays (e.g. head_count_kv)
    duplicates: list[str] = []
    for _ in range(kv_count):
        key = _read_string(buf, path, "a metadata key")
        if key in metadata or key in array_lengths:
            duplicates.append(key)
        value_type = buf.u32()
        if value_type == _ARRAY:
            item_type, count = _read_array_prefix(buf, path, key)
            array_lengths[key] = count
            # Per-layer head counts (hybrid models) are read: their maximum stands in.
            per_layer = key.endswith((".attention.head_count", ".attention.head_count_kv"))
            if per_layer and item_type in _INT_TYPES and 0 < count <= _MAX_READ_ARRAY:
                fmt = _SCALAR_FORMATS[item_type]
                array_maxima[key] = max(fmt.iter_unpack(buf.take(count * fmt.size)))[0]
            else:
                _skip_array_items(buf, path, key, item_type, count, depth=1)
        else:
            metadata[key] = _read_scalar(buf, path, key, value_type)

    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    # llama.cpp requires a power of two.
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise _corrupt(path, f"general.alignment is {alignment!r}.")

    parameters, data_size, unknown_types = _read_tensor_infos(buf, path, tensor_count)
    data_offset = -(-buf.offset // alignment) * alignment  # round up to the alignment

    arch = metadata.get("general.architecture")
    arch = arch if isinstance(arch, str) and arch else None

    def int_key(suffix: str) -> int | None:
        if arch is None:
            return None
        key = f"{arch}.{suffix}"
        value = metadata.get(key, array_maxima.get(key))
        # Negative sizes (signed types in a crafted file) count as missing.
        return value if type(value) is int and value >= 0 else None

    def str_key(key: str) -> str | None:
        value = metadata.get(key)
        return value if isinstance(value, str) else None

    file_type = metadata.get("general.file_type")
    file_type = file_type if type(file_type) is int else None
    split_count = metadata.get("split.count")
    is_split = isinstance(split_count, int) and split_count > 1

    return GGUFHeader(
        path=path,
        file_size=size,
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        data_offset=data_offset,
        architecture=arch,
        name=str_key("general.name"),
        size_label=str_key("general.size_label"),
        parameter_count=None if is_split or tensor_count == 0 else parameters,
        file_type=file_type,
        quantization=_quantization_name(file_type),
        context_length=int_key("context_length"),
        block_count=int_key("block_count"),
        embedding_length=int_key("embedding_length"),
        head_count=int_key("attention.head_count"),
        head_count_kv=int_key("attention.head_count_kv"),
        key_length=int_key("attention.key_length"),
        value_length=int_key("attention.value_length"),
        vocab_size=array_lengths.get("tokenizer.ggml.tokens"),
        chat_template=str_key("tokenizer.chat_template"),
        metadata=metadata,
        array_lengths=array_lengths,
        tensor_data_end=None if data_size is None else data_offset + data_size,
        unknown_tensor_types=tuple(sorted(unknown_types)),
        duplicate_keys=tuple(duplicates),
    )


def _check_magic(path: Path, head: bytes, size: int) -> None:
    if size == 0:
        raise GGUFHeaderError(f"{path} is empty, not a GGUF model file.")
    if head[:4] == _MAGIC and len(head) < 8:
        raise _Truncated
    if head[:4] == _MAGIC:
        return
    # Name the usual impostors: a failed download saved as HTML, a Git LFS pointer.
    start = head.lstrip().lower()
    if start.startswith((b"<!doct", b"<html", b"<?xml")):
        hint = " It looks like a web page (a failed download?)."
    elif start.startswith(b"version"):
        hint = " It looks like a Git LFS pointer: fetch the real file with `git lfs pull`."
    elif start.startswith(b"{"):
        hint = " It looks like a JSON file."
    else:
        hint = ""
    raise GGUFHeaderError(f"{path} is not a GGUF model file (it does not start with 'GGUF').{hint}")


def _version_message(path: Path, version: int) -> str:
    if version == 1:
        return f"{path} uses GGUF version 1, which llama.cpp no longer reads: convert the model again."
    if version & 0xFFFF == 0 and (version >> 24) in _SUPPORTED_VERSIONS:  # byte-swapped 2 or 3
        return f"{path} is a big-endian GGUF file; only little-endian files are supported."
    return f"{path} uses GGUF version {version}; only versions 2 and 3 are supported."


def _quantization_name(file_type: int | None) -> str | None:
    if file_type is None:
        return None
    return QUANTIZATION_NAMES.get(file_type, f"unknown type {file_type}")


def _read_string(buf: _Buffer, path: Path, what: str) -> str:
    length = buf.u64()
    if length > buf.remaining:
        raise _corrupt(
            path,
            f"{what} claims {length:,} bytes but only "
            f"{buf.remaining:,} are left in the file (a truncated or damaged file)."
        )
    if length > _MAX_STRING:
        raise _corrupt(path, f"{what} is implausibly long ({length:,} bytes).")
    return buf.take(length).decode("utf-8", errors="replace")


def _read_scalar(buf: _Buffer, path: Path, key: str, value_type: int) -> Scalar:
    if value_type == _STRING:
        return _read_string(buf, path, f"the value of {key}")
    fmt = _SCALAR_FORMATS.get(value_type)
    if fmt is None:
        raise _corrupt(path, f"{key} has unknown value type {value_type}.")
    return buf.unpack(fmt)


def _read_array_prefix(buf: _Buffer, path: Path, key: str) -> tuple[int, int]:
    item_type = buf.u32()
    count = buf.u64()
    # Each item takes at least its fixed size (strings: their 8-byte length; nested
    # arrays: 4-byte type + 8-byte count), so a larger count cannot be real.
    if item_type == _STRING:
        item_size = 8
    elif item_type == _ARRAY:
        item_size = 12
    elif item_type in _SCALAR_FORMATS:
        item_size = _SCALAR_FORMATS[item_type].size
    else:
        raise _corrupt(path, f"array {key} has unknown item type {item_type}.")
    if count * item_size > buf.remaining:
        raise _corrupt(
            path,
            f"array {key} claims {count:,} items, more than "
            f"the {buf.remaining:,} bytes left in the file can hold (a truncated or damaged file)."
        )
    return item_type, count


def _skip_array_items(
    buf: _Buffer, path: Path, key: str, item_type: int, count: int, depth: int
) -> None:
    if item_type == _STRING:
        buf.skip_strings(count)
    elif item_type == _ARRAY:  # arrays of arrays: rare, but legal
        if depth >= _MAX_ARRAY_DEPTH:
            raise _corrupt(path, f"array {key} is nested too deeply.")
        for _ in range(count):
            inner_type, inner_count = _read_array_prefix(buf, path, key)
            _skip_array_items(buf, path, key, inner_type, inner_count, depth + 1)
    else:
        buf.skip(count * _SCALAR_FORMATS[item_type].size)


def _read_tensor_infos(buf: _Buffer, path: Path, tensor_count: int) -> tuple[int, int | None, set[int]]:
    """Parameter count, size of the tensor data (None if a type is unknown), unknown types."""
    parameters = 0
    data_size: int | None = 0
    unknown: set[int] = set()
    for index in range(tensor_count):
        name_length = buf.u64()
        if name_length > 4096:  # GGML_MAX_NAME is 64; anything near this is corruption
            raise _corrupt(path, f"tensor {index} has a {name_length:,}-byte name.")
        buf.skip(name_length)
        n_dims = buf.u32()
        if n_dims > _MAX_TENSOR_DIMS:
            raise _corrupt(path, f"tensor {index} claims {n_dims} dimensions.")
        elements = math.prod(buf.u64() for _ in range(n_dims))
        tensor_type = buf.u32()
        offset = buf.u64()
        parameters += elements
        block = _GGML_TYPE_SIZES.get(tensor_type)
        if block is None:
            unknown.add(tensor_type)
            data_size = None
        elif data_size is not None:
            block_elements, block_bytes = block
            data_size = max(data_size, offset + -(-elements // block_elements) * block_bytes)
    return parameters, data_size, unknown


def header_problems(header: GGUFHeader) -> list[str]:
    """Reasons llama.cpp would likely refuse or crash on this file; empty if it looks fine."""
    problems: list[str] = []
    arch = header.architecture
    if arch is None:
        problems.append(
            "The file does not name its model architecture (general.architecture is missing)."
        )
    else:
        if not header.block_count:
            problems.append(f"The model has no layers ({arch}.block_count is missing or 0).")
        if not header.embedding_length:
            problems.append(
                f"The model has no embedding size ({arch}.embedding_length is missing or 0)."
            )
        # Attention-free models (Mamba, RWKV) have no head count at all; 0 is the bug.
        if header.head_count == 0:
            problems.append(f"The model has 0 attention heads ({arch}.attention.head_count).")
        if header.context_length == 0:
            problems.append(f"The model's training context is 0 ({arch}.context_length).")
    tokenizer = header.metadata.get("tokenizer.ggml.model")
    if not header.vocab_size and tokenizer not in ("none", "no_vocab"):
        problems.append("The file has no vocabulary (tokenizer.ggml.tokens is missing or empty).")
    split_count = header.metadata.get("split.count")
    if header.tensor_count == 0 and not (isinstance(split_count, int) and split_count > 1):
        problems.append("The file contains no tensors (no weights).")
    if header.unknown_tensor_types:
        types = ", ".join(map(str, header.unknown_tensor_types))
        problems.append(
            f"Some tensors use data types llama.cpp does not know ({types}); "
            "the file may be too old or too new for it."
        )
    if header.tensor_data_end is not None and header.tensor_data_end > header.file_size:
        missing = header.tensor_data_end - header.file_size
        problems.append(
            f"The file is truncated: {missing:,} bytes of weights are missing "
            "(an interrupted download?)."
        )
    if header.duplicate_keys:
        problems.append(f"The metadata repeats keys: {', '.join(header.duplicate_keys)}.")
    return problems


N_UBATCH = 512  # llama.cpp's default micro-batch, which llama-tui keeps


def estimate_memory(header: GGUFHeader, n_ctx: int, n_gpu_layers: int = 0) -> MemoryEstimate:
    """Weights, an f16 KV cache for `n_ctx` tokens (0 = the training context) and compute buffers.

    A rough guide, not llama.cpp's exact figure: models with sliding-window layers (Gemma 3)
    may use less KV cache. Offloaded layers put their share of weights and KV cache in
    VRAM; n_gpu_layers < 0 means all of them.
    """
    if n_ctx <= 0:
        n_ctx = header.context_length or 0
    k_dim = header.head_dim or 0
    return estimate_memory_for(
        max(0, header.file_size - header.data_offset),
        n_ctx,
        blocks=header.block_count or 0,
        head_count=header.head_count or 0,
        head_count_kv=header.head_count_kv if header.head_count_kv is not None else header.head_count or 0,
        key_length=k_dim,
        value_length=header.value_length or k_dim,
        vocab_size=header.vocab_size or 0,
        n_gpu_layers=n_gpu_layers,
    )


def estimate_memory_for(
    weights: int,
    n_ctx: int,
    *,
    blocks: int,
    head_count: int,
    head_count_kv: int,
    key_length: int,
    value_length: int,
    vocab_size: int,
    n_gpu_layers: int = 0,
) -> MemoryEstimate:
    """The rule behind every memory figure the app shows, for a model of this shape: the
    weights as they are, plus an f16 KV cache of `n_ctx` tokens (K and V for each layer and
    KV head), plus llama.cpp's compute buffer for one micro-batch. Also used for models not
    downloaded yet (engine.recommended), whose shape is known from their published config."""
    # K and V per layer per token, 2 bytes per f16 value.
    kv_cache = n_ctx * blocks * head_count_kv * (key_length + value_length) * 2

    if blocks == 0 or n_gpu_layers == 0:
        gpu_share = 0.0
    elif n_gpu_layers < 0 or n_gpu_layers >= blocks:
        gpu_share = 1.0
    else:
        gpu_share = n_gpu_layers / blocks
    # For a batch of N_UBATCH tokens: f32 logits over the vocabulary, and f32 attention
    # scores over the context per head (measured: within ~5% of llama.cpp's compute buffer
    # for Gemma 3 270M, whose 262k vocabulary makes it 512 MiB).
    compute = N_UBATCH * 4 * (vocab_size + n_ctx * head_count)
    total = weights + kv_cache
    vram = round(total * gpu_share)
    total += compute  # the compute buffer is kept in RAM for a CPU model; a rough bound when offloading
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv_cache,
        compute_bytes=compute,
        total_bytes=total,
        ram_bytes=total - vram,
        vram_bytes=vram,
    )


def available_ram_bytes() -> int | None:
    """Memory available to new processes: MemAvailable (counts reclaimable cache), else free pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
