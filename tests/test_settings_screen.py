"""The settings panel, driven through Pilot in a tiny app of its own."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, TextArea

from llama_tui.engine.config import GPU_INSTALL_HINT
from llama_tui.engine.settings import SETTINGS, ChatSettings, LoadSettings, SamplingSettings, Settings
from llama_tui.ui.settings_screen import SettingsScreen

SIZE = (120, 50)
_UNSET = object()


class SettingsApp(App[None]):
    """Opens the settings panel at once and keeps what it dismissed with."""

    def __init__(self, config: Settings, *, gpu_offload: bool = False, **model: Any) -> None:
        """`model`: SettingsScreen's model_name, backend and capabilities."""
        super().__init__()
        self.config = config
        self.gpu_offload = gpu_offload
        self.model = model
        self.result: object = _UNSET

    def on_mount(self) -> None:
        self.push_screen(SettingsScreen(self.config, gpu_offload=self.gpu_offload, **self.model), self._dismissed)

    def _dismissed(self, result: Settings | None) -> None:
        self.result = result


def start_config() -> Settings:
    return Settings(
        load=LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1, overrides={"a.b": 1}),
        sampling=SamplingSettings(max_reply_tokens=100),
        chat=ChatSettings(system_prompt="Be brief."),
    )


def field(pilot: Pilot, name: str) -> Input:
    return pilot.app.screen.query_one(f"#settings-{name}", Input)


def note(pilot: Pilot, name: str) -> str:
    return str(pilot.app.screen.query_one(f"#settings-{name}-note", Label).render())


async def type_into(pilot: Pilot, name: str, text: str) -> None:
    """Replace a field's text by typing, as a person would."""
    target = field(pilot, name)
    target.focus()
    target.value = ""
    await pilot.press(*text)
    await pilot.pause()


async def test_invalid_value_is_marked_and_save_refused_until_fixed() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        assert app.focused is field(pilot, "n_ctx")

        await type_into(pilot, "temperature", "9")
        temperature = field(pilot, "temperature")
        assert temperature.has_class("-invalid")
        assert note(pilot, "temperature") == "must be a number from 0 to 5"

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.result is _UNSET and isinstance(app.screen, SettingsScreen)
        status = str(app.screen.query_one("#settings-status", Label).render())
        assert status == "Fix the marked fields first: Temperature"

        await pilot.press("backspace", "1", ".", "5")
        await pilot.pause()
        assert not temperature.has_class("-invalid")
        assert note(pilot, "temperature") == "0 always picks the likeliest token"

        await type_into(pilot, "n_ctx", "4096")
        await type_into(pilot, "overrides", "a.b=2, flag=true")
        await type_into(pilot, "max_reply_tokens", "")
        await type_into(pilot, "n_threads_batch", "")  # empty: the machine's default
        app.screen.query_one("#settings-chat_format", Select).value = "chatml"
        app.screen.query_one("#settings-system_prompt", TextArea).text = "Answer in [bold] French."
        await pilot.press("ctrl+s")
        await pilot.pause()

    expected = start_config().with_values({
        "n_ctx": 4096, "chat_format": "chatml", "overrides": {"a.b": 2, "flag": True},
        "n_threads_batch": LoadSettings().n_threads_batch, "temperature": 1.5, "max_reply_tokens": None,
        "system_prompt": "Answer in [bold] French.",
    })
    assert app.result == expected


async def test_escape_cancels_with_none() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "seed", "42")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
    assert app.result is None


async def test_unchanged_form_saves_the_same_config() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.result == start_config()


async def test_tab_moves_through_the_fields_in_order() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        order = []
        for _ in range(len(SETTINGS) + 2):
            order.append(app.focused.id if app.focused else None)
            await pilot.press("tab")
        # Every setting of the table, in the table's order, then the buttons.
        assert order == [*(f"settings-{name}" for name in SETTINGS), "settings-save", "settings-cancel"]
        # Tab leaves the system prompt rather than typing a tab into it.
        assert "\t" not in app.screen.query_one("#settings-system_prompt", TextArea).text


async def test_max_reply_tokens_is_not_tied_to_the_local_context_length() -> None:
    """A reply stops when the context is full anyway, and a server's context is its own: a
    reply length longer than the local context is a valid setting."""
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "max_reply_tokens", "3000")
        assert not field(pilot, "max_reply_tokens").has_class("-invalid")  # the context is 2048
        await type_into(pilot, "max_reply_tokens", "0")
        assert field(pilot, "max_reply_tokens").has_class("-invalid")
        assert note(pilot, "max_reply_tokens").startswith("must be empty (no limit) or a whole number from 1")


async def test_gpu_hint_depends_on_the_build() -> None:
    app = SettingsApp(start_config(), gpu_offload=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "CPU-only" in note(pilot, "n_gpu_layers")
        gpu_line = str(app.screen.query_one("#settings-gpu", Label).render())
        assert "CPU only" in gpu_line and GPU_INSTALL_HINT in gpu_line
    app = SettingsApp(start_config(), gpu_offload=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "CPU-only" not in note(pilot, "n_gpu_layers")
        gpu_line = str(app.screen.query_one("#settings-gpu", Label).render())
        assert "can offload" in gpu_line and GPU_INSTALL_HINT not in gpu_line


async def test_errors_show_typed_text_literally() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "overrides", "[red]x")
        assert note(pilot, "overrides") == "expected KEY=VALUE, got '[red]x'"


async def test_too_many_threads_are_allowed_with_a_caution() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_into(pilot, "n_threads", "200")
        assert not field(pilot, "n_threads").has_class("-invalid")
        assert "more threads than this machine's" in note(pilot, "n_threads")
        await type_into(pilot, "n_threads", "257")
        assert field(pilot, "n_threads").has_class("-invalid")


async def test_escape_in_the_open_chat_format_list_only_closes_the_list() -> None:
    app = SettingsApp(start_config())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        select = app.screen.query_one("#settings-chat_format", Select)
        select.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert select.expanded
        await pilot.press("escape")
        await pilot.pause()
        assert not select.expanded and isinstance(app.screen, SettingsScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


async def test_sampling_a_servers_api_has_no_field_for_is_said_not_to_be_sent() -> None:
    """An Ollama or other OpenAI-compatible server's API takes temperature and top-p, not top-k,
    min-p or a repeat penalty (engine.remote_server.SAMPLING_BY_KIND)."""
    from llama_tui.engine.backend import Capabilities
    from llama_tui.engine.remote_server import STANDARD_SAMPLING

    app = SettingsApp(start_config(), model_name="qwen3[Q4]", backend="server",
                      capabilities=Capabilities(sampling=STANDARD_SAMPLING))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for name in ("top_k", "min_p", "repeat_penalty"):
            assert note(pilot, name) == "not sent to qwen3[Q4]: its server's API has no such field", name
        for name in ("temperature", "top_p", "max_reply_tokens", "seed"):
            assert "not sent" not in note(pilot, name), name
        assert note(pilot, "n_gpu_layers") == "not used by qwen3[Q4]: its server loads the model"
        await type_into(pilot, "n_threads", "200")  # no caution about cores for a setting not used
        assert note(pilot, "n_threads") == "not used by qwen3[Q4]: its server loads the model"
