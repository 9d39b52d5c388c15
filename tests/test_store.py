"""The history store: real SQLite files in tmp_path, real child processes, no mocks.

Behaviour tests run against both SqliteStore and MemoryStore (the fallback must behave the
same); the rest is about the file: migrations, damage, permissions, locks, two processes, kill -9.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llama_tui.engine.conversation import Conversation
from llama_tui.engine.store import (
    ConversationStore,
    MemoryStore,
    SqliteStore,
    StoreError,
    open_store,
)
from llama_tui.engine.store_schema import SCHEMA_V1, SCHEMA_VERSION, fts_query
from llama_tui.engine.store_search import search_phrases

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    made: ConversationStore = SqliteStore(tmp_path / "history.sqlite3") if request.param == "sqlite" else MemoryStore()
    yield made
    made.close()


@pytest.fixture
def reopen(tmp_path: Path) -> Iterator[Callable[[ConversationStore], ConversationStore]]:
    """What is stored, as the next run sees it: for SQLite a second store on the same file
    (after flushing the first); a MemoryStore is its own next run."""
    opened: list[SqliteStore] = []

    def again(store: ConversationStore) -> ConversationStore:
        assert store.flush(timeout=60)
        if isinstance(store, SqliteStore):
            opened.append(SqliteStore(store.path))
            return opened[-1]
        return store

    yield again
    for other in opened:
        other.close()


def saved_chat(store: ConversationStore, *texts: str, model: str = "Tiny", at: float | None = None) -> Conversation:
    """A conversation saved as the app saves it: created empty, then message by message."""
    conversation = Conversation()
    store.create(conversation)
    for number, text in enumerate(texts):
        if number % 2 == 0:
            message = conversation.add("user", text)
        else:
            message = conversation.add("assistant", text, model_name=model)
        store.add_message(conversation.id, message)
    if at is not None:
        conversation.updated_at = at
        store.update_conversation(conversation)
    return conversation


# -- round trips --------------------------------------------------------------------------------


def test_a_branched_conversation_round_trips(
    store: ConversationStore, reopen: Callable[..., ConversationStore]
) -> None:
    chat = Conversation(title="", system_prompt="You are terse.", preset="terse")
    store.create(chat)
    question = chat.add("user", "What is the capital of France?")
    store.add_message(chat.id, question)
    first = chat.add(
        "assistant", "", model_name="Gemma 3 270m", model_ref="starter:", sampling={"temperature": 0.8}, seed=561371
    )
    store.add_message(chat.id, first)
    for text in ("Par", "Paris", "Paris."):  # the reply grows
        first = chat.update(first.id, text=text, thinking="The user asks about France.")
        store.update_message(chat.id, first)
    first = chat.update(first.id, figures={"tokens": 3, "tok_s": 41.5}, stop_reason="eos")
    store.update_message(chat.id, first)
    # Regenerate: a sibling of the first reply, which becomes current...
    second = chat.add("assistant", "It is Paris.", parent_id=question.id, model_name="Other", stop_reason="length")
    store.add_message(chat.id, second)
    follow = chat.add("user", "And Japan?")
    store.add_message(chat.id, follow)
    # ...then the person goes back to the first reply's branch.
    chat.select(first.id)
    store.update_conversation(chat)

    loaded = reopen(store).load(chat.id)
    assert loaded == chat
    assert [m.text for m in loaded.branch()] == ["What is the capital of France?", "Paris."]
    assert loaded.siblings(first.id) == (1, 2) and loaded.siblings(second.id) == (2, 2)
    assert loaded.messages[first.id].figures == {"tokens": 3, "tok_s": 41.5}
    assert loaded.messages[first.id].thinking == "The user asks about France."
    assert loaded.messages[first.id].sampling == {"temperature": 0.8} and loaded.messages[first.id].seed == 561371
    assert loaded.prompt_messages()[0].content == "You are terse."


def test_a_conversation_created_with_messages_keeps_them_all(
    store: ConversationStore, reopen: Callable[..., ConversationStore]
) -> None:
    chat = Conversation(title="Imported")
    root = chat.add("user", "one")
    chat.add("assistant", "two")
    chat.add("assistant", "two again", parent_id=root.id)
    chat.add("user", "three")
    store.create(chat)
    assert reopen(store).load(chat.id) == chat


def test_a_reply_is_saved_as_it_grows(store: ConversationStore, reopen: Callable[..., ConversationStore]) -> None:
    chat = saved_chat(store, "Count, please.", "")
    reply_id = chat.current_id
    assert reply_id is not None
    for text in ("one", "one two", "one two three"):
        store.update_message(chat.id, chat.update(reply_id, text=text))
        assert reopen(store).load(chat.id).messages[reply_id].text == text
    assert reopen(store).load(chat.id).messages[reply_id].stop_reason is None  # it never ended
    assert [s.snippet for s in reopen(store).list("three")] == ["one two three"]  # the index follows
    assert reopen(store).list("four") == []
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        db.close()


def test_a_reply_the_store_lacks_is_added_by_its_update(
    store: ConversationStore, reopen: Callable[..., ConversationStore]
) -> None:
    """As when its add_message failed (a lock, a full disk): the next update heals it."""
    chat = saved_chat(store, "Hello?")
    reply = chat.add("assistant", "Hi", model_name="Tiny")
    store.update_message(chat.id, reply)
    assert reopen(store).load(chat.id) == chat


def test_unknown_ids_and_last_id(store: ConversationStore) -> None:
    assert store.last_id() is None and store.list() == []
    with pytest.raises(KeyError):
        store.load("no-such-id")
    older = saved_chat(store, "older", at=1000.0)
    newer = saved_chat(store, "newer", at=2000.0)
    store.flush()
    assert store.last_id() == newer.id
    store.add_message(older.id, Conversation().add("user", "late"))  # newer again
    store.flush()
    assert store.last_id() == older.id


# -- listing and searching ------------------------------------------------------------------------


def test_list_is_newest_first_with_titles_counts_and_models(store: ConversationStore) -> None:
    a = saved_chat(store, "First question about rivers", "Rivers flow.", model="Alpha", at=1000.0)
    b = saved_chat(store, "  Second\n\nquestion  " + "x" * 100, "Sure.", "More?", "Yes.", model="Beta", at=3000.0)
    c = saved_chat(store, at=2000.0)  # nothing said yet
    store.rename(a.id, "My rivers")
    store.flush()
    listed = store.list()
    assert [s.id for s in listed] == [b.id, c.id, a.id]
    assert [s.title for s in listed] == [b.display_title, "New chat", "My rivers"]
    assert listed[0].title.startswith("Second question xxx") and listed[0].title.endswith("…")
    assert [s.message_count for s in listed] == [4, 0, 2]
    assert [s.model_name for s in listed] == ["Beta", "", "Alpha"]
    assert [s.updated_at for s in listed] == [3000.0, 2000.0, 1000.0]
    assert [s.snippet for s in listed] == ["", "", ""]
    assert [s.id for s in store.list(limit=2)] == [b.id, c.id]
    assert [s.id for s in store.list(limit=2, offset=2)] == [a.id]
    assert store.list(offset=5) == []


def test_a_title_leaves_out_code_fence_lines(store: ConversationStore) -> None:
    chat = saved_chat(store, "```python\nimport math\ndef area(r):\n```\nWhy is this slow?", "It is not.")
    store.flush()
    assert store.list()[0].title == chat.display_title == "import math def area(r): Why is this slow?"


def test_the_title_follows_the_current_branch(store: ConversationStore) -> None:
    chat = saved_chat(store, "Original first message", "Reply.")
    edited = chat.add("user", "Edited first message", parent_id=None)  # an edit: a new root
    store.add_message(chat.id, edited)
    store.flush()
    assert store.list()[0].title == "Edited first message"
    chat.select_sibling(edited.id, -1)
    store.update_conversation(chat)
    store.flush()
    assert store.list()[0].title == "Original first message" == chat.display_title
    first = chat.branch()[0]
    store.update_message(chat.id, chat.update(first.id, text="Changed in place"))
    store.flush()
    assert store.list()[0].title == "Changed in place"
    store.delete_messages(chat.id, [first.id])  # the current branch is gone: the other root's
    store.flush()
    assert store.list()[0].title == "Edited first message"


def test_rename(store: ConversationStore, reopen: Callable[..., ConversationStore]) -> None:
    chat = saved_chat(store, "Tell me about owls", "Owls are birds.", at=5.0)
    store.rename(chat.id, "Owls")
    assert reopen(store).load(chat.id).title == "Owls"
    assert [(s.title, s.updated_at) for s in reopen(store).list()] == [("Owls", 5.0)]  # renaming is no activity
    store.rename(chat.id, "")
    assert reopen(store).list()[0].title == "Tell me about owls"


def test_search_finds_messages_with_a_snippet(store: ConversationStore) -> None:
    long_text = (
        "Intro words here.\n\n" * 20 + "The albatross glides over\nthe Southern Ocean for hours. " + "Tail. " * 30
    )
    birds = saved_chat(store, "Tell me about seabirds", long_text, at=2000.0)
    fish = saved_chat(store, "Tell me about fish", "Cod swim in the ocean.", at=3000.0)
    saved_chat(store, "Something else", "Nothing here.", at=1000.0)
    store.flush()

    found = store.list("albatross")
    assert [s.id for s in found] == [birds.id]
    hit = found[0]
    assert hit.title == "Tell me about seabirds" and hit.message_count == 2
    assert "albatross" in hit.snippet and len(hit.snippet) < 200  # a line, not the whole message
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and "\n" not in hit.snippet
    assert "The albatross glides over the Southern Ocean" in hit.snippet
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["albatross"]
    ocean = store.list("ocean")[1]
    assert [ocean.snippet[a:b] for a, b in ocean.highlights] == ["Ocean"]

    assert [s.id for s in store.list("OCEAN")] == [fish.id, birds.id]  # any case, newest first
    assert [s.id for s in store.list("ocean cod")] == [fish.id]  # every word, in one message
    assert store.list("albatross cod") == []  # not in one message
    typing = store.list("albat")  # the last word as a prefix, while typing
    assert [s.id for s in typing] == [birds.id]
    assert [typing[0].snippet[a:b] for a, b in typing[0].highlights] == ["albatross"]  # the whole word
    assert [s.id for s in store.list("Tell about fish")] == [fish.id]


def test_search_ignores_case_and_accents(store: ConversationStore) -> None:
    chat = saved_chat(store, "Un café crème à Zürich, s'il vous plaît")
    store.flush()
    for search in ("cafe", "CAFÉ", "creme zurich", "ZÜRICH", "plait"):
        assert [s.id for s in store.list(search)] == [chat.id], search


@pytest.mark.parametrize(
    "search",
    ['"', '""', "'", "AND", "OR NOT", "NEAR(a b)", "*", "a*", "(", ")", "^x", "text:abc", "-x", "{a b}",
     "...", "—", "🙂", 'foo"bar', "don't", "x OR", "a AND (b", "\\", "%_", "'; DROP TABLE messages; --"],
)
def test_search_text_never_breaks_the_query(store: ConversationStore, search: str) -> None:
    saved_chat(store, "Cats AND dogs (and NEAR birds) \"quoted\" don't text:abc", "Sure.")
    store.flush()
    found = store.list(search)  # no exception, whatever was typed
    assert isinstance(found, list) and len(store.list()) == 1


def test_search_operators_are_plain_words_and_punctuation_finds_nothing(store: ConversationStore) -> None:
    chat = saved_chat(store, "Cats AND dogs, don't they? A \"quoted phrase\" here.", "Yes.")
    store.flush()
    assert [s.id for s in store.list("AND")] == [chat.id]  # a word, not an operator
    assert [s.id for s in store.list('"quoted phrase"')] == [chat.id]
    assert [s.id for s in store.list("don't")] == [chat.id]
    assert store.list("dogs OR wolves") == []  # OR is a word too: "or" and "wolves" are not there
    for punctuation in ("...", "?!", '"', "—", "()", "*"):
        assert store.list(punctuation) == [], punctuation
    assert len(store.list("   ")) == 1  # an empty search lists everything


def test_a_search_becomes_quoted_phrases() -> None:
    assert fts_query('cats AND "dogs" don\'t') == '"cats" "AND" """dogs""" "don\'t"*'
    assert fts_query("NEAR(a b)") == '"NEAR(a" "b)"*'
    assert fts_query(" ... -- ?! ") is None and fts_query("") is None
    assert search_phrases('cats AND "dogs" don\'t Zürich') == [["cats"], ["and"], ["dogs"], ["don", "t"], ["zurich"]]


# -- deleting ---------------------------------------------------------------------------------------


def test_delete_conversation(store: ConversationStore, reopen: Callable[..., ConversationStore]) -> None:
    gone = saved_chat(store, "Remember the pelican", "Pelicans.")
    kept = saved_chat(store, "Remember the heron", "Herons.")
    store.delete_conversation(gone.id)
    after = reopen(store)
    assert [s.id for s in after.list()] == [kept.id]
    assert after.list("pelican") == [] and [s.id for s in after.list("heron")] == [kept.id]
    with pytest.raises(KeyError):
        after.load(gone.id)
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            assert db.execute("SELECT count(*) FROM messages").fetchone() == (2,)
            db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


def test_delete_messages_removes_what_came_after(
    store: ConversationStore, reopen: Callable[..., ConversationStore]
) -> None:
    chat = saved_chat(store, "Q1", "A1", "Q2 about walruses", "A2", "Q3")
    q2 = chat.branch()[2]
    regenerated = chat.add("assistant", "A2 again", parent_id=q2.id)
    store.add_message(chat.id, regenerated)
    doomed = chat.delete(q2.id)  # the app changes its copy, then tells the store
    store.delete_messages(chat.id, [q2.id])
    store.update_conversation(chat)
    loaded = reopen(store).load(chat.id)
    assert loaded == chat and len(doomed) == 4
    assert [m.text for m in loaded.branch()] == ["Q1", "A1"]
    assert reopen(store).list()[0].message_count == 2
    assert reopen(store).list("walruses") == []


def test_deleting_messages_without_saving_the_current_branch_still_loads(
    store: ConversationStore, reopen: Callable[..., ConversationStore]
) -> None:
    """A crash between deleting and saving the new current message: the branch moves to a
    message that exists."""
    chat = saved_chat(store, "Q1", "A1", "Q2", "A2")
    store.delete_messages(chat.id, [chat.branch()[2].id])
    loaded = reopen(store).load(chat.id)
    assert [m.text for m in loaded.branch()] == ["Q1", "A1"]


def test_a_long_conversation_can_be_deleted(tmp_path: Path) -> None:
    """Deleting the root of a 1200-message chain would cascade 1200 levels (SQLite stops at 1000)."""
    store = SqliteStore(tmp_path / "history.sqlite3")
    chats = [Conversation(), Conversation()]
    for chat in chats:
        for n in range(1200):
            chat.add("user" if n % 2 == 0 else "assistant", f"message {n}")
        store.create(chat)
    store.delete_messages(chats[0].id, [chats[0].branch()[0].id])
    store.delete_conversation(chats[1].id)
    assert store.flush(timeout=120) and store.problems == []
    assert store.load(chats[0].id).messages == {} and store.list()[0].message_count == 0
    assert [s.id for s in store.list()] == [chats[0].id]
    store.close()


# -- the file ------------------------------------------------------------------------------------


def test_a_new_file_uses_wal_foreign_keys_and_the_latest_schema(tmp_path: Path) -> None:
    store, message = open_store(tmp_path / "data" / "history.sqlite3")
    assert isinstance(store, SqliteStore) and message is None
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    with store._reading() as db:
        assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    store.close()


def test_the_default_place_is_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_TUI_HOME", str(tmp_path))
    store, message = open_store()
    assert message is None
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "data" / "history.sqlite3"
    store.close()


def test_a_first_schema_file_is_migrated_and_searchable(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:  # a file as version 1 left it
        db.executescript(SCHEMA_V1)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO conversations VALUES ('c1', '', 100.0, 200.0, 'Be brief.', '', 'm2')")
        db.execute(
            "INSERT INTO messages (id, conversation_id, parent_id, role, text, created_at, updated_at) "
            "VALUES ('m1', 'c1', NULL, 'user', 'Where do narwhals live?', 100.0, 100.0)"
        )
        db.execute(
            "INSERT INTO messages (id, conversation_id, parent_id, role, text, created_at, updated_at, model_name, "
            "figures) VALUES ('m2', 'c1', 'm1', 'assistant', 'In the Arctic.', 101.0, 200.0, 'Old model', "
            "'{\"tokens\": 4}')"
        )
    db.close()
    store = SqliteStore(path)
    assert [(s.id, s.title, s.model_name, s.message_count) for s in store.list("arctic")] == [
        ("c1", "Where do narwhals live?", "Old model", 2)
    ]
    assert store.list("narwhal")[0].snippet == "Where do narwhals live?"
    loaded = store.load("c1")
    assert [m.text for m in loaded.branch()] == ["Where do narwhals live?", "In the Arctic."]
    assert loaded.messages["m2"].figures == {"tokens": 4} and loaded.system_prompt == "Be brief."
    store.add_message("c1", loaded.add("user", "And penguins?"))  # the triggers index new text
    store.flush()
    assert [s.id for s in store.list("penguins")] == ["c1"]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()


def test_a_newer_schema_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    before = path.read_bytes()
    store, message = open_store(path)
    assert isinstance(store, MemoryStore)
    assert message is not None and message.startswith("History is kept in memory only this time")
    assert "newer llama-tui" in message
    assert path.read_bytes() == before


def _check_moved_aside(path: Path, before: bytes, message: str | None) -> None:
    asides = sorted(path.parent.glob("history.sqlite3.corrupt-*"))
    assert [p.name for p in asides if not p.name.endswith(("-wal", "-shm"))] == [asides[0].name]
    assert asides[0].read_bytes() == before  # byte for byte: never deleted, never changed
    assert message is not None and str(asides[0]) in message and "new, empty history" in message


def test_a_file_of_garbage_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(os.urandom(64 * 1024))
    before = path.read_bytes()
    store, message = open_store(path)
    assert isinstance(store, SqliteStore)
    _check_moved_aside(path, before, message)
    chat = saved_chat(store, "A fresh start")
    store.flush()
    assert store.load(chat.id) == chat and len(store.list()) == 1
    store.close()


def test_a_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    full = SqliteStore(path)
    for n in range(300):
        saved_chat(full, f"Question {n} " + "lorem ipsum " * 50, "Answer " * 100)
    full.close()  # checkpoints the WAL into the file
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)
    before = path.read_bytes()
    store, message = open_store(path)
    assert isinstance(store, SqliteStore)
    _check_moved_aside(path, before, message)
    assert store.list() == []
    store.close()


def run_as_plain_user(script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a Python script where file permissions hold: tests run as root, so through capsh
    dropping the capabilities that let root ignore them."""
    command = [sys.executable, "-c", script, *argv]
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: file permissions cannot be enforced")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", shlex.join(command)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=child_env())


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


_OPEN_AND_USE = """
import sys
from pathlib import Path
from llama_tui.engine.conversation import Conversation
from llama_tui.engine.store import open_store
store, message = open_store(Path(sys.argv[1]))
chat = Conversation()
store.create(chat)
store.add_message(chat.id, chat.add("user", "Hello from a read-only place"))
store.flush()
print(type(store).__name__, len(store.list("hello")))
print(message)
"""


@pytest.mark.parametrize("existing", [False, True], ids=["no-file-yet", "existing-file"])
def test_a_read_only_folder_gives_an_in_memory_history(tmp_path: Path, existing: bool) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "history.sqlite3"
    if existing:
        store = SqliteStore(path)
        saved_chat(store, "Kept from before")
        store.close()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    folder.chmod(0o555)
    try:
        done = run_as_plain_user(_OPEN_AND_USE, str(path))
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.splitlines()[:2]
    assert kind == "MemoryStore 1"  # and it works
    assert message.startswith(f"History is kept in memory only this time: {path} cannot be used (")
    assert "read-only" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_file_locked_by_another_program_gives_an_in_memory_history(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    SqliteStore(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")  # keeps every other connection out
    other.execute("BEGIN EXCLUSIVE")
    try:
        store, message = open_store(path, busy_timeout=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert isinstance(store, MemoryStore)
    assert message is not None and "locked" in message and "in memory only" in message


def test_writes_wait_for_a_lock_on_the_writer_thread_and_failures_are_reported_once(tmp_path: Path) -> None:
    problems: list[str] = []
    store = SqliteStore(tmp_path / "history.sqlite3", on_problem=problems.append, busy_timeout=0.05)
    chat = saved_chat(store, "Before the lock")
    assert store.flush(timeout=60)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing, for longer than busy_timeout
    reply = chat.add("assistant", "")
    store.add_message(chat.id, reply)  # returns at once: the caller never waits for the lock
    store.update_message(chat.id, chat.update(reply.id, text="Par"))
    store.rename(chat.id, "Lost title")
    assert store.list()[0].message_count == 1  # reads go on meanwhile (WAL)
    assert store.flush(timeout=60)
    assert len(problems) == 1 and problems == store.problems  # three failures, one message
    assert problems[0].startswith("History could not be saved: another program kept it locked for more than 0.05 s")
    other.execute("ROLLBACK")
    other.close()
    store.update_message(chat.id, chat.update(reply.id, text="Paris."))  # later writes keep trying...
    assert store.flush(timeout=60)
    loaded = store.load(chat.id)  # ...and the reply lost with its first writes is back
    assert [m.text for m in loaded.branch()] == ["Before the lock", "Paris."] and loaded.title == ""
    assert len(problems) == 1
    store.close()


def test_worker_threads_read_while_the_writer_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "history.sqlite3")
    chat = saved_chat(store, "Start")
    store.flush()
    counts: dict[int, list[int]] = {}
    failures: list[BaseException] = []

    def read(number: int) -> None:
        try:
            for _ in range(50):
                counts.setdefault(number, []).append(store.list()[0].message_count)
                assert len(store.load(chat.id)) >= counts[number][-1]
        except BaseException as error:  # noqa: BLE001 -- the test thread reports it below
            failures.append(error)

    readers = [threading.Thread(target=read, args=(number,)) for number in range(3)]
    for reader in readers:
        reader.start()
    for n in range(200):
        store.add_message(chat.id, chat.add("user", f"message {n}"))
    for reader in readers:
        reader.join()
    assert store.flush(timeout=60) and failures == [] and store.problems == []
    for seen in counts.values():  # each reader sees the commits in order, never a torn state
        assert seen == sorted(seen) and seen[0] >= 1 and seen[-1] <= 201
    assert store.load(chat.id) == chat
    store.close()


def test_reading_a_vanished_folder_raises_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = SqliteStore(folder / "history.sqlite3")
    shutil.rmtree(folder)
    with pytest.raises(StoreError, match="Cannot read the history in"):
        store.list()
    store.close()


def test_many_open_a_new_file_at_once(tmp_path: Path) -> None:
    # Switching a new file to WAL while another connection does the same can fail at once with
    # "database is locked" (no busy wait): about 1 open in 100 did before the store waited itself.
    for round_number in range(300):
        path = tmp_path / f"history-{round_number}.sqlite3"
        start, errors = threading.Barrier(4), []

        def open_store(path: Path = path, start: threading.Barrier = start, errors: list = errors) -> None:
            start.wait()
            try:
                SqliteStore(path).close()
            except sqlite3.Error as error:
                errors.append(error)

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_number}"


# -- processes ----------------------------------------------------------------------------------------

_WRITER = """
import sys, time
from pathlib import Path
from llama_tui.engine.conversation import Conversation
from llama_tui.engine.store import SqliteStore
path, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
store = SqliteStore(path)  # both open a new file at once: both may want to create the schema
chat = Conversation(title=name)
store.create(chat)
for n in range(200):
    store.add_message(chat.id, chat.add("user" if n % 2 == 0 else "assistant", f"{name} says {n} zebra"))
    if n % 40 == 0:
        store.list("zebra")
        store.update_conversation(chat)
assert store.flush(timeout=300)
print("problems", store.problems, flush=True)
store.close()
print("done", chat.id, flush=True)
"""


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    path, go = tmp_path / "history.sqlite3", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(go), name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )
        for name in ("left", "right")
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    go.touch()  # both start writing now
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert "problems []" in out
    ids = [out.split()[-1] for out, _ in outputs]
    store = SqliteStore(path)
    for chat_id, name in zip(ids, ("left", "right"), strict=True):
        chat = store.load(chat_id)
        assert chat.title == name
        assert [m.text for m in chat.branch()] == [f"{name} says {n} zebra" for n in range(200)]
    assert sorted(s.message_count for s in store.list("zebra")) == [200, 200]
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (400,)
        db.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    db.close()


_GROWING_REPLY = """
import sys, time
from pathlib import Path
from llama_tui.engine.conversation import Conversation
from llama_tui.engine.store import SqliteStore
flush_each = sys.argv[2] == "flush"
store = SqliteStore(Path(sys.argv[1]))
chat = Conversation()
store.create(chat)
store.add_message(chat.id, chat.add("user", "Tell me a long story."))
reply = chat.add("assistant", "", model_name="Storyteller")
store.add_message(chat.id, reply)
store.flush()
print("started", chat.id, reply.id, flush=True)
text = ""
for n in range(100_000):
    text += f"word{n} "
    reply = chat.update(reply.id, text=text)
    store.update_message(chat.id, reply)  # as the app does, several times a second
    if flush_each:
        store.flush()  # then it is committed: what is printed is on disk
    print("written", len(text), flush=True)
    time.sleep(0.2)
"""


def story(length: int) -> str:
    text, n = "", 0
    while len(text) < length:
        text += f"word{n} "
        n += 1
    return text


@pytest.mark.parametrize("mode", ["flush", "no-flush"])
def test_kill_9_mid_reply_loses_at_most_the_last_second(tmp_path: Path, mode: str) -> None:
    """The child grows a reply every 0.2 s and prints what it wrote; the parent kills it
    with SIGKILL mid-reply. With "flush" each printed length was committed before it was
    printed, so all of it must be there. With "no-flush" (as the app: it never waits), what
    was written at least 1 s before the kill must be there."""
    path = tmp_path / "history.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _GROWING_REPLY, str(path), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )
    assert child.stdout is not None
    _, chat_id, reply_id = child.stdout.readline().split()
    written: list[tuple[float, int]] = []  # (when the parent read it, length)
    while len(written) < 12:
        line = child.stdout.readline()
        assert line.startswith("written"), line + child.stderr.read() if child.stderr else ""
        written.append((time.monotonic(), int(line.split()[1])))
    child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    store = SqliteStore(path)
    chat = store.load(chat_id)
    store.close()
    assert [m.text for m in chat.branch()][:1] == ["Tell me a long story."]
    reply = chat.messages[reply_id]
    assert chat.current_id == reply_id and reply.stop_reason is None
    assert story(len(reply.text)) == reply.text  # a prefix of what was generated, whole words
    if mode == "flush":
        assert len(reply.text) >= written[-1][1]
    else:
        settled = [length for read_at, length in written if read_at <= killed_at - 1.0]
        assert settled, "the kill came less than a second after the first write"
        assert len(reply.text) >= settled[-1]
