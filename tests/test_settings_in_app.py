"""The settings panel inside the app: saved to the TOML file, re-read, and a reload applies them."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.widgets import Input, Log

from llama_tui.engine.config import AppConfig, config_path, load_config
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.settings_screen import SettingsScreen
from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


async def set_field(pilot, name: str, value: str) -> None:
    field = pilot.app.screen.query_one(f"#settings-{name}", Input)
    field.focus()
    field.value = value
    await pilot.pause()


async def test_settings_are_validated_saved_reread_and_a_reload_applies_them(home: Path, tiny_model: Path) -> None:
    saved, _ = load_config()
    options = tiny_options(tiny_model, saved_config=saved)
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        assert app.model.context_size == 2048
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))

        await set_field(pilot, "temperature", "9")  # out of range: marked, not saved
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert app.screen.query_one("#settings-temperature", Input).has_class("-invalid")

        await set_field(pilot, "temperature", "0.2")
        await set_field(pilot, "n_ctx", "1024")
        await set_field(pilot, "max_reply_tokens", "7")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.model is not None and app.model.context_size == 1024, timeout=30)

        # Sampling applies to the next reply.
        assert app.settings.sampling.temperature == 0.2
        await send_chat(pilot, "hi")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.last_stats is not None and app.last_stats.generated_tokens == 7

    # Persisted in the TOML file, and read back on the next start.
    reread, warnings = load_config()
    assert not warnings
    settings = reread.settings
    assert settings.load.n_ctx == 1024
    assert settings.sampling.temperature == 0.2 and settings.sampling.max_reply_tokens == 7
    assert reread.last_model is not None and reread.last_model.path is not None
    assert reread.last_model.path.name == tiny_model.name


async def test_sampling_changes_need_no_reload(home: Path, tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, saved_config=AppConfig()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        model = app.model
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await set_field(pilot, "top_k", "5")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, (SettingsScreen, ConfirmScreen))
        assert app.settings.sampling.top_k == 5 and app.model is model  # not reloaded
    # This run's context (2048, as a command-line flag would set it) stays out of the file.
    reread, _ = load_config()
    assert reread.settings.sampling.top_k == 5 and reread.settings.load.n_ctx == AppConfig().settings.load.n_ctx != 2048


async def test_an_override_that_would_abort_llama_cpp_is_refused_in_the_app(home: Path, tiny_model: Path) -> None:
    from llama_tui.engine.settings import LoadSettings
    from llama_tui.ui.messages import ModelLoadFailed

    seen: list = []
    load = LoadSettings(n_ctx=512, overrides={"llama.block_count": 0})
    app = LlamaApp(tiny_options(tiny_model, load=load))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any(isinstance(m, ModelLoadFailed) for m in seen), timeout=30)
        reason = next(m.reason for m in seen if isinstance(m, ModelLoadFailed))
        assert "cannot be loaded" in reason and "aborted" in reason
        assert app.model is None  # and this process is still here to say so


async def test_config_warnings_are_shown_once_and_logged_and_the_bad_value_stays_in_the_file(
    home: Path, tiny_model: Path
) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[sampling]\ntemperature = "hot"  # [b]mine[/b]\ntop_k = 40\n')
    saved, warnings = load_config()
    assert len(warnings) == 1 and '[sampling] temperature = "hot"' in warnings[0]
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model, saved_config=saved, config_warnings=tuple(warnings)))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)  # and remembered in the file
        shown = [m.notification for m in seen if isinstance(m, Notify) and warnings[0] in m.notification.message]
        assert len(shown) == 1 and not shown[0].markup  # "[sampling]" is text, not a style
        await pilot.press("f4")
        await wait_for(pilot, lambda: any(warnings[0] in line for line in app.query_one(Log).lines))

        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await set_field(pilot, "top_k", "5")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    # The value the app could not use is still there as written; only top_k and the model changed.
    text = path.read_text()
    assert 'temperature = "hot"  # [b]mine[/b]' in text and "top_k = 5" in text
    reread, _ = load_config()
    assert reread.settings.sampling.top_k == 5 and reread.last_model is not None
    assert reread.last_model.path is not None and reread.last_model.path.name == tiny_model.name


async def test_a_failed_save_shows_one_error_and_not_settings_saved(home: Path, tiny_model: Path) -> None:
    # A regular file where the config folder should be: saving fails, for root too.
    home.mkdir(parents=True)
    (home / "config").write_text("not a folder\n")
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model, saved_config=AppConfig()))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await set_field(pilot, "top_k", "5")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await pilot.pause()
        assert app.settings.sampling.top_k == 5  # it still applies to this run
    notes = [m.notification.message for m in seen if isinstance(m, Notify)]
    failures = [note for note in notes if note.startswith("Could not save the settings:")]
    assert len(failures) == 1 and str(config_path()) in failures[0]
    assert not any("Settings saved" in note for note in notes)


async def test_settings_that_need_a_reload_offer_one_and_the_others_apply_to_the_next_reply(
    home: Path, tiny_model: Path
) -> None:
    """README, Settings: "Settings that need a reload (context, GPU layers, threads, chat
    format, overrides) offer to reload the model; the others apply to the next reply"."""
    from textual.widgets import Select, TextArea

    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model, saved_config=AppConfig()))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        model = app.model
        reloading = {"n_ctx": ("1024", "context length"), "n_gpu_layers": ("2", "gpu layers"),
                     "n_threads": ("2", "threads"), "n_threads_batch": ("2", "prompt threads"),
                     "chat_format": ("chatml", "chat format"),
                     "overrides": ("general.name=renamed", "metadata overrides")}
        for name, (value, said) in reloading.items():
            await pilot.press("f6")
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
            if name == "chat_format":
                app.screen.query_one("#settings-chat_format", Select).value = value
            else:
                await set_field(pilot, name, value)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = str(app.screen.query_one("#confirm-question").render())
            assert question == f"Reload tiny-test-llama now to apply the new {said}? The conversation stays.", name
            await pilot.press("n")  # later
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.model is model  # nothing reloaded without a yes
        notes = [m.notification.message for m in seen if isinstance(m, Notify)]
        assert notes.count("The new load settings apply the next time a model is opened.") == len(reloading)

        for name, value in {"temperature": "0.3", "seed": "7", "top_p": "0.5", "system_prompt": "Be brief."}.items():
            await pilot.press("f6")
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
            if name == "system_prompt":
                app.screen.query_one("#settings-system_prompt", TextArea).text = value
            else:
                await set_field(pilot, name, value)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen), name
        notes = [m.notification.message for m in seen if isinstance(m, Notify)]
        assert notes.count("Settings saved: they apply to the next reply.") == 4
        assert app.model is model
        await send_chat(pilot, "hi")
        await wait_for(pilot, lambda: reply_ended(app))
        assert "Be brief." in app.model.context_text()  # the new system prompt, in the next reply


async def test_a_setting_the_conversations_preset_sets_is_said_to_be_overridden(tiny_model: Path) -> None:
    """A new temperature saved in F6 while the chat's preset sets one: the app says the preset's
    wins for this conversation, and how to use the settings instead."""
    seen: list[Message] = []
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.chat_pane.suggest_preset("Code")  # as F8 or the model's remembered preset would
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await set_field(pilot, "temperature", "0.9")
        await set_field(pilot, "top_k", "5")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await pilot.pause()
    notes = [m.notification.message for m in seen if isinstance(m, Notify)]
    said = [note for note in notes if note.startswith("This conversation's preset")]
    assert said == ["This conversation's preset, Code, sets temperature 0.2: F8 and \"no preset\" use the "
                    "settings instead."]
