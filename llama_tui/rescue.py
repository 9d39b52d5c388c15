"""What the user wrote, kept when an unexpected error stops the app.

When an error nothing else handled ends the app, the app gathers the text in its boxes and
the conversation into a `Rescue`; once the terminal is given back, it is saved to a file in
the data dir (or, if that fails, printed) with a short report, and the traceback is in the
log file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from llama_tui import paths


@dataclass
class Rescue:
    error: str
    """The error, as "Type: message"."""
    unsent: list[tuple[str, str]] = field(default_factory=list)
    """(where, text) for text typed but not sent: the message box, the Completion tab."""
    conversation: list[tuple[str, str]] = field(default_factory=list)
    """(role, text) for the chat so far, the reply being written included."""
    saved_to: Path | None = None

    @property
    def empty(self) -> bool:
        return not self.unsent and not self.conversation

    def markdown(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        parts = [f"# Rescued by llama-tui on {when}\n\nThe app stopped on: {self.error}\n"]
        for where, text in self.unsent:
            parts.append(f"## Not sent yet: {where}\n\n{text}\n")
        if self.conversation:
            parts.append("## The conversation\n")
            parts += [f"**{role}:**\n\n{text}\n" for role, text in self.conversation]
        return "\n".join(parts)

    def save(self, folder: Path | None = None) -> None:
        """Write the markdown to a new file; on failure `saved_to` stays None."""
        folder = folder or paths.data_dir() / "rescued"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / time.strftime("rescued-%Y%m%d-%H%M%S.md")
            # Only for the user's eyes: their conversation may be private.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
                file.write(self.markdown())
        except OSError:
            return
        self.saved_to = path

    def report(self) -> str:
        """What is printed once the terminal is back."""
        log = paths.log_file()
        lines = [f"llama-tui stopped on an unexpected error: {self.error}",
                 f"The traceback is in {log}." if os.access(log, os.W_OK) else "(There is no log file.)"]
        if self.empty:
            return "\n".join(lines) + "\n"
        if self.saved_to is not None:
            lines.append(f"What you had written is saved in {self.saved_to}")
            return "\n".join(lines) + "\n"
        lines.append("What you had written could not be saved to a file; here it is:\n")
        return "\n".join(lines) + "\n" + self.markdown()
