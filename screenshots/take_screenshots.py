"""Take the SVG screenshots in this folder from the real app on the starter model.

    make screenshots        # or: .venv/bin/python screenshots/take_screenshots.py

Drives LlamaApp headless (Textual's run_test + Pilot) at a fixed 110x32 terminal on the
Gemma 3 270M starter model, in one session, and writes:

- log.svg           the Log tab just after the model loaded, with the "loaded" notification;
- chat.svg          the Chat tab: one finished turn (a Markdown list), then a second reply
                    (code), caught while it streams unless the starter's answer is too short;
- completion.svg    the Completion tab mid-answer: a Markdown document being continued;
- settings.svg      the settings panel (F6) over the chat, with Temperature set to an
                    out-of-range value and ctrl+s refused: the field and its note are marked;
- picker-local.svg  the model picker (ctrl+o), "On this machine": the loaded starter model
                    and two tiny models in the models folder, with the memory estimate;
- picker.svg        the picker's "Hugging Face" tab: search results, the repo's files, and a
                    download part-way (progress bar; bytes, speed and time left);
- history.svg       the History (F7) searched for a word: the chat held above and three older
                    conversations written into the history file before the session;
- thinking.svg      a reasoning model's reply: the first turn's thinking folded to one line,
                    the second reply still thinking, live, with its running count.

THE REASONING MODEL IN thinking.svg IS A SCRIPTED STAND-IN (tests/scripted_model.py): the
starter model does not think, and no reasoning model can be had here. It replaces the
loaded model and streams a written reply (thinking apart, as a server's reasoning_content);
everything after it (the app's request handling, the widgets, the history) is the real path.

Each "mid-answer" shot is taken once the reply shows enough text while app.generating is
still True. The seed is fixed (LoadSettings) and so are the threads, prompts and sampling,
so the text is the same on every run; only where the stream is caught and the speed
figures vary. The starter model is a base model: the system prompt is a short transcript
with two Markdown answers, so that it answers in Markdown too.

The starter model is assembled once into LLAMA_TUI_HOME (default ./.test-home, which
`make test` also uses). The session itself runs in a throwaway home with that file linked
in, so the picker lists only what the script put there, and nothing is left behind.

THE HUGGING FACE HUB IN picker.svg IS A LOCAL STAND-IN: tests/hub_server.py's FakeHub on
127.0.0.1, answering the same API as huggingface.co (no network is used). Its repos, file
names, download counts and likes are made up to look like the real listing for Gemma 3
270M; each file is a tiny random-weight GGUF padded to a few MB, sent slowly so that the
download is caught part-way, then cancelled. HF_ENDPOINT points at it and HF_HOME /
HF_HUB_CACHE at a temporary folder while the script runs (no token is sent); every
variable is restored and the server stopped on exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("LLAMA_TUI_HOME", str(ROOT / ".test-home"))
sys.path.insert(0, str(ROOT))  # for tests.hub_server and tests.tiny_gguf

import huggingface_hub.constants  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable, Input, ProgressBar, TabbedContent, TextArea  # noqa: E402

from llama_tui.engine.config import AppConfig  # noqa: E402
from llama_tui.engine.conversation import Conversation  # noqa: E402
from llama_tui.engine.settings import LoadSettings, SamplingSettings  # noqa: E402
from llama_tui.engine.starter import starter_model_path  # noqa: E402
from llama_tui.engine.store import open_store  # noqa: E402
from llama_tui.launch import LaunchOptions  # noqa: E402
from llama_tui.ui.app import LlamaApp  # noqa: E402
from llama_tui.ui.chat_input import ChatInput  # noqa: E402
from llama_tui.ui.chat_pane import AssistantMessage  # noqa: E402
from llama_tui.ui.completion_pane import CompletionPane  # noqa: E402
from llama_tui.ui.history_screen import HistoryScreen  # noqa: E402
from llama_tui.ui.hub_panel import HubPanel  # noqa: E402
from llama_tui.ui.messages import ModelLoadFailed  # noqa: E402
from llama_tui.ui.picker_screen import ModelPickerScreen  # noqa: E402
from llama_tui.ui.settings_screen import SettingsScreen  # noqa: E402
from llama_tui.ui.status_bar import StatusBar  # noqa: E402
from tests.hub_server import FakeHub  # noqa: E402
from tests.scripted_model import ScriptedModel  # noqa: E402
from tests.tiny_gguf import write_tiny_llama_gguf  # noqa: E402

SIZE = (110, 32)
TIMEOUT = 180.0  # seconds for any one step; the first load assembles the 253 MB model

SYSTEM_PROMPT = """\
A conversation between a user and a helpful assistant. The assistant answers in Markdown, with bullet lists and \
code blocks.

User: How do I read a file in Python?
Assistant: Use `open()` in a `with` block:

```python
with open("notes.txt") as f:
    text = f.read()
```

- The file is closed for you.
- Pass `encoding="utf-8"` for text.
User: What are the primary colours?
Assistant: The three primary colours of light are:

1. **Red**
2. **Green**
3. **Blue**"""

CHAT = ["Which languages are spoken in Switzerland?", "Write a Python function that prints a multiplication table."]
CHAT_SHOWN = 40  # capture the second reply once it shows this many characters (or once it ended, if sooner)

COMPLETION_PROMPT = """\
# Baking sourdough bread at home

Sourdough needs only three ingredients: flour, water and salt. The rest is patience.

## What you need

-"""
COMPLETION_CHARS = 420  # capture once this many characters were added to the prompt

BAD_TEMPERATURE = "7.5"  # the range is 0 to 5

# Two tiny models dropped into the models folder: (file under the folder, name in the header, seed).
LOCAL_MODELS = [
    ("tiny-random-llama-F32.gguf", "tiny-random-llama", 1),
    ("tiny-random-llama-v2-F32.gguf", "tiny-random-llama-v2", 2),
]

# The stand-in Hub: (repo, downloads, likes, gated, {file name: size in MB}). Made up.
HUB_QUERY = "gemma-3-270m"
HUB_REPOS = [
    ("unsloth/gemma-3-270m-it-GGUF", 48_213, 112, False, {
        "gemma-3-270m-it-F16.gguf": 10.9,
        "gemma-3-270m-it-Q4_K_M.gguf": 6.4,
        "gemma-3-270m-it-Q8_0.gguf": 7.3,
        "gemma-3-270m-it-UD-Q4_K_XL.gguf": 6.5,
    }),
    ("ggml-org/gemma-3-270m-it-GGUF", 21_940, 41, False, {"gemma-3-270m-it-Q8_0.gguf": 7.3}),
    ("google/gemma-3-270m-it-qat-q4_0-gguf", 12_508, 57, True, {"gemma-3-270m-it-q4_0.gguf": 6.1}),
    ("lmstudio-community/gemma-3-270m-it-GGUF", 9_876, 12, False, {"gemma-3-270m-it-Q4_K_M.gguf": 6.4}),
    ("bartowski/google_gemma-3-270m-it-GGUF", 7_310, 19, False, {"google_gemma-3-270m-it-Q4_K_M.gguf": 6.4}),
]
HUB_DOWNLOAD = ("unsloth/gemma-3-270m-it-GGUF", "gemma-3-270m-it-Q4_K_M.gguf")
HUB_THROTTLE = 0.06  # seconds per 64 KiB sent: about 1.1 MB/s, so 6.4 MB takes ~6 s
HUB_SHOWN = (0.35, 0.8)  # capture when the progress bar is between these fractions

# Older conversations written into the history before the session: (title or "", [(role, text)]).
OLDER_CHATS = [
    ("", [("user", "Plan a three-day walk in the Lake District"),
          ("assistant", "Day 1: Grasmere to Patterdale over Grisedale Hause. Day 2: Helvellyn by Striding Edge...")]),
    ("Sourdough starter", [("user", "My sourdough starter smells of nail polish. Is it dead?"),
                           ("assistant", "No: it is hungry. Feed it twice a day for a few days and it will recover.")]),
    ("", [("user", "How do I undo the last git commit but keep the changes?"),
          ("assistant", "Use `git reset --soft HEAD~1`: the commit goes, the changes stay staged.")]),
]
HISTORY_SEARCH = "python"  # matches the chat.svg conversation

THINKING_MODEL = "reasoning-model (scripted stand-in)"
THINKING_FIRST = [
    ("thinking", "The user asks how many r's are in 'strawberry'. Let me spell it: s-t-r-a-w-b-e-r-r-y.\n"),
    ("thinking", "r at position 3, then r at 8 and 9. That makes three."),
    "There are **three** r's in *strawberry*: one after the *t* and two before the *y*.",
]
THINKING_SECOND = [
    ("thinking", "Now they ask for a word with four of the same letter. 'Mississippi' has four s's and "
                 "four i's. Let me check: M-i-s-s-i-s-s-i-p-p-i. s: 3, 4, 6, 7, so four. i: 2, 5, 8, 11, "
                 "also four.\nThat works, but maybe a more everyday word is better. 'Committee'? "
                 "Only two m's, two t's, two e's. 'Assesses': a-s-s-e-s-s-e-s: "),
    "Mississippi.",
]
THINKING_ASKED = ["How many r's are in strawberry?", "Give me a word with four of one letter."]

OPTIONS = LaunchOptions.opening(
    None,
    load=LoadSettings(n_threads=2, n_threads_batch=2),
    sampling=SamplingSettings(temperature=0.3, repeat_penalty=1.1, max_reply_tokens=400),
    system_prompt=SYSTEM_PROMPT,
    saved_config=AppConfig(),  # keep what the session does in its (throwaway) home: the history
)


# -- helpers ---------------------------------------------------------------------------------


async def wait_for(condition: Callable[[], object], what: str) -> None:
    # Poll with asyncio.sleep, not Pilot: pilot.pause() and pilot.press() wait for the CPU to
    # go idle, which never happens while the model decodes, and a short reply is over by then.
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {TIMEOUT:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


async def snap(pilot: Pilot, name: str) -> None:
    """Let the screen lay out and paint, then save it as `name`."""
    await pilot.pause(0.1)  # with a delay it does not wait for idle; it lays out and paints the screen
    save(pilot.app, name)


def save(app: LlamaApp, name: str) -> None:
    app.save_screenshot(name, str(HERE))
    print(f"wrote {HERE / name}")


async def shoot_mid_answer(pilot: Pilot, shown: Callable[[], bool], name: str) -> None:
    """Wait until `shown()` while the reply is still streaming, then save `name` and stop it."""
    app = pilot.app
    await wait_for(lambda: shown() or not app.generating, f"the reply for {name}")
    await pilot.pause(0.1)
    if not app.generating:
        raise RuntimeError(f"the reply ended before {name} could be taken mid-answer: capture it earlier "
                           f"(it was {app.query(AssistantMessage).last().text!r})")
    save(app, name)
    app.action_stop_generation()
    await wait_for(lambda: not app.generating, f"the reply for {name} to stop")


async def send_chat(app: LlamaApp, text: str) -> AssistantMessage:
    """Send `text` as Enter does; return the reply once it is being generated (or done)."""
    replies = len(app.query(AssistantMessage))
    chat_input = app.query_one("#chat-input", ChatInput)
    chat_input.load_text(text)
    chat_input.post_message(ChatInput.Submitted(chat_input, text))
    # The reply widget is mounted before the generation starts: wait for both.
    await wait_for(lambda: len(app.query(AssistantMessage)) > replies
                   and (app.generating or app.query(AssistantMessage).last().has_class("ended")),
                   f"the reply to {text!r} to start")
    return app.query(AssistantMessage).last()


# -- the stand-ins: a throwaway home, HF cache and Hub -----------------------------------------


@contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables; put every one back on exit."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def hub_library_settings() -> Iterator[None]:
    """huggingface_hub reads these once, at import: online, and never send a saved token."""
    names = {"HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_IMPLICIT_TOKEN": True}
    before = {name: getattr(huggingface_hub.constants, name) for name in names}
    try:
        for name, value in names.items():
            setattr(huggingface_hub.constants, name, value)
        yield
    finally:
        for name, value in before.items():
            setattr(huggingface_hub.constants, name, value)


def make_home(home: Path, starter: Path) -> None:
    """A LLAMA_TUI_HOME with the starter model linked in and two tiny models in its models folder."""
    (home / "cache" / "models").mkdir(parents=True)
    os.symlink(starter, home / "cache" / "models" / starter.name)
    folder = home / "data" / "models"  # catalog.models_folder()
    folder.mkdir(parents=True)
    for file, name, seed in LOCAL_MODELS:
        write_tiny_llama_gguf(folder / file, name=name, seed=seed)


def padded_gguf(scratch: Path, megabytes: float, seed: int) -> bytes:
    """A tiny GGUF padded with zeros to `megabytes` (distinct per seed, so distinct ETags)."""
    path = write_tiny_llama_gguf(scratch / f"hub-{seed}.gguf", seed=seed)
    data = path.read_bytes()
    path.unlink()
    return data + bytes(max(0, int(megabytes * 1e6) - len(data)))


@contextmanager
def fake_hub(scratch: Path) -> Iterator[FakeHub]:
    """The Hub stand-in, serving HUB_REPOS on 127.0.0.1; stopped on exit."""
    hub = FakeHub()
    seed = 10
    for repo_id, downloads, likes, gated, files in HUB_REPOS:
        contents = {}
        for name, megabytes in files.items():
            seed += 1
            contents[name] = padded_gguf(scratch, megabytes, seed)
        hub.add_repo(repo_id, {**contents, "README.md": b"# " + repo_id.encode()},
                     downloads=downloads, likes=likes, gated=gated)
    hub.throttle = HUB_THROTTLE
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def write_older_chats() -> None:
    """OLDER_CHATS into the history file of the throwaway home, a day apart, the oldest first."""
    store, problem = open_store()
    if problem:
        raise RuntimeError(problem)
    now = time.time()
    for days, (title, turns) in zip(range(len(OLDER_CHATS) + 1, 1, -1), OLDER_CHATS, strict=True):
        conversation = Conversation()
        for role, text in turns:
            conversation.add(role, text, model_name="gemma-3-270m" if role == "assistant" else "")
        for message in conversation.messages.values():  # dated in the past, as if held then
            message.created_at = message.updated_at = message.created_at - days * 86400
        conversation.updated_at = now - days * 86400
        conversation.title = title
        store.create(conversation)
    store.flush(timeout=10)
    store.close()


@contextmanager
def stand_ins() -> Iterator[None]:
    """Run the session in a throwaway home and HF cache, with the Hub stand-in; undo it all on exit."""
    starter = starter_model_path()  # assembled once into the real LLAMA_TUI_HOME, then reused
    # ignore_cleanup_errors: should a step fail, a download worker may still be writing there.
    with tempfile.TemporaryDirectory(prefix="llama-tui-shots-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)  # the picker shows paths under it: keep them short
        make_home(scratch, starter)
        with fake_hub(scratch) as hub, hub_library_settings(), environment({
            "LLAMA_TUI_HOME": str(scratch),
            "HF_HOME": str(scratch / "hf"),
            "HF_HUB_CACHE": str(scratch / "hf" / "hub"),
            "HF_ENDPOINT": hub.endpoint,
            "HF_HUB_OFFLINE": None,
        }):
            write_older_chats()
            yield


# -- the shots -------------------------------------------------------------------------------


async def shoot_log(pilot: Pilot) -> None:
    """log.svg: the Log tab just after the model loaded, with the "loaded" notification."""
    await pilot.press("f4")
    await snap(pilot, "log.svg")
    pilot.app.clear_notifications()  # the "loaded" toast would cover the transcript


async def shoot_chat(pilot: Pilot) -> None:
    """chat.svg: one finished turn, then the second reply, caught while it streams if it is long enough."""
    app = pilot.app
    await pilot.press("f2")
    first = await send_chat(app, CHAT[0])
    await wait_for(lambda: first.has_class("ended") and not app.generating, "the first reply to end")
    reply = await send_chat(app, CHAT[1])
    await wait_for(lambda: len(reply.text) >= CHAT_SHOWN or not app.generating, "the second reply")
    await snap(pilot, "chat.svg")  # mid-answer, unless the starter's answer was shorter
    app.action_stop_generation()
    await wait_for(lambda: not app.generating, "the second reply to stop")


async def shoot_completion(pilot: Pilot) -> None:
    """completion.svg: the Markdown prompt, continued until COMPLETION_CHARS were added."""
    await pilot.press("f3")
    area = pilot.app.query_one("#completion-text", TextArea)
    area.load_text(COMPLETION_PROMPT)
    pilot.app.query_one(CompletionPane).action_run()  # what ctrl+r does
    enough = len(COMPLETION_PROMPT) + COMPLETION_CHARS
    await shoot_mid_answer(pilot, lambda: len(area.text) >= enough, "completion.svg")


async def shoot_settings(pilot: Pilot) -> None:
    """settings.svg: F6 over the chat; an out-of-range Temperature, and ctrl+s refused for it."""
    app = pilot.app
    app.clear_notifications()  # "Stopped." from the completion would cover the buttons
    await pilot.press("f6")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen), "the settings panel")
    field = app.screen.query_one("#settings-temperature", Input)
    field.focus()
    field.clear()
    await pilot.press(*BAD_TEMPERATURE)
    await pilot.press("ctrl+s")  # refused: names the field, keeps the panel open
    await wait_for(lambda: field.has_class("-invalid"), "Temperature to be marked invalid")
    await snap(pilot, "settings.svg")
    await pilot.press("escape")
    await wait_for(lambda: not isinstance(app.screen, SettingsScreen), "the settings panel to close")


async def open_picker(pilot: Pilot) -> ModelPickerScreen:
    """ctrl+o, then wait until the local list is filled in."""
    app = pilot.app
    app.clear_notifications()
    await pilot.press("ctrl+o")
    await wait_for(lambda: isinstance(app.screen, ModelPickerScreen) and app.screen.entries, "the model list")
    return app.screen  # type: ignore[return-value]


def row_count(picker: ModelPickerScreen, table_id: str) -> int:
    return picker.query_one(f"#{table_id}", DataTable).row_count


async def shoot_picker_local(pilot: Pilot, picker: ModelPickerScreen) -> None:
    """picker-local.svg: "On this machine", the loaded starter model highlighted, with its memory estimate."""
    await wait_for(lambda: row_count(picker, "model-table") == len(picker.entries), "the model table")
    await snap(pilot, "picker-local.svg")


async def shoot_picker_download(pilot: Pilot, picker: ModelPickerScreen) -> None:
    """picker.svg: search the Hub stand-in, list a repo's files, download one; caught part-way."""
    repo_id, filename = HUB_DOWNLOAD
    picker.query_one("#picker-tabs", TabbedContent).active = "picker-hub"
    query = picker.query_one("#hub-query", Input)
    query.focus()
    await pilot.press(*HUB_QUERY, "enter")
    await wait_for(lambda: row_count(picker, "hub-repos"), "the search results")
    repos = picker.query_one("#hub-repos", DataTable)
    listed = [repo[0] for repo in HUB_REPOS]  # by downloads, as the Hub sorts them
    repos.move_cursor(row=listed.index(repo_id))
    await pilot.press("enter")  # list its files
    await wait_for(lambda: row_count(picker, "hub-files"), "the file list")
    files = picker.query_one("#hub-files", DataTable)
    files.move_cursor(row=sorted(HUB_REPOS[listed.index(repo_id)][4]).index(filename))  # by name
    await pilot.press("enter")  # download it

    panel = picker.query_one(HubPanel)
    bar = picker.query_one("#hub-progress", ProgressBar)
    low, high = HUB_SHOWN
    await wait_for(lambda: (bar.percentage or 0) >= low or not panel.downloading, "the download to get going")
    await wait_for(lambda: "left" in str(picker.query_one("#hub-status").render()), "the time left")
    await pilot.pause(0.1)
    if not panel.downloading or (bar.percentage or 0) > high:
        raise RuntimeError("the download got too far before picker.svg was taken: raise HUB_THROTTLE")
    save(pilot.app, "picker.svg")
    await pilot.press("ctrl+x")  # cancel: the picker stays open, the partial file is kept
    await wait_for(lambda: not panel.downloading, "the download to stop")


async def shoot_picker(pilot: Pilot) -> None:
    """Both picker shots in one visit, then close it with Esc (the model stays)."""
    picker = await open_picker(pilot)
    await shoot_picker_local(pilot, picker)
    await shoot_picker_download(pilot, picker)
    await pilot.press("escape")
    await wait_for(lambda: not isinstance(pilot.app.screen, ModelPickerScreen), "the picker to close")


async def shoot_history(pilot: Pilot) -> None:
    """history.svg: F7, a search typed: the conversations with a match, and the matching line."""
    app = pilot.app
    app.clear_notifications()
    await pilot.press("f2", "f7")
    await wait_for(lambda: isinstance(app.screen, HistoryScreen), "the history")
    history = app.screen
    table = history.query_one("#history-table", DataTable)
    try:
        await wait_for(lambda: table.row_count == len(OLDER_CHATS) + 1, "the history list")
    except TimeoutError:
        raise RuntimeError(f"the history lists {[table.get_row_at(i) for i in range(table.row_count)]}") from None
    await pilot.press(*HISTORY_SEARCH)
    await wait_for(lambda: table.row_count == 1, f"the search for {HISTORY_SEARCH!r}")
    await snap(pilot, "history.svg")
    await pilot.press("escape")
    await wait_for(lambda: not isinstance(app.screen, HistoryScreen), "the history to close")


def stand_in(app: LlamaApp, model: ScriptedModel) -> ScriptedModel:
    """`model` named as the stand-in it is, in the chat header and the status bar."""
    model.description = "a scripted stand-in for a reasoning model: the starter does not think"
    app.query_one(StatusBar).show_model(model.name)
    app.chat_pane.show_model(model.description)
    return model


async def shoot_thinking(pilot: Pilot) -> None:
    """thinking.svg: a new chat with the scripted reasoning model: the first reply's thinking
    folded, the second one caught while it thinks."""
    app = pilot.app
    await pilot.press("ctrl+n")
    app.model = stand_in(app, ScriptedModel(THINKING_FIRST, name=THINKING_MODEL))
    first = await send_chat(app, THINKING_ASKED[0])
    await wait_for(lambda: first.has_class("ended") and not app.generating, "the first reply to end")
    hold = threading.Event()
    app.model = stand_in(app, ScriptedModel(THINKING_SECOND, name=THINKING_MODEL, hold=hold))
    second = await send_chat(app, THINKING_ASKED[1])
    await wait_for(lambda: "Assesses" in second.header_text, "the second reply's thinking")
    await snap(pilot, "thinking.svg")
    hold.set()
    await wait_for(lambda: not app.generating, "the second reply to end")


async def main() -> None:
    app = LlamaApp(OPTIONS)
    load_failures: list[str] = []

    def hook(message: Message) -> None:
        if isinstance(message, ModelLoadFailed):
            load_failures.append(message.reason)

    with stand_ins():
        async with app.run_test(size=SIZE, notifications=True, message_hook=hook) as pilot:
            await wait_for(lambda: app.model is not None or load_failures, "the starter model to load")
            if load_failures:
                raise RuntimeError(f"the starter model did not load: {load_failures[0]}")
            await shoot_log(pilot)
            await shoot_chat(pilot)
            await shoot_completion(pilot)
            await pilot.press("f2")  # the dialogs open over the chat
            await shoot_settings(pilot)
            await shoot_picker(pilot)
            await shoot_history(pilot)
            await shoot_thinking(pilot)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (TimeoutError, RuntimeError) as error:
        sys.exit(f"take_screenshots: {error}")
