"""The llama-tui application: tabs, status bar, the model, the live settings, the history store.

The UI never touches llama.cpp or a server: it talks to a `ModelBackend` from thread workers,
and the workers only hand results back (messages, or the ReplyBuffer), never widgets. The app
owns the live settings, the model and the store; its panes ask for replies with messages
(ui/messages.py) and the app answers them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import replace

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.events import Print
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane, TextArea
from textual.worker import get_current_worker

from llama_tui import paths
from llama_tui.engine.backend import GenerationError, ModelBackend, ModelBusy, ModelClosed, PromptError
from llama_tui.engine.config import (
    GPU_INSTALL_HINT,
    ConfigSaveError,
    add_recent_model,
    gpu_offload_supported,
    remember_model_in_file,
    remember_preset_for_model,
    save_changes,
)
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import GenerationEvent, GenerationStats
from llama_tui.engine.model import ModelLoadError
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.opening import open_model
from llama_tui.engine.presets import NO_PRESET, default_preset, effective
from llama_tui.engine.saved_contexts import SavedContexts
from llama_tui.engine.settings import RELOAD_FIELDS, SETTINGS, Settings
from llama_tui.engine.store import ConversationStore, MemoryStore, open_store
from llama_tui.launch import LaunchOptions
from llama_tui.rescue import Rescue
from llama_tui.text import neutralise_controls
from llama_tui.ui.chat_pane import ChatPane
from llama_tui.ui.completion_pane import CompletionPane
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.history_screen import HistoryResult, HistoryScreen
from llama_tui.ui.log_pane import LogPane, PostToAppHandler
from llama_tui.ui.messages import (
    ChatCleared,
    DownloadStateChanged,
    GenerationEnded,
    GenerationRefused,
    GenerationRequested,
    GenerationStarted,
    LoadStateChanged,
    LogLinesReady,
    ModelLoaded,
    ModelLoadFailed,
    PresetChosen,
    ReplyProgressed,
    ReplyReady,
    StoreOpened,
    StoreProblem,
)
from llama_tui.ui.reply_buffer import ReplyBuffer
from llama_tui.ui.settings_screen import SettingsScreen
from llama_tui.ui.status_bar import StatusBar
from llama_tui.ui.terminal_input import use_paste_safe_parser

log = logging.getLogger(__name__)


class LlamaApp(App[None]):
    CSS_PATH = "../styles.tcss"
    TITLE = "llama-tui"
    BINDINGS = [
        Binding("escape", "stop_generation", "Stop", id="app.stop", tooltip="Stop the reply, keeping what was written"),
        # Not in the footer: the tabs themselves show F2/F3/F4 (see the tab titles).
        Binding("f2", "show_tab('chat')", "Chat", id="app.tab.chat", tooltip="Show the Chat tab", show=False),
        Binding("f3", "show_tab('completion')", "Completion", id="app.tab.completion",
                tooltip="Show the Completion tab", show=False),
        Binding("f4", "show_tab('log')", "Log", id="app.tab.log", tooltip="Show llama.cpp's log", show=False),
        Binding("ctrl+o", "open_picker", "Models", id="app.models", tooltip="Open, download or switch models"),
        # priority: the message box (a TextArea) binds F7 to "select all".
        Binding("f7", "history", "History", id="app.history",
                tooltip="Saved conversations: search, open, rename, delete", priority=True),
        Binding("ctrl+t", "toggle_thinking", "Thinking on/off", id="app.thinking", show=False,
                tooltip="Let a reasoning model think before it answers, or not (from the next reply)"),
        Binding("f9", "previous_model", "Previous", id="app.previous_model",
                tooltip="Switch to the model used before this one"),
        # priority: the Completion tab's TextArea binds F6 to "select line".
        Binding("f6", "open_settings", "Settings", id="app.settings", tooltip="Load, sampling and chat settings",
                priority=True),
    ]

    def __init__(self, options: LaunchOptions | None = None) -> None:
        super().__init__()
        use_paste_safe_parser()
        self.options = options or LaunchOptions()
        self.settings: Settings = self.options.settings
        """The settings in effect now: the one owner of them (the panel edits a copy)."""
        self.model: ModelBackend | None = None
        self.store: ConversationStore = MemoryStore()
        """Where conversations are kept; the SQLite file replaces this once it is open."""
        self._generating_in: Widget | None = None
        self.last_stats: GenerationStats | None = None
        """The engine's figures behind what the status bar shows now."""
        self._log_handler = PostToAppHandler(self)
        self._load_lock = threading.Lock()
        saved = self.options.saved_config
        self._persist = saved is not None
        """Whether settings and models used are saved to the settings file."""
        self.saved_contexts = SavedContexts(paths.state_dir() / "contexts",
                                            self.settings.chat.saved_contexts_mib if self._persist else 0)
        """Where local models save chats' KV states (its cap follows the setting; none in tests
        that keep nothing, like the history)."""
        self.recent_models: list[ModelRef] = list(saved.recent_models if saved else ())
        self.presets = dict(saved.presets) if saved else {}
        self.model_presets = dict(saved.model_presets) if saved else {}
        if saved is None:
            from llama_tui.engine.presets import BUILT_IN

            self.presets = dict(BUILT_IN)
        self._switch_interval = sys.getswitchinterval()
        """Restored on unmount (which can come without a mount, e.g. SIGTSTP while starting)."""
        self._told_cpu_only = False
        """Whether the user was told that GPU layers do nothing in this build (said once)."""
        self.rescue: Rescue | None = None
        """What the user wrote, gathered when an unexpected error stops the app (see main)."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification is literal text: messages quote file names, paths, model names
        and servers' replies, which may hold markup ("x[Q4].gguf") or escape sequences.
        Widgets' own notify() comes here too. `markup` is accepted and ignored."""
        super().notify(neutralise_controls(message), title=neutralise_controls(title), severity=severity,
                       timeout=timeout, markup=False)

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=self.options.mode, id="tabs"):
            with TabPane("Chat F2", id="chat"):
                yield ChatPane(id="chat-pane", verbose=self.options.verbose, persist=self._persist)
            with TabPane("Completion F3", id="completion"):
                yield CompletionPane(id="completion-pane", verbose=self.options.verbose, persist=self._persist)
            with TabPane("Log F4", id="log"):
                yield LogPane(id="log-view")
        yield StatusBar(id="status-bar")
        yield AppFooter()

    @property
    def generating(self) -> bool:
        return self._generating_in is not None

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def chat_pane(self) -> ChatPane:
        return self.query_one(ChatPane)

    def on_mount(self) -> None:
        # The decode thread needs the GIL for a moment after every token; with Python's
        # default 5 ms switch interval it waits on the UI thread's rendering (bench/).
        sys.setswitchinterval(0.001)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if root.getEffectiveLevel() > logging.INFO:  # the Log tab shows llama.cpp's INFO lines
            root.setLevel(logging.INFO)
        # Anything a library prints (tqdm bars, stray prints) goes to the log, not the screen.
        self.begin_capture_print(self, stdout=True, stderr=True)
        self._focus_current_tab()
        self._tell_once("Settings file", self.options.config_warnings)
        self._tell_once("Cannot save everything", self.options.storage_problems)
        if not self.is_headless:
            self._quit_on_signals()
        self.chat_pane.presets = self.presets
        if self._persist:  # else (tests) the history stays in memory
            self._open_store()
        if self.options.open_picker or self.options.hub_download or self.options.model is None:
            self.status_bar.show_model("no model")
            self.status_bar.show_state("idle")  # "downloading" once the download starts
            if self.options.open_picker or self.options.hub_download:
                self.action_open_picker(download=self.options.hub_download)
        else:
            self.open(self.options.model)

    def _tell_once(self, title: str, lines: Iterable[str]) -> None:
        """A notification and log lines (the Log tab, the log file) for problems found at start."""
        lines = list(lines)
        for line in lines:
            log.warning("%s: %s", title, line)
        if lines:
            self.notify("\n".join(lines), title=title, severity="warning", timeout=20)

    # -- quitting --------------------------------------------------------------------------

    _QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def _quit_on_signals(self) -> None:
        """SIGTERM, SIGINT and SIGHUP quit as ctrl+q does: the reply stops, the decode leaves
        llama.cpp, the model is closed (main), the terminal is given back. Without this
        SIGTERM would end the process on the spot, with the terminal still in raw mode."""
        loop = asyncio.get_running_loop()
        for signum in self._QUIT_SIGNALS:
            loop.add_signal_handler(signum, self._quit_on_signal, signum)

    def _quit_on_signal(self, signum: int) -> None:
        log.warning("quitting on %s", signal.Signals(signum).name)
        if self.model is not None:
            self.model.cancel()
        self.exit(return_code=128 + signum)

    async def action_quit(self) -> None:
        # Stop the decode before exiting: freeing the model mid-decode would crash.
        if self.model is not None:
            self.model.cancel()
        self.exit()

    def _handle_exception(self, error: Exception) -> None:
        """An error nothing else handled: keep what the user wrote and log the traceback
        before Textual ends the app (with exit code 1); main() prints a short report."""
        log.critical("unexpected error: %s: %s", type(error).__name__, error, exc_info=error)
        if self.rescue is None:
            self.rescue = self._gather_rescue(error)
            self.rescue.save()
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        # Textual would print a page of traceback with local variables over the terminal;
        # the traceback is in the log file, and main() prints a short report instead.
        self.bell()
        self._close_messages_no_wait()

    def _gather_rescue(self, error: Exception) -> Rescue:
        """Everything typed or said so far; each part on its own, as the DOM may be broken."""
        rescue = Rescue(f"{type(error).__name__}: {error}")
        try:
            rescue.conversation = self.chat_pane.transcript()
        except Exception:  # the error may be in the chat itself
            log.exception("could not gather the conversation")
        for where, selector in (("the chat message box", "#chat-input"), ("the Completion tab", "#completion-text")):
            try:
                text = self.query_one(selector, TextArea).text
            except Exception:
                log.exception("could not gather %s", where)
                continue
            if text.strip():
                rescue.unsent.append((where, text))
        return rescue

    def on_unmount(self) -> None:
        logging.getLogger().removeHandler(self._log_handler)
        sys.setswitchinterval(self._switch_interval)
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in self._QUIT_SIGNALS:
                loop.remove_signal_handler(signum)
        self.store.flush(timeout=5)  # what the writer thread still holds reaches the disk
        self.store.close()

    def on_print(self, event: Print) -> None:
        for line in event.text.splitlines():
            if line.strip():
                logging.getLogger("stdout" if not event.stderr else "stderr").info("%s", line)

    def on_log_lines_ready(self, _message: LogLinesReady) -> None:
        lines = self._log_handler.take_lines()
        for pane in self.query(LogPane):  # none while the app shuts down
            pane.write_lines(lines)

    # -- tabs ------------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_current_tab()

    @on(TabbedContent.TabActivated, "#tabs")  # not the picker's own tabs
    def _focus_current_tab(self) -> None:
        tab = self.query_one(TabbedContent).active
        targets = {"chat": "#chat-input", "completion": "#completion-text", "log": "#log-view"}
        if tab in targets:
            self.query_one(targets[tab]).focus()
        if tab == "log":  # lines written while the tab was hidden did not scroll it
            self.query_one(LogPane).scroll_end(animate=False)

    # -- the history store -----------------------------------------------------------------

    @work(thread=True, group="store", exit_on_error=False, description="opening the history")
    def _open_store(self) -> None:
        # A check of the file takes a moment, and another process may hold a lock: not on the UI thread.
        store, problem = open_store(on_problem=lambda text: self.post_message(StoreProblem(text)))
        resume = self._conversation_to_resume(store)
        conversation = None
        if resume is not None:
            try:
                conversation = store.load(resume)
            except (KeyError, Exception) as error:  # noqa: BLE001  a damaged row must not stop the app
                log.warning("cannot resume conversation %s: %s", resume, error)
        self.post_message(StoreOpened(store, problem, conversation))

    def _conversation_to_resume(self, store: ConversationStore) -> str | None:
        wanted = self.options.resume
        if wanted == "last" or (not wanted and self.settings.chat.resume_last):
            return store.last_id()
        return wanted or None

    def on_store_opened(self, message: StoreOpened) -> None:
        old, self.store = self.store, message.store
        old.close()
        if message.problem:
            self.notify(message.problem, title="History", severity="warning", timeout=20)
        self.chat_pane.set_store(message.store)
        conversation = message.conversation
        if conversation is None:
            if self.options.resume and self.options.resume != "last":
                self.notify(f"There is no saved conversation {self.options.resume}.", severity="warning")
            return
        self.chat_pane.show_conversation(conversation)
        # "with its model unless a model is named": the model of its last reply.
        reply_models = [m.model_ref for m in conversation.branch() if m.role == "assistant" and m.model_ref]
        if reply_models and not self.options.model_named:
            try:
                ref = ModelRef.from_text(reply_models[-1])
            except ValueError:
                return
            if self.model is None or self.model.ref != ref:
                self.swap_model(ref)

    def on_store_problem(self, message: StoreProblem) -> None:
        self.notify(message.text, title="History", severity="warning", timeout=15)

    def action_history(self) -> None:
        self.push_screen(HistoryScreen(self.store), self._history_chosen)

    def _history_chosen(self, result: HistoryResult | None) -> None:
        if result is None:
            return
        self.chat_pane.history_changed(result.renamed, result.deleted)
        if result.open_id is not None:
            self.action_show_tab("chat")
            self._load_conversation(result.open_id)

    @work(thread=True, group="store", exit_on_error=False, description="opening a conversation")
    def _load_conversation(self, conversation_id: str) -> None:
        try:
            conversation = self.store.load(conversation_id)
        except Exception as error:  # noqa: BLE001  a missing or damaged conversation gets a message
            log.warning("cannot open conversation %s: %s", conversation_id, error)
            self.call_from_thread(self.notify, f"Cannot open that conversation: {error}", severity="error")
            return
        self.call_from_thread(self.chat_pane.show_conversation, conversation)

    # -- opening models ----------------------------------------------------------------------

    def open(self, ref: ModelRef) -> None:
        """Open `ref` in place of the current model (in a worker)."""
        self._open_model(ref)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False, description="opening a model")
    def _open_model(self, ref: ModelRef) -> None:
        """Check and open `ref`, closing the current model first (waiting for any decode).

        A file that fails the check is refused before the current model is touched.
        """
        with self._load_lock:  # one load at a time, so no model is ever left unclosed
            started = time.perf_counter()

            def close_the_current_one() -> None:
                old, self.model = self.model, None
                if old is not None:
                    old.close()

            try:
                model = open_model(ref, self.settings,
                                   on_state=lambda state: self.post_message(LoadStateChanged(state)),
                                   before_load=close_the_current_one, contexts=self.saved_contexts)
            except ModelLoadError as error:
                log.warning("model load failed: %s", error)
                self.post_message(ModelLoadFailed(str(error)))
                return
            except Exception as error:  # whatever it is, the app stays up and says so
                log.exception("model load failed")
                self.post_message(ModelLoadFailed(f"Could not open {ref.label()}: {type(error).__name__}: {error}"))
                return
            if get_current_worker().is_cancelled:  # another model was picked meanwhile
                model.close()
                return
            self.post_message(ModelLoaded(model, time.perf_counter() - started))

    def on_load_state_changed(self, message: LoadStateChanged) -> None:
        self.status_bar.show_state(message.state)

    def on_download_state_changed(self, message: DownloadStateChanged) -> None:
        if message.active:
            self.status_bar.show_state("downloading")
        elif not self.workers_in("model"):  # a finished download may already be loading
            self.status_bar.show_state("idle")

    def on_model_loaded(self, message: ModelLoaded) -> None:
        previous = self.model
        if previous is not None and previous is not message.model:
            # A load that finished while the next one started: keep only the newest.
            self._close_in_background(previous)
        model = self.model = message.model
        self._remember(model.ref)
        self.last_stats = None
        self.status_bar.show_stats(GenerationStats(context_used=model.context_used, context_size=model.context_size))
        self.status_bar.show_model(model.name)
        self.status_bar.show_state("idle")
        self.sub_title = neutralise_controls(model.ref.label())
        self.chat_pane.show_model(model.description)
        self.notify(f"{model.name} ready in {message.seconds:.1f} s · {model.description}", timeout=4)
        preset = self.model_presets.get(model.ref.to_text(), default_preset(model.ref))
        if preset:
            self.chat_pane.suggest_preset(preset)
        layers = self.settings.load.n_gpu_layers
        if model.ref.is_local and layers and not gpu_offload_supported() and not self._told_cpu_only:
            self._told_cpu_only = True
            self.notify(
                f"This llama.cpp build runs on the CPU only, so the {layers} GPU layers asked for have no "
                f"effect. For a GPU build: {GPU_INSTALL_HINT}",
                title="No GPU offload", severity="warning", timeout=15,
            )

    @work(thread=True, group="close", exit_on_error=False, description="freeing a model")
    def _close_in_background(self, model: ModelBackend) -> None:
        model.close()  # waits for its decode thread, so not on the UI thread

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        if self.model is not None:  # refused before the current model was closed: it stays
            self.status_bar.show_state("idle")
            self.notify(message.reason, title="Cannot open that model", severity="error", timeout=15)
            return
        self.status_bar.show_model("no model")
        self.status_bar.show_state("idle")
        self.notify(message.reason, title="Cannot load the model", severity="error", timeout=15)

    def _remember(self, ref: ModelRef) -> None:
        """Put `ref` first among the recent models, and save that when settings persist."""
        self.recent_models = list(add_recent_model(self.recent_models, ref))
        if not self._persist:
            return
        try:
            # The list as saved: it includes models another running instance used meanwhile.
            self.recent_models = list(remember_model_in_file(ref))
        except ConfigSaveError as error:
            log.warning("could not remember the model in the settings: %s", error)

    # -- picking and swapping models -------------------------------------------------------

    def action_open_picker(self, download: tuple[str, str] | None = None) -> None:
        # Imported on first use: the picker pulls in huggingface_hub, ~100 ms of imports that
        # would otherwise delay the first frame (or, done in the background, slow the model
        # load or the first reply, which need the GIL too).
        from llama_tui.ui.picker_screen import ModelPickerScreen

        picker = ModelPickerScreen(
            self.recent_models, settings=self.settings,
            current=self.model.ref if self.model is not None else None, download=download,
        )
        self.push_screen(picker, self._model_picked)

    def _model_picked(self, ref: ModelRef | None) -> None:
        if ref is not None:
            self.swap_model(ref)
        elif self.model is None and not self.workers_in("model"):
            self.status_bar.show_model("no model")
            self.status_bar.show_state("idle")

    def swap_model(self, ref: ModelRef) -> None:
        """Stop any reply, then open `ref` in place of the current model.

        The conversation stays on screen; the next turn is evaluated afresh by the new model,
        with its own chat template.
        """
        if self.model is not None and self.model.ref == ref:
            self.notify(f"{self.model.name} is already loaded.")
            return
        if self.model is not None:
            self.model.cancel()
        self.open(ref)

    def workers_in(self, group: str) -> bool:
        """Whether a worker of `group` is running (e.g. "model": a load under way)."""
        return any(worker.group == group and worker.is_running for worker in self.workers)

    def action_previous_model(self) -> None:
        current = self.model.ref if self.model is not None else None
        others = [ref for ref in self.recent_models if ref != current and _still_there(ref)]
        if not others:
            self.notify("No other model used recently: ctrl+o opens the picker.")
            return
        self.swap_model(others[0])

    # -- settings --------------------------------------------------------------------------

    def action_open_settings(self) -> None:
        model = self.model
        if model is None:
            screen = SettingsScreen(self.settings)
        else:  # the panel says which settings this model does not use
            screen = SettingsScreen(self.settings, model_name=model.name, capabilities=model.capabilities,
                                    backend="local" if model.ref.is_local else "server")
        self.push_screen(screen, self._settings_saved)

    def _settings_saved(self, new: Settings | None) -> None:
        if new is None:
            return
        changes = self.settings.changed(new)
        if not changes:
            self.notify("No settings changed.")
            return
        self.settings = new
        if self._persist:
            self.saved_contexts.cap_mib = new.chat.saved_contexts_mib
        saved = True
        if self._persist:
            # Only what was changed in the panel, into the file as it is now: a one-run
            # command-line flag, a value in the file the panel could not use, and what another
            # instance saved all stay as they are.
            try:
                save_changes(changes)
            except ConfigSaveError as error:
                saved = False
                self.notify(f"Could not save the settings: {error}. They apply to this run only.",
                            severity="error", timeout=15)
        if "system_prompt" in changes:  # the chat on screen takes it from its next reply
            self.chat_pane.system_prompt_changed()
        needs_reload = [name for name in changes if name in RELOAD_FIELDS]
        names = ", ".join(SETTINGS[name].label.lower() for name in needs_reload)
        if needs_reload and self.model is not None and self.model.ref.is_local:
            question = f"Reload {self.model.name} now to apply the new {names}? The conversation stays."
            self.push_screen(ConfirmScreen(question, yes="Reload", no="Later"), self._reload_answered)
        elif needs_reload and self.model is not None:  # a server loads its model its own way
            parts = ["Settings saved."] if saved else []
            verb = "applies" if len(needs_reload) == 1 else "apply"
            parts.append(f"{names[0].upper()}{names[1:]} {verb} to local models, from the next one opened: "
                         f"{self.model.name} is loaded by its server.")
            if len(changes) > len(needs_reload):
                parts.append("The other changes apply to the next reply.")
            self.notify(" ".join(parts), timeout=8)
        elif saved:
            self.notify("Settings saved: they apply to the next reply.")
        self._say_what_the_preset_overrides(changes)

    def _say_what_the_preset_overrides(self, changes: dict[str, object]) -> None:
        """A preset's sampling wins over the settings' for its conversation: say so, or a new
        temperature would seem to be ignored."""
        preset = self.presets.get(self.chat_pane.conversation.preset)
        overridden = [name for name in changes if preset is not None and name in preset.sampling]
        if preset is None or not overridden:
            return
        values = ", ".join(f"{SETTINGS[name].label.lower()} {preset.sampling[name]}" for name in overridden)
        self.notify(f"This conversation's preset, {preset.name}, sets {values}: F8 and \"no preset\" "
                    "use the settings instead.", title="Preset", severity="warning", timeout=10)

    def _reload_answered(self, reload: bool | None) -> None:
        if reload and self.model is not None:
            self.model.cancel()
            self.open(self.model.ref)
        elif not reload:
            self.notify("The new load settings apply the next time a model is opened.")

    def action_toggle_thinking(self) -> None:
        """Thinking on or off from the next reply, for this run (F6 keeps it)."""
        self.settings = self.settings.with_values({"thinking": not self.settings.chat.thinking})
        state = "on" if self.settings.chat.thinking else "off"
        if self.model is not None and not self.model.capabilities.thinking_switch:
            self.notify(f"Thinking {state} for the next replies, but {self.model.name}'s chat template has no "
                        "thinking switch: it thinks (or not) as it always does.", timeout=6)
        else:
            self.notify(f"Thinking {state} for the next replies.", timeout=3)

    # -- presets -----------------------------------------------------------------------------

    def on_preset_chosen(self, message: PresetChosen) -> None:
        """The chat pane chose a preset for its conversation: remember it for this model."""
        name = message.name
        if self.model is None or not self._persist:
            return
        self.model_presets[self.model.ref.to_text()] = name
        try:
            remember_preset_for_model(self.model.ref, name)
        except ConfigSaveError as error:
            log.warning("could not remember the preset for the model: %s", error)

    # -- generation ------------------------------------------------------------------------

    def on_generation_requested(self, request: GenerationRequested) -> None:
        request.stop()
        requester = request.requester
        if self.model is None:
            requester.post_message(GenerationRefused("No model is loaded yet."))
            return
        if self._generating_in is not None:
            requester.post_message(GenerationRefused("A reply is still being written: wait, or press Esc to stop it."))
            return
        model = self.model
        system_prompt, sampling = effective(self.presets, request.preset or NO_PRESET, self.settings,
                                            request.system_prompt)
        if request.another:
            sampling = replace(sampling, seed=(sampling.seed + request.another) % 2**32)
        buffer = ReplyBuffer(wake=lambda: requester.post_message(ReplyReady(buffer)))
        # Started on this thread, so an Esc from now on reaches it.
        try:
            if request.chat is not None:
                messages = [ChatMessage("system", system_prompt)] if system_prompt else []
                chat = self.settings.chat
                events = model.chat([*messages, *request.chat], sampling, prefill=request.prefill,
                                    enable_thinking=chat.thinking, thinking_budget=chat.thinking_budget)
            else:
                events = model.complete(request.text or "", sampling)
        except (ModelBusy, ModelClosed, PromptError) as error:
            requester.post_message(GenerationRefused(str(error)))
            return
        self._generating_in = requester
        self.status_bar.show_state("prompt")
        requester.post_message(GenerationStarted(buffer, model.name, model.ref.to_text(), sampling, system_prompt))
        self._generate(events, buffer)
        self.refresh_bindings()  # the footer now offers Esc to stop

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False, description="generating")
    def _generate(self, events: Iterator[GenerationEvent], buffer: ReplyBuffer) -> None:
        try:
            with closing(events):  # type: ignore[type-var]  # generators close; closing frees the model for close()
                for event in events:
                    buffer.push(event)
        except (PromptError, GenerationError, ModelBusy, ModelClosed) as error:
            buffer.fail(str(error))
        except Exception as error:  # a failure in llama.cpp must not take the app down
            log.exception("generation failed")
            buffer.fail(f"Generation failed: {type(error).__name__}: {error}")

    def on_reply_progressed(self, message: ReplyProgressed) -> None:
        """Update the status bar from what the engine reported."""
        if message.stats is not None:
            self.last_stats = message.stats
            self.status_bar.show_stats(message.stats)
        if message.state is not None:
            self.status_bar.show_state(message.state)

    def on_generation_ended(self, _message: GenerationEnded) -> None:
        self._generating_in = None
        self.status_bar.show_state("idle")
        self.refresh_bindings()
        if self.model is not None:  # a chat template may have been replaced by a built-in one
            self.chat_pane.show_model(self.model.description)

    def on_chat_cleared(self, _message: ChatCleared) -> None:
        """A new chat: the context starts empty (if no reply is being written elsewhere)."""
        if self.model is not None and self.model.clear_context():
            self.last_stats = None
            # The chat may have been cleared (a conversation opened) just before a quit:
            # by the time this arrives the status bar may be gone.
            for bar in self.query(StatusBar):
                bar.show_stats(GenerationStats(context_size=self.model.context_size))

    def action_stop_generation(self) -> None:
        if self._generating_in is not None and self.model is not None:
            self.model.cancel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_generation":
            return self._generating_in is not None  # only listed in the footer while generating
        return True

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Chat", "Show the Chat tab (F2)", lambda: self.action_show_tab("chat"))
        yield SystemCommand("Completion", "Show the Completion tab (F3)", lambda: self.action_show_tab("completion"))
        yield SystemCommand("Log", "Show llama.cpp's log (F4)", lambda: self.action_show_tab("log"))
        yield SystemCommand("New chat", "Clear the conversation (ctrl+n)", self._new_chat)
        yield SystemCommand("History", "Saved conversations: search, open, rename, delete (F7)", self.action_history)
        yield SystemCommand("Preset", "Choose the conversation's system prompt and sampling preset (F8)",
                            self._choose_preset)
        yield SystemCommand("Thinking on/off", "Let a reasoning model think before it answers, or not (ctrl+t)",
                            self.action_toggle_thinking)
        yield SystemCommand("Continue the text", "Completion tab: let the model continue the text (ctrl+r)",
                            self._continue_text)
        yield SystemCommand("Models", "Open, download or switch models (ctrl+o)", self.action_open_picker)
        yield SystemCommand("Previous model", "Switch to the model used before this one (F9)",
                            self.action_previous_model)
        yield SystemCommand("Settings", "Load, sampling and chat settings (F6)", self.action_open_settings)
        if self._generating_in is not None:
            yield SystemCommand("Stop generation", "Stop the reply, keeping what was written (Esc)",
                                self.action_stop_generation)

    def _continue_text(self) -> None:
        self.action_show_tab("completion")
        self.query_one(CompletionPane).action_run()

    def _choose_preset(self) -> None:
        self.action_show_tab("chat")
        self.chat_pane.action_choose_preset()

    async def _new_chat(self) -> None:
        self.action_show_tab("chat")
        await self.chat_pane.action_new_chat()


def _still_there(ref: ModelRef) -> bool:
    """A recent model that can still be opened (a file may have been deleted since)."""
    return ref.kind != "file" or (ref.path is not None and ref.path.exists())
