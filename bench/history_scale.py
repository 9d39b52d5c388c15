"""How the history store copes with a large history: listing, searching, opening, loading.

What:
  generates a store of 10,000 conversations (~10 messages each: user messages ~15 words,
  replies ~120 words, lognormal; some regenerated replies) in a temporary folder, written
  in bulk through the store's own SQL (the FTS5 triggers index it as it goes), then times,
  as the median of --runs runs (interleaved):
  open        SqliteStore(path): journal mode, quick_check (reads every page), migrations
  list        the newest 500 conversations (titles, counts, models), and a page far down
  search      a common, a middling and a rare word, two words, and a 3-letter prefix,
              newest 500 matching conversations with their snippets
  load        one conversation
  append      a message handed to the writer thread and committed (flush), per message

Why: the issue asks for a history of 10,000 conversations to list in < 200 ms and search
in < 100 ms; this measures it (tests do not assert times).

    .venv/bin/python bench/history_scale.py [--conversations 10000] [--runs 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import benchlib
from llama_tui.engine import store_codec
from llama_tui.engine.conversation import Conversation, Message, Role, new_id
from llama_tui.engine.store import SqliteStore
from llama_tui.engine.store_schema import REFRESH_TITLE, fts_query

COMMON = (
    "the of and to a in is it you that was for on are with as I his they be at one have this from or had by "
    "not word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him two "
    "has look more day could go come did number sound no most people my over know water than call first who "
    "may down side been now find any new work part take get place made live where after back little only"
).split()


ROLES: tuple[tuple[Role, int], ...] = (("user", 15), ("assistant", 120))
"""Each turn: a user message of ~15 words, a reply of ~120 (medians)."""


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    """Common English words first, then made-up words (ranked: frequency falls as 1/rank)."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    made: set[str] = set()
    while len(made) < size - len(COMMON):
        length = rng.randint(3, 11)
        made.add("".join(rng.choices(letters, weights=range(26, 0, -1), k=length)))
    shuffled = sorted(made)  # a set's order changes with the hash seed: sort, then shuffle
    rng.shuffle(shuffled)
    return COMMON + shuffled


def text_of(rng: random.Random, words: list[str], weights: list[float], median_words: int) -> str:
    count = max(1, min(int(rng.lognormvariate(math.log(median_words), 0.7)), median_words * 8))
    chosen = rng.choices(words, cum_weights=weights, k=count)
    sentences, start = [], 0
    while start < count:
        length = rng.randint(6, 18)
        sentence = " ".join(chosen[start : start + length])
        sentences.append(sentence[:1].upper() + sentence[1:] + ".")
        start += length
    return " ".join(sentences)


def generate(path: Path, conversations: int, seed: int = 1) -> dict[str, object]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    cumulative, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1 / rank
        cumulative.append(total)
    SqliteStore(path).close()  # the schema, as the app makes it
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")  # a benchmark fixture: no need to survive a crash
    db.execute("BEGIN")
    start_time, messages_written = time.time() - 365 * 86400, 0
    for number in range(conversations):
        when = start_time + number * 365 * 86400 / conversations
        chat = Conversation(created_at=when, updated_at=when)
        turns = max(1, min(int(rng.gauss(5, 2.5)), 15))
        parent: str | None = None
        rows = []
        for _ in range(turns):
            for role, median in ROLES:
                when += rng.uniform(5, 120)
                model = "Gemma 3 270m" if role == "assistant" else ""
                text = text_of(rng, words, cumulative, median)
                message = Message(new_id(), parent, role, text, when, when, model_name=model)
                rows.append(store_codec.message_row(chat.id, message))
                if role == "assistant" and rng.random() < 0.1:  # a regenerated reply: a sibling
                    text = text_of(rng, words, cumulative, median)
                    sibling = Message(new_id(), parent, "assistant", text, when + 1, when + 1, model_name=model)
                    rows.append(store_codec.message_row(chat.id, sibling))
                parent = message.id
        chat.current_id, chat.updated_at = parent, when
        db.execute(store_codec.INSERT_CONVERSATION, store_codec.conversation_row(chat))
        db.executemany(store_codec.INSERT_MESSAGE, rows)
        db.execute(REFRESH_TITLE, (chat.id,))
        messages_written += len(rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"conversations": conversations, "messages": messages_written, "words": words}


def timed(action: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU milliseconds (the CPU time of this process moves less with other load)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="make the store in this folder and keep it")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="history-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "history.sqlite3"
    for old in folder.glob("history.sqlite3*"):
        old.unlink()
    generate_ms, _, made = timed(lambda: generate(path, args.conversations))
    assert isinstance(made, dict)
    words: list[str] = made.pop("words")
    size = path.stat().st_size / 2**20
    print(f"generated {made['conversations']} conversations, {made['messages']} messages, {size:.0f} MiB "
          f"in {generate_ms / 1000:.1f} s ({path})")

    store = SqliteStore(path)
    newest = store.list(limit=1)[0].id
    searches = {
        "common word": words[1],  # "of"
        "middling word": words[300],
        "rare word": words[8000],
        "two words": f"{words[1]} {words[300]}",
        "prefix (3 letters)": words[300][:3],
    }
    with sqlite3.connect(path) as db:  # how many messages each search matches, for context
        share = {
            text: db.execute(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (fts_query(text),)
            ).fetchone()[0]
            / made["messages"]  # type: ignore[operator]
            for text in searches.values()
        }
    db.close()
    actions: dict[str, Callable[[], object]] = {
        "open (quick_check, migrate)": lambda: SqliteStore(path).close(),
        "list newest 500": lambda: store.list(),
        "list 500 from 5000 on": lambda: store.list(offset=5000),
        **{
            f"search {kind}: {text!r} ({share[text]:.1%} of messages)": partial(store.list, text)
            for kind, text in searches.items()
        },
        "load a conversation": lambda: store.load(newest),
    }
    times: dict[str, list[float]] = {name: [] for name in actions}
    cpu_times: dict[str, list[float]] = {name: [] for name in actions}
    found: dict[str, int] = {}
    for _ in range(args.runs):  # interleaved, so a busy moment hits every figure alike
        for name, action in actions.items():
            elapsed, cpu, result = timed(action)
            times[name].append(elapsed)
            cpu_times[name].append(cpu)
            if isinstance(result, list):
                found[name] = len(result)

    chat = store.load(newest)
    appends = 500
    started = time.perf_counter()
    for n in range(appends):
        store.add_message(chat.id, chat.add("user", f"appended message {n}"))
    store.flush()
    append_ms = (time.perf_counter() - started) * 1000 / appends
    store.close()

    rows: list[list[object]] = [
        [
            name,
            benchlib.fmt(statistics.median(values)),
            benchlib.fmt(max(values)),
            benchlib.fmt(statistics.median(cpu_times[name])),
            found.get(name, ""),
        ]
        for name, values in times.items()
    ]
    rows.append(["append a message (writer thread, committed)", benchlib.fmt(append_ms, 2), "", "", ""])
    benchlib.print_table(["what", "median ms", "max ms", "median CPU ms", "results"], rows)
    benchlib.write_results(
        "history_scale",
        {
            **made,
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "generate_s": round(generate_ms / 1000, 1),
            "runs": args.runs,
            "median_ms": {name: statistics.median(values) for name, values in times.items()},
            "max_ms": {name: max(values) for name, values in times.items()},
            "median_cpu_ms": {name: statistics.median(values) for name, values in cpu_times.items()},
            "results": found,
            "append_ms_per_message": append_ms,
            "targets_ms": {"list newest 500": 200, "search": 100},
        },
    )
    if args.keep is None:
        for file in folder.glob("history.sqlite3*"):
            file.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
