"""Speculative decoding as a person meets it: the --speculative flag, the acceptance rate on
the status bar, and the -v line under a reply (the tiny model, whose greedy replies loop,
so prompt lookup's drafts are accepted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Label

from llama_tui import cli
from llama_tui.engine.drafting import SpeculativeMode
from llama_tui.engine.settings import SamplingSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_pane import AssistantMessage
from tests.test_app import SIZE, label_text, reply_ended, send_chat, tiny_options, wait_for

REPEATING = "the cat sat on the mat and the dog sat on the log. " * 6


@pytest.mark.parametrize("mode", ["off", "on", "auto"])
def test_the_speculative_flag_reaches_the_settings(mode: str) -> None:
    args = cli.build_parser().parse_args(["--speculative", mode])
    assert cli.options_from_args(args, None).settings.sampling.speculative == mode


def test_speculative_defaults_to_auto_and_refuses_other_words(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args([])
    assert cli.options_from_args(args, None).settings.sampling.speculative == "auto"
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--speculative", "yes"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--speculative: invalid choice: 'yes'" in err and "Traceback" not in err


def draft_shown(app: LlamaApp) -> bool:
    return app.query_one("#status-draft", Label).display


@pytest.mark.parametrize("mode", ["on", "off"])
async def test_status_bar_and_verbose_line_show_the_acceptance_rate_only_when_drafting(
    tiny_model: Path, mode: SpeculativeMode
) -> None:
    sampling = SamplingSettings(temperature=0.0, max_reply_tokens=80, speculative=mode)
    app = LlamaApp(tiny_options(tiny_model, sampling=sampling, verbose=True))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        assert not draft_shown(app)  # nothing drafted yet
        await send_chat(pilot, REPEATING)
        await wait_for(pilot, lambda: reply_ended(app))
        await pilot.pause()
        stats = app.last_stats
        assert stats is not None and stats.generated_tokens == 80
        footer = app.query(AssistantMessage).last().footer_text
        if mode == "off":
            assert stats.drafted_tokens == 0 and stats.acceptance_rate is None
            assert not draft_shown(app) and "draft" not in footer
            return
        # The engine's own counts, as the engine reported them.
        assert stats.drafted_tokens > 0 and stats.accepted_tokens > 0
        rate = stats.acceptance_rate
        assert rate is not None
        assert draft_shown(app) and label_text(app, "status-draft") == f"draft {rate:.0%}"
        assert (f"draft {rate:.0%} ({stats.accepted_tokens} of {stats.drafted_tokens} drafted tokens accepted)"
                in footer), footer
        # A new chat empties the context: no figure is left over from the last reply.
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not draft_shown(app))


async def test_the_settings_panel_offers_the_three_modes_and_saves_the_choice() -> None:
    from textual.widgets import Select
    from textual.widgets._select import SelectOverlay

    from tests.test_settings_screen import SIZE as PANEL_SIZE
    from tests.test_settings_screen import SettingsApp, start_config

    app = SettingsApp(start_config())
    async with app.run_test(size=PANEL_SIZE) as pilot:
        await pilot.pause()
        select = app.screen.query_one("#settings-speculative", Select)
        assert select.value == "auto"
        select.focus()
        await pilot.press("enter")  # opens the list
        await pilot.pause()
        listed = select.query_one(SelectOverlay)
        # The three modes, each once: "auto" is a mode here, not an empty value.
        assert [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)] == ["off", "on", "auto"]
        await pilot.press("up", "up", "enter")  # from auto to off
        await pilot.pause()
        assert select.value == "off"
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.result == start_config().with_values({"speculative": "off"})
