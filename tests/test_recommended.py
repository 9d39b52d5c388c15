"""The Hugging Face tab's Recommended list: the table (engine.recommended), its memory rule,
and the picker showing it and downloading a row from the hub look-alike on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from huggingface_hub.utils import validate_repo_id
from textual.message import Message
from textual.widgets import DataTable, Input, TabbedContent

from llama_tui.engine import recommended
from llama_tui.engine.gguf_header import estimate_memory, read_gguf_header
from llama_tui.engine.hub import guess_quant
from llama_tui.engine.recommended import RECOMMENDED, Recommended, fit, gib, memory_needed
from llama_tui.engine.settings import LoadSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.hub_panel import DownloadProgressed
from llama_tui.ui.picker_screen import ModelPickerScreen
from tests.hub_server import FakeHub
from tests.test_app import SIZE, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf

GiB = 2**30
LLAMA_1B = next(model for model in RECOMMENDED if model.name == "Llama 3.2 1B Instruct")


# -- the table ---------------------------------------------------------------------------


def test_every_entry_names_a_q4_k_m_file_of_a_well_formed_repository_once() -> None:
    assert 5 <= len(RECOMMENDED) <= 10  # a few to try, not a catalogue
    for model in RECOMMENDED:
        validate_repo_id(model.repo_id)
        assert model.repo_id.split("/")[0] in {"bartowski", "unsloth", "ggml-org", "Qwen", "HuggingFaceTB"}, model
        assert model.filename.endswith(".gguf") and guess_quant(model.filename) == "Q4_K_M", model
        assert 300 * 10**6 < model.size_bytes < 3 * 10**9, model  # small enough for a laptop
        assert re.fullmatch(r"\d+(\.\d)?B", model.parameters), model
    assert len({(m.repo_id, m.filename) for m in RECOMMENDED}) == len(RECOMMENDED)
    assert len({m.name for m in RECOMMENDED}) == len(RECOMMENDED)
    # The reasoning models are marked as such, and only they.
    assert {m.name for m in RECOMMENDED if m.thinks} == {"Qwen3 1.7B", "Qwen3 4B"}


def test_memory_is_the_file_plus_the_kv_cache_at_the_context_plus_work_buffers() -> None:
    at_4k = memory_needed(LLAMA_1B, 4096)
    # Llama 3.2 1B: 16 layers x 8 KV heads x (64 + 64) f16 values per token.
    assert at_4k.kv_cache_bytes == 4096 * 16 * 8 * 128 * 2 == 128 * 2**20
    assert at_4k.weights_bytes == LLAMA_1B.size_bytes
    assert at_4k.total_bytes == LLAMA_1B.size_bytes + at_4k.kv_cache_bytes + at_4k.compute_bytes
    at_8k = memory_needed(LLAMA_1B, 8192)
    assert at_8k.kv_cache_bytes == 2 * at_4k.kv_cache_bytes and at_8k.total_bytes > at_4k.total_bytes
    assert memory_needed(LLAMA_1B, 4096, n_gpu_layers=-1).ram_bytes == at_4k.compute_bytes  # all else on the GPU


def test_the_rule_is_the_one_the_local_list_uses(tmp_path: Path) -> None:
    """A model described by its shape gets the figure its file's header would get."""
    header = read_gguf_header(write_tiny_llama_gguf(tmp_path / "shape.gguf", block_count=3))
    as_recommended = Recommended(
        "tiny", "acme/tiny", "shape.gguf", "1K", header.file_size - header.data_offset, thinks=False,
        licence="MIT", about="", blocks=header.block_count, head_count=header.head_count,
        head_count_kv=header.head_count_kv, head_dim=header.head_dim, vocab_size=header.vocab_size,
    )
    for n_ctx in (512, 4096):
        assert memory_needed(as_recommended, n_ctx) == estimate_memory(header, n_ctx)


def test_a_model_that_may_not_fit_says_what_it_needs_and_what_is_free() -> None:
    needed = memory_needed(LLAMA_1B, 4096).ram_bytes
    assert fit(LLAMA_1B, 4096, free=needed).warning == ""
    short = fit(LLAMA_1B, 4096, free=GiB)
    assert not short.fits
    assert short.warning == f"may not fit: {gib(needed)} needed, 1.0 GiB free"
    assert re.fullmatch(r"may not fit: 1\.\d GiB needed, 1\.0 GiB free", short.warning)


# -- in the picker -----------------------------------------------------------------------


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Hugging Face cache, online."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


def rows(app: LlamaApp, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def open_hub_tab(pilot, app: LlamaApp) -> ModelPickerScreen:
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen) and app.screen.entries)
    picker = app.screen
    picker.query_one("#picker-tabs", TabbedContent).active = "picker-hub"
    picker.query_one("#hub-query", Input).focus()
    await pilot.pause()
    return picker  # type: ignore[return-value]


def status_text(app: LlamaApp) -> str:
    return str(app.screen.query_one("#hub-status").render())


async def test_the_hub_tab_recommends_models_and_enter_downloads_and_opens_one(
    tiny_model: Path, hub: FakeHub, hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty search box: the Recommended rows with download size and memory (a model that
    needs more than is free is marked); ↓ and Enter on one downloads it from the Hub (here
    the look-alike, serving a tiny model under that entry's repository and file name) and
    opens it, like a search result, without a search."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    data = write_tiny_llama_gguf(tmp_path / "served.gguf", name="recommended-from-the-hub").read_bytes()
    hub.add_repo(LLAMA_1B.repo_id, {LLAMA_1B.filename: data, "README.md": b"a model card"})
    free = memory_needed(LLAMA_1B, 4096).ram_bytes + 1  # Llama 3.2 1B just fits; the bigger ones do not
    monkeypatch.setattr(recommended, "available_ram_bytes", lambda: free)
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model, load=LoadSettings(n_ctx=4096, n_threads=1, n_threads_batch=1)))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_hub_tab(pilot, app)
        assert picker.query_one("#hub-recommended").display and not picker.query_one("#hub-repos").display
        shown = rows(app, "hub-recommended")
        assert [row[0] for row in shown] == [model.name for model in RECOMMENDED]
        by_name = {row[0]: row for row in shown}
        assert by_name["Llama 3.2 1B Instruct"][1:] == ["1.2B", "", "808 MB", gib(free - 1), ""]
        assert by_name["Qwen3 4B"][2] == "thinks"
        big = memory_needed(next(m for m in RECOMMENDED if m.name == "Qwen3 4B"), 4096).ram_bytes
        assert by_name["Qwen3 4B"][5] == f"⚠ may not fit: {gib(big)} needed, {gib(free)} free"
        # The highlighted row is described below the table: where it comes from and its memory.
        assert "bartowski/Llama-3.2-1B-Instruct-GGUF · Llama-3.2-1B-Instruct-Q4_K_M.gguf" in status_text(app)
        assert "KV cache of 134 MB at 4096 tokens" in status_text(app)

        await pilot.press("down")  # from the search box to the list
        assert app.focused is picker.query_one("#hub-recommended")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "recommended-from-the-hub",
                       timeout=60)
        assert not isinstance(app.screen, ModelPickerScreen)
        progress = [m.progress for m in seen if isinstance(m, DownloadProgressed)]
        assert progress and progress[-1].downloaded == progress[-1].total == len(data)
        assert re.search(r"hub/models--bartowski--Llama-3\.2-1B-Instruct-GGUF/snapshots/\w+/"
                         r"Llama-3\.2-1B-Instruct-Q4_K_M\.gguf$", str(app.model.ref.path))
        assert hub.seen("GET", "/api/models") == []  # no search: straight to the file
        assert len(hub.seen("GET", "/resolve/")) == 1


async def test_typing_a_search_replaces_the_recommended_list_and_clearing_it_brings_it_back(
    tiny_model: Path, hub: FakeHub, hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_repo("acme/Found-GGUF", {"found-Q8_0.gguf": b"GGUF"})
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_hub_tab(pilot, app)
        await pilot.press(*"found", "enter")
        await wait_for(pilot, lambda: rows(app, "hub-repos"))
        assert rows(app, "hub-repos")[0][0] == "acme/Found-GGUF"
        assert picker.query_one("#hub-repos").display and not picker.query_one("#hub-recommended").display
        search = picker.query_one("#hub-query", Input)
        search.focus()
        await pilot.press(*["backspace"] * 5)
        assert picker.query_one("#hub-recommended").display and not picker.query_one("#hub-repos").display
        assert len(rows(app, "hub-recommended")) == len(RECOMMENDED)
        await pilot.press("enter")  # Enter in the empty box reaches the list, and searches nothing
        assert app.focused is picker.query_one("#hub-recommended")
        assert len(hub.seen("GET", "/api/models")) == 1


async def test_the_recommended_list_is_shown_literally(
    tiny_model: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names and notes are shown as written: brackets are not markup."""
    odd = dataclasses.replace(LLAMA_1B, name="Odd [bold]model[/bold] [Q4]", parameters="[1B]")
    monkeypatch.setattr(recommended, "RECOMMENDED", (odd,))
    monkeypatch.setattr(recommended, "available_ram_bytes", lambda: GiB)
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await open_hub_tab(pilot, app)
        [row] = rows(app, "hub-recommended")
        assert row[0] == "Odd [bold]model[/bold] [Q4]" and row[1] == "[1B]"
        assert row[5].startswith("⚠ may not fit: ") and row[5].endswith(" needed, 1.0 GiB free")
        assert "⚠ may not fit" in status_text(app)
        assert app.screen.query_one("#hub-status").has_class("error")
