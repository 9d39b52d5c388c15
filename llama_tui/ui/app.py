"""The llama-tui application: tabs, status bar, and the two worker threads.

The UI never touches llama.cpp: it calls the engine's LoadedModel from thread workers, and
the workers only hand results back (messages, or the ReplyBuffer), never widgets.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from textual import on, work
from textual.worker import get_current_worker
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.events import Print
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from llama_tui.engine.config import (
    RELOAD_FIELDS,
    AppConfig,
    carry_changes,
    changed_fields,
    remember_model,
    save_config,
)
from llama_tui.engine.events import GenerationEvent, GenerationStats
from llama_tui.engine.file_check import UnsafeModelFile, check_model_file
from llama_tui.engine.model import LoadedModel, ModelBusy, ModelClosed, ModelLoadError, PromptError
from llama_tui.engine.starter import StarterModelMissing, starter_model_path
from llama_tui.launch import LaunchOptions
from llama_tui.ui.chat_pane import ChatPane
from llama_tui.ui.completion_pane import CompletionPane
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.log_pane import LogPane, PostToAppHandler
from llama_tui.ui.messages import LogLinesReady, ModelLoaded, ModelLoadFailed, ReplyReady
from llama_tui.ui.confirm_screen import ConfirmScreen
from llama_tui.ui.settings_screen import SettingsScreen
from llama_tui.ui.reply_buffer import ReplyBatch, ReplyBuffer
from llama_tui.ui.status_bar import StatusBar

log = logging.getLogger(__name__)

StartGeneration = Callable[[LoadedModel], Iterator[GenerationEvent]]


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
        Binding("f9", "previous_model", "Previous", id="app.previous_model",
                tooltip="Switch to the model used before this one"),
        # priority: the Completion tab's TextArea binds F6 to "select line".
        Binding("f6", "open_settings", "Settings", id="app.settings", tooltip="Load, sampling and chat settings",
                priority=True),
    ]

    def __init__(self, options: LaunchOptions | None = None) -> None:
        super().__init__()
        self.options = options or LaunchOptions()
        self.model: LoadedModel | None = None
        self._generating_in: Widget | None = None
        self.last_stats: GenerationStats | None = None
        """The engine's figures behind what the status bar shows now."""
        self._log_handler = PostToAppHandler(self)
        self._load_lock = threading.Lock()
        self.saved_config = self.options.saved_config
        self.recent_models: list[Path] = list(self.saved_config.recent_models if self.saved_config else ())

    # -- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=self.options.mode, id="tabs"):
            with TabPane("Chat F2", id="chat"):
                yield ChatPane(id="chat-pane")
            with TabPane("Completion F3", id="completion"):
                yield CompletionPane(id="completion-pane")
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

    def on_mount(self) -> None:
        # The decode thread needs the GIL for a moment after every token; with Python's
        # default 5 ms switch interval it waits on the UI thread's rendering (bench/).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if root.getEffectiveLevel() > logging.INFO:  # the Log tab shows llama.cpp's INFO lines
            root.setLevel(logging.INFO)
        # Anything a library prints (tqdm bars, stray prints) goes to the log, not the screen.
        self.begin_capture_print(self, stdout=True, stderr=True)
        self._focus_current_tab()
        if self.options.open_picker or self.options.hub_download:
            self.status_bar.show_model("no model")
            self.status_bar.show_state("downloading" if self.options.hub_download else "idle")
            self.action_open_picker(download=self.options.hub_download)
        else:
            self.load_model(self.options.model_path)

    def on_unmount(self) -> None:
        logging.getLogger().removeHandler(self._log_handler)
        sys.setswitchinterval(self._switch_interval)

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

    # -- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model", exit_on_error=False, description="loading a model")
    def load_model(self, path: Path | None) -> None:
        """Check `path`, close the current model (waiting for any decode to stop), load `path`.

        `path` None is the starter model. A file that fails the check is refused before the
        current model is touched.
        """
        with self._load_lock:  # one load at a time, so no model is ever left unclosed
            self._load_model(path)

    def _load_model(self, path: Path | None) -> None:
        self.call_from_thread(self.status_bar.show_state, "checking" if path else "loading")
        started = time.perf_counter()
        try:
            model_path = path if path is not None else starter_model_path()
            overrides = self.options.load.overrides
            # A crafted file, or a metadata override, can abort llama.cpp and this process
            # with it: try it in another process first. The starter model is assembled from
            # PyPI and size-checked, so it is trusted as it is.
            if path is not None or overrides:
                check_model_file(model_path, overrides=overrides)
            self.call_from_thread(self.status_bar.show_state, "loading")
            old, self.model = self.model, None
            if old is not None:
                old.close()
            model = LoadedModel.load(model_path, self.options.load)
        except (ModelLoadError, UnsafeModelFile, StarterModelMissing, OSError, ValueError) as error:
            log.warning("model load failed: %s", error)
            self.post_message(ModelLoadFailed(str(error)))
            return
        except Exception as error:  # whatever it is, the app stays up and says so
            log.exception("model load failed")
            self.post_message(ModelLoadFailed(f"Unexpected error while loading: {type(error).__name__}: {error}"))
            return
        if get_current_worker().is_cancelled:  # another model was picked meanwhile
            model.close()
            return
        self.post_message(ModelLoaded(model, time.perf_counter() - started))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        previous = self.model
        if previous is not None and previous is not message.model:
            # A load that finished while the next one started: keep only the newest.
            self._close_in_background(previous)
        model = self.model = message.model
        self._remember(model.path)
        self.last_stats = None
        self.status_bar.show_stats(GenerationStats(context_used=model.context_used, context_size=model.context_size))
        self.status_bar.show_model(model.name)
        self.status_bar.show_state("idle")
        self.status_bar.show_context(model.context_used, model.context_size)
        self.sub_title = model.path.name
        self.notify(
            f"{model.name} loaded in {message.seconds:.1f} s · chat template: {model.chat_template.name}",
            timeout=4,
        )

    @work(thread=True, group="close", exit_on_error=False, description="freeing a model")
    def _close_in_background(self, model: LoadedModel) -> None:
        model.close()  # waits for its decode thread, so not on the UI thread

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        if self.model is not None:  # refused before the current model was closed: it stays
            self.status_bar.show_state("idle")
            self.notify(message.reason, title="Cannot open that model", severity="error", timeout=15)
            return
        self.status_bar.show_model("no model")
        self.status_bar.show_state("idle")
        self.notify(message.reason, title="Cannot load the model", severity="error", timeout=15)

    def _remember(self, path: Path) -> None:
        """Put `path` first among the recent models, and save that when settings persist."""
        self.recent_models = [path, *(p for p in self.recent_models if p != path)][:10]
        if self.saved_config is None:
            return
        self.saved_config = remember_model(self.saved_config, path)
        try:
            save_config(self.saved_config)
        except OSError as error:
            log.warning("could not save the settings: %s", error)

    # -- picking and swapping models -------------------------------------------------------

    def action_open_picker(self, download: tuple[str, str] | None = None) -> None:
        # Imported on first use: the picker pulls in huggingface_hub, ~100 ms of imports that
        # would otherwise delay the first frame (or, done in the background, slow the model
        # load or the first reply, which need the GIL too).
        from llama_tui.ui.picker_screen import ModelPickerScreen

        current = self.model.path if self.model is not None else None
        picker = ModelPickerScreen(
            self.recent_models, n_ctx=self.options.load.n_ctx, n_gpu_layers=self.options.load.n_gpu_layers,
            current=current, download=download,
        )
        self.push_screen(picker, self._model_picked)

    def _model_picked(self, path: Path | None) -> None:
        if path is not None:
            self.swap_model(path)
        elif self.model is None and not self.workers_in("model"):
            self.status_bar.show_model("no model")
            self.status_bar.show_state("idle")

    def swap_model(self, path: Path) -> None:
        """Stop any reply, then load `path` in place of the current model.

        The conversation stays on screen; the next turn is evaluated afresh by the new model,
        with its own chat template.
        """
        if self.model is not None and self.model.path == path:
            self.notify(f"{self.model.name} is already loaded.")
            return
        if self.model is not None:
            self.model.cancel()
        self.load_model(path)

    def workers_in(self, group: str) -> bool:
        """Whether a worker of `group` is running (e.g. "model": a load under way)."""
        return any(worker.group == group and worker.is_running for worker in self.workers)

    def action_previous_model(self) -> None:
        current = self.model.path if self.model is not None else None
        others = [p for p in self.recent_models if p != current and p.exists()]
        if not others:
            self.notify("No other model used recently: ctrl+o opens the picker.")
            return
        self.swap_model(others[0])

    # -- settings --------------------------------------------------------------------------

    def _current_settings(self) -> AppConfig:
        return AppConfig(load=self.options.load, sampling=self.options.sampling, system_prompt=self.options.system_prompt)

    def action_open_settings(self) -> None:
        self.push_screen(SettingsScreen(self._current_settings()), self._settings_saved)

    def _settings_saved(self, new: AppConfig | None) -> None:
        if new is None:
            return
        before = self._current_settings()
        changed = changed_fields(before, new)
        if not changed:
            self.notify("No settings changed.")
            return
        self.options = replace(self.options, load=new.load, sampling=new.sampling, system_prompt=new.system_prompt)
        if self.saved_config is not None:
            # Only what was changed in the panel: a one-run command-line flag stays out of the file.
            self.saved_config = carry_changes(self.saved_config, before, new)
            try:
                save_config(self.saved_config)
            except OSError as error:
                self.notify(f"Could not save the settings: {error}", severity="error")
        needs_reload = sorted(changed & RELOAD_FIELDS)
        if needs_reload and self.model is not None:
            names = ", ".join(name.removeprefix("n_").replace("_", " ") for name in needs_reload)
            question = f"Reload {self.model.name} now to apply the new {names}? The conversation stays."
            self.push_screen(ConfirmScreen(question, yes="Reload", no="Later"), self._reload_answered)
        else:
            self.notify("Settings saved: they apply to the next reply.")

    def _reload_answered(self, reload: bool | None) -> None:
        if reload and self.model is not None:
            self.model.cancel()
            self.load_model(self.model.path)
        elif not reload:
            self.notify("The new load settings apply the next time a model is opened.")

    # -- generation ------------------------------------------------------------------------

    def can_generate(self, requester: Widget) -> bool:
        """Whether `requester` may start a reply now; tells the user why not."""
        if self.model is None:
            self.notify("No model is loaded yet.", severity="warning")
            return False
        if self._generating_in is not None:
            self.notify("A reply is still being written: wait, or press Esc to stop it.", severity="warning")
            return False
        return True

    def start_generation(self, target: Widget, start: StartGeneration) -> None:
        """Start `start(model)` here and stream it in the decode thread; `target` gets
        ReplyReady messages. Starting on this thread means an Esc from now on reaches it."""
        assert self.model is not None
        self._generating_in = target
        self.status_bar.show_state("prompt")
        buffer = ReplyBuffer(wake=lambda: target.post_message(ReplyReady(buffer)))
        try:
            events = start(self.model)
        except (ModelBusy, ModelClosed) as error:
            buffer.fail(str(error))
        else:
            self._generate(events, buffer)
        self.refresh_bindings()  # the footer now offers Esc to stop

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False, description="generating")
    def _generate(self, events: Iterator[GenerationEvent], buffer: ReplyBuffer) -> None:
        try:
            with closing(events):  # closing frees the model for close()
                for event in events:
                    buffer.push(event)
        except (PromptError, ModelBusy, ModelClosed) as error:
            buffer.fail(str(error))
        except Exception as error:  # a failure in llama.cpp must not take the app down
            log.exception("generation failed")
            buffer.fail(f"Generation failed: {type(error).__name__}: {error}")

    def show_batch(self, batch: ReplyBatch) -> None:
        """Update the status bar from what the engine reported."""
        if batch.stats is not None:
            self.last_stats = batch.stats
            self.status_bar.show_stats(batch.stats)
        if batch.finished is not None or batch.error is not None:
            return
        if batch.text or (batch.stats is not None and batch.stats.generated_tokens):
            self.status_bar.show_state("generating")
        elif batch.prompt_progress is not None:
            progress = batch.prompt_progress
            self.status_bar.show_state(f"prompt {progress.done}/{progress.total}")

    def generation_ended(self) -> None:
        self._generating_in = None
        self.status_bar.show_state("idle")
        self.refresh_bindings()

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
        yield SystemCommand("Models", "Open, download or switch models (ctrl+o)", self.action_open_picker)
        yield SystemCommand("Previous model", "Switch to the model used before this one (F9)", self.action_previous_model)
        yield SystemCommand("Settings", "Load, sampling and chat settings (F6)", self.action_open_settings)
        if self._generating_in is not None:
            yield SystemCommand("Stop generation", "Stop the reply, keeping what was written (Esc)", self.action_stop_generation)

    async def _new_chat(self) -> None:
        self.action_show_tab("chat")
        await self.query_one(ChatPane).action_new_chat()

    async def action_quit(self) -> None:
        # Stop the decode before exiting: freeing the model mid-decode would crash.
        if self.model is not None:
            self.model.cancel()
        self.exit()
