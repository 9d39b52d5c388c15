"""The history from the command line, without the full-screen app.

    llama-tui history [--search TEXT]            the saved conversations, newest first
    llama-tui export ID|last [--format md|json] [-o FILE] [--thinking]
    llama-tui import FILE.json                   ours, or a plain OpenAI messages list

They read and write the same store as the app (engine.store), so they work while it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from llama_tui.engine.export import import_conversation, to_json_text, to_markdown
from llama_tui.engine.store import ConversationStore, open_store

COMMANDS = ("history", "export", "import")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser("history", help="print the saved conversations, newest first")
    history.add_argument("--search", metavar="TEXT", default="", help="only those with a message matching TEXT")
    export = commands.add_parser("export", help="print or save a conversation (its current branch)")
    export.add_argument("conversation", metavar="ID|last", help="an id from `llama-tui history`, or last")
    export.add_argument("--format", choices=["md", "json"], default="md",
                        help="md: Markdown to read (default); json: OpenAI-style messages plus llama-tui's details")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of printing")
    export.add_argument("--thinking", action="store_true", help="include a reasoning model's thinking (Markdown)")
    imported = commands.add_parser(
        "import", help="add a conversation from a JSON file (from export, or OpenAI messages)"
    )
    imported.add_argument("file", type=Path, metavar="FILE.json")


def run(args: argparse.Namespace) -> int:
    store, problem = open_store()
    if problem:
        sys.stderr.write(f"llama-tui: {problem}\n")
    try:
        if args.command == "history":
            return _history(store, args.search)
        if args.command == "export":
            return _export(store, args.conversation, args.format, args.output, args.thinking)
        return _import(store, args.file)
    finally:
        store.flush(timeout=10)
        store.close()


def _history(store: ConversationStore, search: str) -> int:
    rows = store.list(search or None, limit=100_000)
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.updated_at))
        title = " ".join(row.title.split())
        print(f"{row.id}  {when}  {row.model_name or '-'}  {row.message_count}  {title}")
        if search and row.snippet:
            print(f"    {' '.join(row.snippet.split())}")
    if not rows:
        sys.stderr.write("No conversation matches.\n" if search else "No saved conversations yet.\n")
    return 0


def _export(store: ConversationStore, which: str, form: str, output: Path | None, thinking: bool) -> int:
    conversation_id = store.last_id() if which == "last" else which
    if conversation_id is None:
        sys.stderr.write("llama-tui: there are no saved conversations to export.\n")
        return 1
    try:
        conversation = store.load(conversation_id)
    except KeyError:
        sys.stderr.write(f"llama-tui: there is no conversation {which} (see `llama-tui history`).\n")
        return 1
    text = to_json_text(conversation) if form == "json" else to_markdown(conversation, include_thinking=thinking)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        sys.stderr.write(f"llama-tui: cannot write {output}: {error.strerror or error}\n")
        return 1
    sys.stderr.write(f"Wrote {conversation.display_title!r} to {output}\n")
    return 0


def _import(store: ConversationStore, path: Path) -> int:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        conversation = import_conversation(data)
    except OSError as error:
        sys.stderr.write(f"llama-tui: cannot read {path}: {error.strerror or error}\n")
        return 1
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        sys.stderr.write(f"llama-tui: {path} is not JSON: {error}\n")
        return 1
    except ValueError as error:
        sys.stderr.write(f"llama-tui: cannot import {path}: {error}\n")
        return 1
    store.create(conversation)
    print(conversation.id)
    sys.stderr.write(f"Imported {conversation.display_title!r} ({len(conversation)} messages); "
                     f"`llama-tui --resume {conversation.id}` opens it.\n")
    return 0
