"""A TextArea whose editing keys act in the order they were typed.

TextArea's own keys (Home, End, ctrl+u, ctrl+w, ctrl+k, backspace, the arrows...) are
bindings, and Textual runs a widget's non-priority bindings only once the key has bubbled
up to the app, a message queue at a time. Keys that arrive in one read from the terminal
(a fast typist over ssh, a paste without bracketed paste, a busy app) are all queued at the
box first, so the letters after such a key were inserted before it acted: `hello`, Home,
`X` gave `helloX`. Here the box runs its own bindings as each key arrives.
"""

from __future__ import annotations

from textual import events
from textual.widgets import TextArea


class TextBox(TextArea):
    async def _on_key(self, event: events.Key) -> None:
        # Textual calls each class's _on_key in turn, subclasses first: a subclass's own
        # handling (the message box's Enter, ↑ recall) comes before this.
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            # run_action respects check_action (a read-only box refuses edits) and says
            # whether the action ran; if not, the key goes on as before.
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
