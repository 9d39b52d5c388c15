"""check_model_file refuses files that abort llama.cpp, in a child process, and remembers it."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from llama_tui import paths
from llama_tui.engine.file_check import UnsafeModelFile, check_model_file, known_crash, trial_load
from tests.file_reads import count_reads
from tests.tiny_gguf import write_tiny_llama_gguf

TRIAL = "trial-loading"  # logged once per child process started


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh app home: an empty verdict cache."""
    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def trials(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="llama_tui.engine.file_check")
    return caplog


def _trial_count(caplog: pytest.LogCaptureFixture) -> int:
    return sum(TRIAL in record.getMessage() for record in caplog.records)


def _cache() -> dict[str, dict[str, object]]:
    return json.loads((paths.cache_dir() / "file-checks.json").read_text())["files"]


def test_tiny_model_passes_once_then_from_the_cache(
    home: Path, tiny_model: Path, trials: pytest.LogCaptureFixture
) -> None:
    check_model_file(tiny_model)
    assert _trial_count(trials) == 1
    assert _cache()[str(tiny_model.resolve())]["unsafe"] is None

    check_model_file(tiny_model)
    assert _trial_count(trials) == 1  # no second child process


def test_duplicate_token_aborts_in_the_child_and_is_refused(
    home: Path, tmp_path: Path, trials: pytest.LogCaptureFixture
) -> None:
    path = write_tiny_llama_gguf(tmp_path / "dup-token.gguf", duplicate_token=True)
    assert known_crash(path) is None  # not checked yet
    with pytest.raises(UnsafeModelFile) as refused:
        check_model_file(path)
    message = str(refused.value)
    assert message.startswith("this file cannot be loaded: llama.cpp aborted while loading it (signal SIGABRT)")
    assert "GGML_ASSERT(id_to_token.size() == token_to_id.size())" in message
    assert "/" not in message.split("SIGABRT")[1]  # the build's source path is cut off

    with pytest.raises(UnsafeModelFile, match="SIGABRT"):  # refused at once, from the cache
        check_model_file(path)
    assert _trial_count(trials) == 1
    assert known_crash(path) == message.removeprefix("this file cannot be loaded: ")


def test_no_layers_is_refused_by_the_header_and_aborts_a_trial_load(
    home: Path, tmp_path: Path, trials: pytest.LogCaptureFixture
) -> None:
    path = write_tiny_llama_gguf(tmp_path / "no-layers.gguf", block_count=0)
    with pytest.raises(UnsafeModelFile, match=r"no layers \(llama\.block_count"):
        check_model_file(path)
    assert _trial_count(trials) == 0  # the header was enough

    # Had the header check missed it, the trial load would have caught it.
    crash = trial_load(path)
    assert crash is not None and "SIGABRT" in crash and "GGML_ASSERT(hparams.n_layer_all > 0" in crash


def test_a_changed_file_is_checked_again(
    home: Path, tmp_path: Path, tiny_model: Path, trials: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model.gguf"
    shutil.copy(tiny_model, path)
    check_model_file(path)

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    check_model_file(path)
    assert _trial_count(trials) == 2

    write_tiny_llama_gguf(path, duplicate_token=True)  # replaced by a crashing file
    with pytest.raises(UnsafeModelFile, match="SIGABRT"):
        check_model_file(path)
    assert _trial_count(trials) == 3


def test_unreadable_files_are_refused_without_a_child(
    home: Path, broken_model_files: dict[str, Path], trials: pytest.LogCaptureFixture
) -> None:
    for kind, reason in [("missing", "does not exist"), ("not_gguf", "not a GGUF"), ("truncated", "truncated")]:
        with pytest.raises(UnsafeModelFile, match=reason):
            check_model_file(broken_model_files[kind])
    assert _trial_count(trials) == 0


def test_a_clean_refusal_is_left_to_the_real_load(home: Path, tmp_path: Path, trials: pytest.LogCaptureFixture) -> None:
    """llama.cpp rejects an unknown architecture with an error, not an abort: not unsafe,
    and not cached (such failures can be transient, e.g. out of memory)."""
    path = tmp_path / "unknown-arch.gguf"
    writer = gguf.GGUFWriter(path, "not-an-architecture")
    for key in ("block_count", "embedding_length", "context_length"):
        writer.add_uint32(f"not-an-architecture.{key}", 8)
    writer.add_token_list(["a", "b"])
    writer.add_tensor("token_embd.weight", np.zeros((2, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    check_model_file(path)
    check_model_file(path)
    assert _trial_count(trials) == 2
    cache_file = paths.cache_dir() / "file-checks.json"
    assert not cache_file.exists() or str(path.resolve()) not in _cache()


def test_starter_model_first_check_and_cache_hit(
    home: Path, starter_model: Path, trials: pytest.LogCaptureFixture
) -> None:
    """The first check of the real model loads it in a child; afterwards the verdict comes
    from the cache, without a child and without reading the model file at all (what makes
    it cheap; the timings are figures of bench/latency.py)."""
    check_model_file(starter_model)
    assert _trial_count(trials) == 1
    assert _cache()[str(starter_model.resolve())]["unsafe"] is None

    with count_reads() as reads:
        check_model_file(starter_model)
    assert _trial_count(trials) == 1  # no second child process
    assert starter_model.resolve() not in reads.opens  # not even its header


def test_a_metadata_override_that_aborts_llama_cpp_is_refused(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An override is part of what is loaded: block_count=0 given with -o aborts llama.cpp."""
    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "home"))
    check_model_file(tiny_model)  # the file itself is fine
    with pytest.raises(UnsafeModelFile, match="aborted"):
        check_model_file(tiny_model, overrides={"llama.block_count": 0})
    check_model_file(tiny_model, overrides={"llama.context_length": 1024})  # a harmless one passes
