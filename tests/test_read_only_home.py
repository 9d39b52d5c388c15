"""A home the app cannot write to: it runs, chats, and says once what it cannot save.

Tests run as root, and root writes through permissions; capsh drops that power
(CAP_DAC_OVERRIDE) for the app, as for any other user.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.terminal import LLAMA_TUI, Terminal, app_env

CAPSH = shutil.which("capsh")
pytestmark = pytest.mark.skipif(CAPSH is None, reason="capsh (libcap2-bin) is needed to drop root's override")


def as_plain_user(argv: list[str]) -> list[str]:
    assert CAPSH is not None
    return [CAPSH, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", 'exec "$0" "$@"', *argv]


@pytest.fixture
def read_only_home(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    yield home
    home.chmod(0o755)


def chat_once(term: Terminal) -> None:
    term.wait_for(" idle ", timeout=120)
    term.type("What is the capital of France?")
    term.press("enter")
    term.wait_for(re.compile(r" idle .* TTFT \d+ ms"), timeout=120)


@pytest.mark.parametrize("model", ["tiny", "starter"])
def test_the_app_runs_and_chats_in_a_read_only_home(read_only_home: Path, tiny_model: Path, model: str) -> None:
    """With the starter, the model is unpacked into a private temporary folder instead."""
    argv = [*LLAMA_TUI, "local", str(tiny_model)] if model == "tiny" else [*LLAMA_TUI, "--max-token", "512"]
    with Terminal(as_plain_user(argv), env=app_env(read_only_home)) as term:
        term.wait_for("Cannot save everything", timeout=120)
        screen = term.text()
        assert "Permission denied" in screen and "settings changed in the app" in screen
        chat_once(term)
        status = term.text().splitlines()[-2]
        assert ("tiny-test-llama" if model == "tiny" else "Gemma 3 270m") in status
        assert term.text().count("Cannot save everything") <= 1  # said once (it may have timed out)
        term.press("ctrl+q")
        assert term.wait() == 0
        assert "Traceback" not in term.output_text()
    assert list(read_only_home.iterdir()) == []  # nothing was written
