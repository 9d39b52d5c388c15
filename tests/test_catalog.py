"""list_models: the picker's list from the starter, the HF cache, the models folder and recent files."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from llama_tui.engine.catalog import ModelEntry, list_models, models_folder
from llama_tui.engine.file_check import UnsafeModelFile, check_model_file
from llama_tui.engine.starter import starter_model_path
from tests.file_reads import READ_AHEAD, count_reads
from tests.tiny_gguf import write_not_a_gguf, write_tiny_llama_gguf

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _add_to_hf_cache(cache: Path, repo_id: str, filename: str, source: Path) -> Path:
    """Put `source` into the cache the way huggingface_hub does: a blob named by its hash,
    a ref, and a relative snapshot symlink. The blob is itself a symlink to `source`, so
    large files cost nothing to "download"."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    blob = repo / "blobs" / f"sha256-{abs(hash((repo_id, filename))):x}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.symlink_to(source.resolve())
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    link = repo / "snapshots" / COMMIT / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starter_model: Path) -> Path:
    """A fresh app home and HF cache. The starter model is linked in, not assembled again."""
    home = tmp_path / "home"
    monkeypatch.setenv("LLAMA_TUI_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    linked = home / "cache" / "models" / starter_model.name
    linked.parent.mkdir(parents=True)
    linked.symlink_to(starter_model)
    assert starter_model_path() == linked  # starter.py accepts it: right size, no assembly
    return home


def _by_name(entries: list[ModelEntry]) -> dict[str, ModelEntry]:
    return {entry.path.name: entry for entry in entries}


def test_every_source_once_with_header_fields(
    home: Path, tmp_path: Path, starter_model: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llama_tui.engine.file_check")  # logs each trial load
    hub = tmp_path / "hf" / "hub"
    tiny_hf = _add_to_hf_cache(hub, "someone/tiny-GGUF", "tiny-Q8_0.gguf", tiny_model)
    _add_to_hf_cache(hub, "unsloth/gemma-3-270m-it-GGUF", "gemma-copy.gguf", starter_model)  # same file as the starter
    folder = models_folder()
    (folder / "mine").mkdir()
    (tmp_path / "elsewhere").mkdir()
    nested = write_tiny_llama_gguf(folder / "mine" / "nested.gguf", name="my nested model", seed=3)
    write_not_a_gguf(folder / "broken.gguf")
    write_tiny_llama_gguf(folder / "no-layers.gguf", block_count=0)
    (folder / "notes.txt").write_text("not a model")
    recent_file = write_tiny_llama_gguf(tmp_path / "elsewhere" / "recent.gguf", seed=4)

    with count_reads() as reads:
        entries = list_models(recent=[recent_file, nested, tmp_path / "deleted.gguf"])

    # Recent first (in the given order), then starter, models folder (sorted), HF cache.
    assert [(e.path.name, e.source) for e in entries] == [
        ("recent.gguf", "recent"),
        ("nested.gguf", "recent"),  # also in the models folder: listed once, as recent
        ("gemma-3-270m-q4_k_m.gguf", "starter"),  # the HF copy resolves to it: left out
        ("broken.gguf", "models-folder"),
        ("no-layers.gguf", "models-folder"),
        ("tiny-Q8_0.gguf", "hf-cache"),
    ]
    named = _by_name(entries)

    starter = named["gemma-3-270m-q4_k_m.gguf"]
    assert starter.problem is None and starter.repo_id is None
    assert (starter.name, starter.architecture, starter.size_label) == ("Gemma 3 270m", "gemma3", "270M")
    assert (starter.quantization, starter.trained_context, starter.file_size) == ("Q4_K_M", "32k", "253 MB")

    tiny = named["tiny-Q8_0.gguf"]
    assert tiny.path == tiny_hf and tiny.repo_id == "someone/tiny-GGUF"
    assert (tiny.name, tiny.architecture, tiny.quantization, tiny.trained_context) == (
        "tiny-test-llama", "llama", "F32", "2k"  # the header's file type beats the file name
    )
    assert tiny.size_label.endswith("K") and tiny.file_size == "604 kB"  # no size label: counted
    assert tiny.header is not None and tiny.header.block_count == 2
    assert named["nested.gguf"].name == "my nested model"

    broken = named["broken.gguf"]
    assert broken.header is None and broken.problem and "not a GGUF" in broken.problem
    assert (broken.name, broken.architecture, broken.quantization, broken.trained_context) == ("broken", "?", "?", "?")
    assert broken.file_size.endswith(" B")

    no_layers = named["no-layers.gguf"]
    assert no_layers.header is not None and no_layers.problem and "no layers" in no_layers.problem

    # Headers only, each file once (a file reachable from several sources is read once),
    # never the weights, and nothing loaded: what keeps the list quick on any machine (how
    # quick is a figure of bench/latency.py).
    assert reads.opens == {entry.path.resolve(): 1 for entry in entries}
    for entry in entries:
        if entry.header is not None:
            assert reads.bytes[entry.path.resolve()] <= entry.header.data_offset + READ_AHEAD
    assert reads.bytes[starter_model.resolve()] < starter_model.stat().st_size / 10
    assert not any("trial-loading" in record.getMessage() for record in caplog.records)


def test_split_models_show_once_with_their_total_size(home: Path, tiny_model: Path) -> None:
    folder = models_folder()
    for part in (1, 2, 3):
        shutil.copy(tiny_model, folder / f"big-Q4_K_M-0000{part}-of-00003.gguf")
    shutil.copy(tiny_model, folder / "gappy-00001-of-00002.gguf")  # part 2 never downloaded

    named = _by_name([e for e in list_models() if e.source == "models-folder"])
    assert sorted(named) == ["big-Q4_K_M-00001-of-00003.gguf", "gappy-00001-of-00002.gguf"]
    big = named["big-Q4_K_M-00001-of-00003.gguf"]
    assert big.size_bytes == 3 * tiny_model.stat().st_size and big.problem is None
    assert named["gappy-00001-of-00002.gguf"].problem == "Part 2 of this split model is missing."


def test_without_models_only_the_starter(home: Path) -> None:
    entries = list_models()
    assert [e.source for e in entries] == ["starter"]
    assert models_folder().is_dir()  # created on demand, ready for the user's files


def test_a_file_that_crashed_a_trial_load_shows_why(home: Path) -> None:
    path = write_tiny_llama_gguf(models_folder() / "dup-token.gguf", duplicate_token=True)
    (entry,) = [e for e in list_models() if e.source == "models-folder"]
    assert entry.problem is None  # the header looks fine; nothing is loaded while listing

    with pytest.raises(UnsafeModelFile):
        check_model_file(path)
    (entry,) = [e for e in list_models() if e.source == "models-folder"]
    assert entry.problem and "SIGABRT" in entry.problem and "GGML_ASSERT" in entry.problem


def test_listing_the_starter_does_not_unpack_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new user opening the picker gets the starter listed, without 253 MB copied into their cache."""
    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    entries = [entry for entry in list_models() if entry.source == "starter"]
    assert len(entries) == 1
    starter = entries[0]
    assert (starter.architecture, starter.quantization, starter.size_label) == ("gemma3", "Q4_K_M", "270M")
    assert starter.file_size == "253 MB" and starter.problem is None
    assert not starter.path.exists()
    assert not any(tmp_path.rglob("*.gguf"))
