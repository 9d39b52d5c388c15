"""What code reads from files: opens and bytes per file, instead of how long it took.

Why: "reads only the header" is what makes the picker quick on a 253 MB model, and a
byte count says it on any machine, loaded or not (the timings are in bench/latency.py).

    with count_reads() as reads:
        read_gguf_header(path)
    assert reads.bytes[path.resolve()] < header_size + READ_AHEAD

Counts every binary read through `Path.open` (which read_gguf_header and friends use),
keyed by the resolved path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

from llama_tui.engine import gguf_header

READ_AHEAD = gguf_header._CHUNK
"""The header reader reads in chunks of this size, so it may read this far past the header."""


@dataclass
class Reads:
    opens: Counter[Path] = field(default_factory=Counter)
    bytes: Counter[Path] = field(default_factory=Counter)


class _CountingFile:
    def __init__(self, file: BinaryIO, path: Path, reads: Reads) -> None:
        self._file, self._path, self._reads = file, path, reads

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self._reads.bytes[self._path] += len(data)
        return data

    def __getattr__(self, name: str) -> object:  # seek, fileno, close, ...
        return getattr(self._file, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@contextmanager
def count_reads() -> Iterator[Reads]:
    reads = Reads()
    real_open = Path.open

    def counting_open(path: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        file = real_open(path, mode, *args, **kwargs)  # type: ignore[arg-type]
        if "b" not in mode or "r" not in mode:
            return file
        resolved = path.resolve()
        reads.opens[resolved] += 1
        return _CountingFile(file, resolved, reads)

    Path.open = counting_open  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        Path.open = real_open  # type: ignore[method-assign]
