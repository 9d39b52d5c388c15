"""The model picker and model swapping, through Pilot, with real files, models and HTTP."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.widgets import DataTable, Input, ProgressBar, TabbedContent

from llama_tui import cli
from llama_tui.engine.config import AppConfig
from llama_tui.engine.model import LoadedModel
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_pane import AssistantMessage, ChatPane, UserMessage
from llama_tui.ui.hub_panel import DownloadProgressed, HubFailed
from llama_tui.ui.picker_screen import ModelPickerScreen
from tests.hub_server import FakeHub
from tests.test_app import SIZE, endless_options, label_text, reply_ended, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starter_model: Path) -> Path:
    """A fresh LLAMA_TUI_HOME and HF cache, with the starter model linked in (not re-assembled)."""
    home = tmp_path / "home"
    (home / "cache" / "models").mkdir(parents=True)
    os.symlink(starter_model, home / "cache" / "models" / starter_model.name)
    monkeypatch.setenv("LLAMA_TUI_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    return home


def table_rows(app: LlamaApp, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def search_and_download(pilot, app: LlamaApp, query: str) -> tuple[list[list[str]], list[list[str]]]:
    """In the picker's Hugging Face tab: search, Enter on the first repo, Enter on its first
    file. Returns the repository and file rows seen on the way (the picker closes once a
    download is done)."""
    picker = await open_picker(pilot, app)
    picker.query_one("#picker-tabs", TabbedContent).active = "picker-hub"
    search = picker.query_one("#hub-query", Input)
    search.value = query
    search.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: table_rows(app, "hub-repos"))
    await pilot.press("enter")  # list its files
    await wait_for(pilot, lambda: table_rows(app, "hub-files"))
    shown = table_rows(app, "hub-repos"), table_rows(app, "hub-files")
    await pilot.press("enter")  # download the first
    return shown


async def open_picker(pilot, app: LlamaApp) -> ModelPickerScreen:
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen) and app.screen.entries)
    return app.screen  # type: ignore[return-value]


async def test_picker_lists_models_with_header_fields_and_filters_by_keyboard(home: Path, tiny_model: Path) -> None:
    folder = home / "data" / "models"
    folder.mkdir(parents=True)
    write_tiny_llama_gguf(folder / "dropped-in.gguf", name="dropped-in-llama")
    app = LlamaApp(tiny_options(tiny_model, saved_config=AppConfig(recent_models=(ModelRef.file(tiny_model),))))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await open_picker(pilot, app)
        rows = {row[0].lstrip("● "): row for row in table_rows(app, "model-table")}
        assert rows["tiny-test-llama"][1:] == ["llama", "148K", "F32", "2k", "604 kB", "recent"]
        assert rows["dropped-in-llama"][-1] == "models folder"
        assert rows["Gemma 3 270m"][1:5] == ["gemma3", "270M", "Q4_K_M", "32k"]
        assert rows["Gemma 3 270m"][-1] == "starter"
        assert "●" in table_rows(app, "model-table")[0][0]  # the loaded model is marked

        await pilot.press(*"gemma")  # the filter has focus
        assert [row[0] for row in table_rows(app, "model-table")] == ["Gemma 3 270m"]
        details = str(app.screen.query_one("#model-details").render())
        assert "Needs about" in details and "KV cache" in details and "free" in details

        await pilot.press("enter")  # opens the one match
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "Gemma 3 270m", timeout=60)
        assert not isinstance(app.screen, ModelPickerScreen)
        assert app.recent_models[0] == ModelRef.starter()  # the starter, however it is unpacked


async def test_swapping_during_generation_stops_it_and_the_new_model_answers(
    home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    other = write_tiny_llama_gguf(tmp_path / "other.gguf", name="other-llama", seed=3)
    app = LlamaApp(endless_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "write forever")
        await wait_for(pilot, lambda: app.query(AssistantMessage) and app.query_one(AssistantMessage).text)
        assert app.generating
        picker = await open_picker(pilot, app)
        path_input = picker.query_one("#model-path", Input)
        path_input.value = str(other)
        path_input.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "other-llama", timeout=30)
        await wait_for(pilot, lambda: reply_ended(app))
        assert "stopped" in app.query(AssistantMessage).first().footer_text
        # The conversation stayed on screen, and the new model answers the next turn.
        app.settings = app.settings.with_values({"max_reply_tokens": 10})
        await send_chat(pilot, "and now?")
        await wait_for(pilot, lambda: len(app.query(AssistantMessage)) == 2 and reply_ended(app))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["write forever", "and now?"]
        assert app.query(AssistantMessage).last().text.strip()
        assert app.last_stats is not None and app.last_stats.generated_tokens == 10
        pane = app.query_one(ChatPane)
        assert [m.role for m in pane.conversation.branch()] == ["user", "assistant", "user", "assistant"]
        await pilot.press("f9")  # quick switch back to the model used before
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "tiny-test-llama", timeout=30)


async def test_a_crafted_file_that_aborts_llama_cpp_is_refused_and_the_app_keeps_running(
    home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    crafted = write_tiny_llama_gguf(tmp_path / "crafted.gguf", duplicate_token=True)
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_picker(pilot, app)
        picker.query_one("#model-path", Input).value = str(crafted)
        picker.query_one("#model-path", Input).focus()
        await pilot.press("enter")
        def refusals() -> list[str]:
            return [m.notification.message for m in seen
                    if isinstance(m, Notify) and "cannot be loaded" in m.notification.message]

        await wait_for(pilot, lambda: bool(refusals()))
        note = refusals()[0]
        assert "aborted" in note and "GGML_ASSERT" in note
        # Still alive, still on the old model, still answering.
        assert app.model is not None and app.model.name == "tiny-test-llama"
        await send_chat(pilot, "still there?")
        await wait_for(pilot, lambda: reply_ended(app))


async def test_download_from_the_hub_tab_shows_progress_then_opens_the_model(
    home: Path, tiny_model: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real huggingface_hub client against the hub look-alike on 127.0.0.1."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    data = write_tiny_llama_gguf(tmp_path / "hub-model.gguf", name="from-the-hub").read_bytes()
    hub.add_repo("acme/Tiny-GGUF", {"tiny-F32.gguf": data, "README.md": b"hi"})
    hub.throttle = 0.01  # ~6 MB/s: long enough to see progress
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        repos, files = await search_and_download(pilot, app, "tiny")
        assert repos[0][0] == "acme/Tiny-GGUF"
        assert files == [["tiny-F32.gguf", "F32", "604 kB"]]
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "from-the-hub", timeout=60)
        progress = [m.progress for m in seen if isinstance(m, DownloadProgressed)]
        assert progress and progress[-1].downloaded == progress[-1].total == len(data)
        assert re.search(r"hub/models--acme--Tiny-GGUF/snapshots/\w+/tiny-F32.gguf$", str(app.model.ref.path))


async def test_a_download_can_be_cancelled(
    home: Path, tiny_model: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_repo("acme/Big-GGUF", {"big-Q8_0.gguf": b"GGUF" + os.urandom(4 * 1024 * 1024)})
    hub.throttle = 0.05  # ~1.3 MB/s: several seconds for 4 MB
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await search_and_download(pilot, app, "big")
        await wait_for(pilot, lambda: any(isinstance(m, DownloadProgressed) and m.progress.downloaded for m in seen))
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: any(isinstance(m, HubFailed) for m in seen), timeout=20)
        failure = next(m.message for m in seen if isinstance(m, HubFailed))
        assert "cancel" in failure.lower()
        assert isinstance(app.screen, ModelPickerScreen)  # still there, ready to try again
        assert app.model is not None and app.model.name == "tiny-test-llama"


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_ten_swaps_leave_memory_where_one_load_leaves_it(tiny_model: Path, tmp_path: Path) -> None:
    other = write_tiny_llama_gguf(tmp_path / "other.gguf", seed=5)
    settings = LoadSettings(n_ctx=4096, n_threads=1, n_threads_batch=1)

    def swap_to(path: Path, current: LoadedModel | None) -> LoadedModel:
        if current is not None:
            current.close()
        model = LoadedModel.load(path, settings)
        list(model.complete("warm up", SamplingSettings(max_reply_tokens=8)))
        return model

    model = swap_to(tiny_model, None)
    model = swap_to(other, model)
    after_one_swap = _rss_bytes()
    for i in range(10):
        model = swap_to(tiny_model if i % 2 else other, model)
    after_ten = _rss_bytes()
    model.close()
    # Each load maps the file and allocates a KV cache and compute buffers (~25 MB here);
    # a leak would grow by that much per swap.
    assert after_ten - after_one_swap < 8 * 1024 * 1024, f"grew {(after_ten - after_one_swap) / 1e6:.1f} MB"


async def test_hf_model_downloads_in_the_app_with_progress_then_opens(
    home: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`llama-tui hf-model REPO FILE`: the same progress UI as the picker's download."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    data = write_tiny_llama_gguf(tmp_path / "src.gguf", name="cli-hub-model").read_bytes()
    hub.add_repo("acme/tiny-GGUF", {"tiny-F32.gguf": data})
    hub.throttle = 0.2  # ~2 s in all: time to look at the screen mid-download
    args = cli.build_parser().parse_args(["hf-model", "acme/tiny-GGUF", "tiny-F32.gguf", "--max-token", "512"])
    options = cli.options_from_args(args, None)
    seen: list[Message] = []
    app = LlamaApp(options)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any(isinstance(m, DownloadProgressed) for m in seen))
        # On screen: the Hugging Face tab, its progress bar and the cancel key.
        assert app.screen.query_one("#picker-tabs", TabbedContent).active == "picker-hub"
        assert app.screen.query_one("#hub-progress").display
        assert "ctrl+x" in app.screen.active_bindings
        assert label_text(app, "status-state") == "downloading"
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "cli-hub-model", timeout=60)
        progress = [m.progress for m in seen if isinstance(m, DownloadProgressed)]
        assert progress and progress[-1].downloaded == len(data)
        assert app.model.context_size == 512


async def test_hf_model_with_a_missing_file_says_so_and_the_app_stays(
    home: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_repo("acme/tiny-GGUF", {"other.gguf": b"GGUF"})
    args = cli.build_parser().parse_args(["hf-model", "acme/tiny-GGUF", "missing.gguf"])
    seen: list[Message] = []
    app = LlamaApp(cli.options_from_args(args, None))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any(isinstance(m, HubFailed) for m in seen))
        failure = next(m.message for m in seen if isinstance(m, HubFailed))
        assert "File not found" in failure and "missing.gguf" in failure
        assert isinstance(app.screen, ModelPickerScreen) and app.model is None
        await pilot.pause()
        assert label_text(app, "status-state") == "idle"  # not "downloading" any more


async def test_path_completion_suggests_folders_and_gguf_files(tmp_path: Path) -> None:
    from llama_tui.ui.path_suggester import PathSuggester

    (tmp_path / "models" / "nested").mkdir(parents=True)
    (tmp_path / "models" / "llama-Q4.gguf").write_bytes(b"GGUF")
    (tmp_path / "models" / "notes.txt").write_text("not a model")
    suggest = PathSuggester().get_suggestion
    assert await suggest(f"{tmp_path}/mod") == f"{tmp_path}/models/"
    assert await suggest(f"{tmp_path}/models/ll") == f"{tmp_path}/models/llama-Q4.gguf"
    assert await suggest(f"{tmp_path}/models/no") is None  # not a folder, not a .gguf
    assert await suggest(f"{tmp_path}/missing/x") is None


# -- README promises about the picker that had no test of their own (docs/promises.md) -----------


def details_text(app: LlamaApp) -> str:
    return str(app.screen.query_one("#model-details").render())


async def test_the_picker_lists_the_hugging_face_cache_and_warns_when_a_model_may_not_fit(
    home: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Models: the list holds "the GGUF files in the Hugging Face cache"; "The
    highlighted model shows how much memory it will take (weights plus the KV cache at your
    context length) against the free memory, with a warning when it may not fit"."""
    from tests.test_catalog import _add_to_hf_cache

    _add_to_hf_cache(tmp_path / "hf" / "hub", "someone/cached-GGUF", "cached-Q8_0.gguf",
                     write_tiny_llama_gguf(tmp_path / "cached.gguf", name="cached-llama", seed=9))
    free = {"bytes": 64 * 1024**3}
    monkeypatch.setattr("llama_tui.ui.picker_screen.available_ram_bytes", lambda: free["bytes"])
    app = LlamaApp(tiny_options(tiny_model, load=LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await open_picker(pilot, app)
        rows = {row[0].lstrip("● "): row for row in table_rows(app, "model-table")}
        assert rows["cached-llama"][1:] == ["llama", "148K", "F32", "2k", "604 kB", "HF cache"]

        # The first row is highlighted: the loaded tiny model, at this run's context length.
        first = details_text(app)
        assert first.startswith(str(tiny_model))
        assert re.search(r"Needs about [\d.]+ [kMG]?B; 69 GB free\.", first), first
        assert "KV cache" in first and "at 1024 tokens" in first
        assert not app.screen.query_one("#model-details").has_class("warning")

        # Another row highlighted (↓ from the filter moves into the list): its own figures.
        await pilot.press("down", "down")
        assert details_text(app) != first

        # Too little memory free: a warning.
        free["bytes"] = 1000
        await pilot.press("up")
        warned = details_text(app)
        assert "⚠ Needs about" in warned and "only 1.0 kB free: it may not fit." in warned
        assert app.screen.query_one("#model-details").has_class("warning")


async def test_tab_completes_a_path_typed_in_the_picker(home: Path, tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-models"
    folder.mkdir()
    write_tiny_llama_gguf(folder / "completed-by-tab.gguf")
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_picker(pilot, app)
        path_input = picker.query_one("#model-path", Input)
        path_input.focus()
        await pilot.press(*f"{folder}/comp")
        await wait_for(pilot, lambda: path_input._suggestion != "", timeout=10)  # the suggestion is shown
        await pilot.press("tab")
        assert path_input.value == f"{folder}/completed-by-tab.gguf"
        assert app.focused is path_input
        await pilot.press("tab")  # nothing more to complete: on to the next field
        assert app.focused is not path_input


@pytest.mark.parametrize("kind, reason", [
    ("missing", "does not exist."),
    ("not_gguf", "is not a GGUF model file (it does not start with 'GGUF')."),
])
async def test_a_typed_path_that_is_no_model_is_refused_and_the_picker_stays(
    home: Path, tiny_model: Path, broken_model_files: dict[str, Path], kind: str, reason: str
) -> None:
    """The path stays in the box to be corrected; the loaded model stays loaded."""
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_picker(pilot, app)
        path_input = picker.query_one("#model-path", Input)
        path_input.value = str(broken_model_files[kind])
        path_input.focus()
        seen.clear()  # the notice of the first load
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(isinstance(m, Notify) for m in seen))
        notes = [(m.notification.message, m.notification.severity) for m in seen if isinstance(m, Notify)]
        assert notes == [(f"{broken_model_files[kind]} {reason}", "error")]
        await pilot.pause()
        assert app.screen is picker and path_input.value == str(broken_model_files[kind])
        assert app.model is not None and app.model.name == "tiny-test-llama"


async def test_tab_from_a_filter_that_matches_nothing_goes_to_the_path_box(home: Path, tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_picker(pilot, app)
        picker.query_one("#model-filter", Input).focus()
        await pilot.press(*"zzzz", "down")
        assert picker.shown == [] and app.focused is picker.query_one("#model-filter")
        await pilot.press("tab")
        assert app.focused is picker.query_one("#model-path")
        await pilot.press("shift+tab", *["backspace"] * 4, "tab")  # matches again: the list takes Tab
        assert picker.shown and app.focused is picker.query_one("#model-table")


async def test_a_download_shows_bytes_speed_and_time_left_and_resumes_after_ctrl_x(
    home: Path, tiny_model: Path, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Hugging Face tab: "downloads one with a progress bar (bytes, speed, time left)
    ...; ctrl+x cancels, and the next attempt resumes where it stopped"."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    data = write_tiny_llama_gguf(tmp_path / "hub-model.gguf", name="resumed-from-the-hub").read_bytes()
    hub.add_repo("acme/Slow-GGUF", {"slow-F32.gguf": data})
    hub.throttle = 0.3  # 64 kB every 0.3 s: ~3 s for the file
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await search_and_download(pilot, app, "slow")
        status = app.screen.query_one("#hub-status")
        shown = re.compile(r"\d+ kB of 604 kB · [\d.]+ [kM]?B/s · \d+ s left · ctrl\+x cancels")
        await wait_for(pilot, lambda: shown.fullmatch(str(status.render())) is not None, timeout=30)
        assert app.screen.query_one("#hub-progress", ProgressBar).display
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: "cancel" in str(status.render()).lower() and not app.screen.query_one(
            "#hub-panel").downloading, timeout=20)
        assert app.model.name == "tiny-test-llama"

        hub.throttle = 0
        await pilot.press("enter")  # the file is still highlighted: download it again
        await wait_for(pilot, lambda: app.model is not None and app.model.name == "resumed-from-the-hub", timeout=60)
        first, again = hub.ranges("/resolve/")[-2:]
        assert first is None and again is not None
        kept = int(re.fullmatch(r"bytes=(\d+)-", again).group(1))
        assert 0 < kept < len(data)  # resumed where it stopped, not from the start
        assert app.model.ref.path.read_bytes() == data


@pytest.mark.parametrize("case, expected", [
    ("offline", "Offline mode is on (HF_HUB_OFFLINE=1): search needs the Hub."),
    ("gated", "is gated and needs a Hugging Face token: set HF_TOKEN (or run `hf auth login`)"),
    ("missing", "Repository not found"),
])
async def test_hub_failures_get_a_plain_message_in_the_hub_tab(
    home: Path, tiny_model: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    """README, Hugging Face tab: "gated, missing and offline cases get a plain message"."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(home / "no-token"))
    hub.add_repo("acme/Gated-GGUF", {"g-Q4_0.gguf": b"GGUF" + bytes(100)}, gated=True)
    hub.add_repo("acme/Gone-GGUF", {"x-Q4_0.gguf": b"GGUF"})
    if case == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await open_picker(pilot, app)
        picker.query_one("#picker-tabs", TabbedContent).active = "picker-hub"
        search = picker.query_one("#hub-query", Input)
        search.value = {"offline": "anything", "gated": "gated", "missing": "gone"}[case]
        search.focus()
        await pilot.press("enter")
        if case != "offline":
            await wait_for(pilot, lambda: table_rows(app, "hub-repos"))
            if case == "missing":
                del hub.repos["acme/Gone-GGUF"]  # deleted between the search and the listing
                await pilot.press("enter")
            else:
                await pilot.press("enter")
                await wait_for(pilot, lambda: table_rows(app, "hub-files"))
                await pilot.press("enter")  # download without a token
        status = picker.query_one("#hub-status")
        await wait_for(pilot, lambda: status.has_class("error"), timeout=30)
        message = str(status.render())
        assert expected in message, message
        assert "Traceback" not in message and not message.startswith("Unexpected error")
        assert app.model is not None and app.model.name == "tiny-test-llama"
