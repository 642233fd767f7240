"""The Ask dock: ask a vision-language model about the shown image or the selected box, read the answer as it
streams, see the conversation so far, and copy an answer into the caption, a tag or an attribute (undoable).

Every action is a call the CLI makes too (`ask_question`, `preflight`, the project's caption/tags/annotation
edits); the model runs on a worker thread and its pieces come back through a queued signal. The window tells
the dock what is shown (`set_current`) and selected (`set_selection`), and hears `data_changed(media_id)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from html import escape
from typing import Any

from PySide6.QtCore import QThreadPool, Signal, Slot
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.types import Answer
from studio.db.project import Project
from studio.jobs.ask import Backend, ask_question, conversation_of, local_backend, preflight, server_backend
from studio.models.protocols import AskParams
from studio.ui.commands import SetCaption, SetTags, UpdateAnnotation
from studio.ui.jobs import _Worker, _WorkerSignals

BACKENDS = ("Local model (transformers)", "OpenAI-compatible server")


class _AskSignals(_WorkerSignals):
    token = Signal(str)


class AskPanel(QDockWidget):
    """Self-contained dock over one project."""

    data_changed = Signal(int)
    """A media item's caption, tags or annotations changed (an answer was copied, or that was undone)."""
    answered = Signal(object)
    """The stored Answer, once complete or stopped."""

    def __init__(self, project: Project, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__("Ask", parent)
        self.setObjectName("ask_panel")
        self.project = project
        self.undo_stack = undo_stack
        self.media_id: int | None = None
        self.frame = 0
        self.selection: list[int] = []
        self.worker: _Worker | None = None
        self.signals: _AskSignals | None = None
        self.streaming = ""
        self._backend: tuple[tuple[str, ...], Backend] | None = None
        self.last_answer: Answer | None = None
        self.asking = ""
        self._history_html: str | None = None
        self.follow_up = True

        self.kind = QComboBox()
        self.kind.addItems(list(BACKENDS))
        self.model = QLineEdit(placeholderText="model id or folder (default: SmolVLM-256M)")
        self.server = QLineEdit(placeholderText="http://localhost:11434/v1")
        self.server_model = QLineEdit(placeholderText="model name on the server, e.g. llava")
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Show the model a plain red image and check it names the colour")
        self.use_box = QCheckBox("About the selected box")
        self.view = QComboBox()
        self.view.addItems(["crop", "draw"])
        self.view.setToolTip("crop: the box with some context; draw: the whole image with the box drawn")
        self.history = QTextBrowser()
        self.question = QLineEdit(placeholderText="Ask about this image…")
        self.ask_button = QPushButton("Ask")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.new_button = QPushButton("New conversation")
        self.attribute = QLineEdit(placeholderText="attribute name")
        self.to_caption = QPushButton("→ Caption")
        self.to_tag = QPushButton("→ Tag")
        self.to_attribute = QPushButton("→ Attribute")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Backend", self.kind)
        form.addRow("Model", self.model)
        form.addRow("Server", self.server)
        form.addRow("Server model", self.server_model)
        region_row = QHBoxLayout()
        region_row.addWidget(self.use_box)
        region_row.addWidget(self.view)
        ask_row = QHBoxLayout()
        for widget in (self.ask_button, self.stop_button, self.new_button, self.test_button):
            ask_row.addWidget(widget)
        copy_row = QHBoxLayout()
        for widget in (self.to_caption, self.to_tag, self.attribute, self.to_attribute):
            copy_row.addWidget(widget)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(region_row)
        layout.addWidget(self.history, 1)
        layout.addWidget(self.question)
        layout.addLayout(ask_row)
        layout.addLayout(copy_row)
        layout.addWidget(self.status)
        self.setWidget(body)

        self.kind.currentIndexChanged.connect(self._on_kind)
        self.ask_button.clicked.connect(self.ask)
        self.question.returnPressed.connect(self.ask)
        self.stop_button.clicked.connect(self.stop)
        self.new_button.clicked.connect(self.new_conversation)
        self.test_button.clicked.connect(self.test)
        self.use_box.toggled.connect(lambda _on: self.show_history())
        self.to_caption.clicked.connect(self.copy_to_caption)
        self.to_tag.clicked.connect(self.copy_to_tag)
        self.to_attribute.clicked.connect(self.copy_to_attribute)
        self._on_kind()
        self._update_buttons()

    # ---- what the window tells the dock ------------------------------------------------------------

    def set_current(self, media_id: int | None, frame: int = 0) -> None:
        if (media_id, frame) != (self.media_id, self.frame):
            self.media_id, self.frame = media_id, frame
            self.last_answer = None
            self.show_history()
            self._update_buttons()

    def set_selection(self, annotation_ids: Sequence[int]) -> None:
        self.selection = list(annotation_ids)
        if self.use_box.isChecked():
            self.show_history()
        self._update_buttons()

    # ---- settings -----------------------------------------------------------------------------------

    @Slot()
    def _on_kind(self) -> None:
        server = self.kind.currentIndex() == 1
        self.model.setEnabled(not server)
        self.server.setEnabled(server)
        self.server_model.setEnabled(server)
        self.test_button.setEnabled(server)

    def backend(self) -> Backend:
        """The chosen backend, built once per setting (loading a local model is slow: kept while unchanged)."""
        server = self.kind.currentIndex() == 1
        key = ("server", self.server.text().strip(), self.server_model.text().strip()) if server \
            else ("local", self.model.text().strip())
        if self._backend is None or self._backend[0] != key:
            built = server_backend(key[1], key[2]) if server else local_backend(key[1] or None)
            self._backend = (key, built)
        return self._backend[1]

    def region(self) -> int | None:
        """The annotation asked about: the selected one when "About the selected box" is on."""
        if not self.use_box.isChecked():
            return None
        if len(self.selection) != 1:
            raise StudioError("select one box to ask about it")
        return self.selection[0]

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        self.ask_button.setEnabled(not busy and self.media_id is not None)
        self.stop_button.setEnabled(busy)
        self.test_button.setEnabled(not busy and self.kind.currentIndex() == 1)
        has_answer = self.last_answer is not None and not busy
        for button in (self.to_caption, self.to_tag):
            button.setEnabled(has_answer)
        self.to_attribute.setEnabled(has_answer and len(self.selection) == 1)

    # ---- history ------------------------------------------------------------------------------------

    def conversation(self) -> list[Answer]:
        if self.media_id is None:
            return []
        try:
            annotation_id = self.region()
        except StudioError:
            return []
        return conversation_of(self.project, self.media_id, frame=self.frame, annotation_id=annotation_id)

    def show_history(self, streaming: str | None = None, question: str | None = None) -> None:
        """The conversation about the current image or box, and the answer arriving now (the stored part is
        read from the project only when no answer is streaming: not once per piece)."""
        if streaming is None or self._history_html is None:
            self._history_html = "".join(
                f"<p><b>{escape(a.question)}</b><br>{escape(a.answer)}<br>"
                f"<small>{escape(a.model)} · {a.seconds:.1f} s</small></p>" for a in self.conversation()
            )
        html = self._history_html
        if streaming is not None:
            html += f"<p><b>{escape(question or '')}</b><br>{escape(streaming)}▌</p>"
        self.history.setHtml(html or "<p><i>No questions about this yet.</i></p>")
        bar = self.history.verticalScrollBar()
        bar.setValue(bar.maximum())

    # ---- asking -------------------------------------------------------------------------------------

    def _run(self, work: Callable[[Callable[[str], None], Callable[[], bool]], Any],
             done: Callable[[Any], None]) -> None:
        signals = _AskSignals()
        worker = _Worker(lambda _progress, cancelled: work(signals.token.emit, cancelled), signals)
        signals.token.connect(self._on_token)
        signals.finished.connect(done)
        signals.failed.connect(self._on_failed)
        self.worker, self.signals = worker, signals
        self._update_buttons()
        QThreadPool.globalInstance().start(worker)

    @Slot()
    def ask(self) -> None:
        question = self.question.text().strip()
        if self.worker is not None or self.media_id is None or not question:
            return
        try:
            annotation_id = self.region()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        media_id, frame = self.media_id, self.frame
        params = AskParams(region_view=self.view.currentText())  # type: ignore[arg-type]
        self.streaming, self.asking = "", question
        follow_up, self.follow_up = self.follow_up, True
        self.status.setText("loading the model…" if self.kind.currentIndex() == 0 else "asking…")
        if follow_up:
            self._history_html = None  # re-read once: the conversation this question continues
        self.show_history("", question)

        def work(token: Callable[[str], None], cancelled: Callable[[], bool]) -> Answer:
            return ask_question(self.project, media_id, question, backend=self.backend(), frame=frame,
                                annotation_id=annotation_id, params=params, follow_up=follow_up, on_token=token,
                                cancel=cancelled)

        self._run(work, self._on_answered)

    @Slot()
    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancelled = True

    @Slot()
    def new_conversation(self) -> None:
        """Start afresh: the next question is not a follow-up (earlier answers stay in the project)."""
        if self.media_id is None:
            return
        self.last_answer = None
        self.history.setHtml("<p><i>New conversation.</i></p>")
        self._history_html = ""
        self.follow_up = False

    @Slot()
    def test(self) -> None:
        if self.worker is not None:
            return
        self.status.setText("testing the server…")
        self._run(lambda _token, _cancelled: preflight(self.backend()), self._on_tested)

    @Slot(str)
    def _on_token(self, piece: str) -> None:
        if not self.streaming:
            self.status.setText("")
        self.streaming += piece
        self.show_history(self.streaming, self.asking)

    def _finish(self) -> None:
        self.worker = self.signals = None
        self._update_buttons()

    @Slot(object)
    def _on_answered(self, answer: Answer) -> None:
        self._finish()
        self.last_answer = answer
        self.question.clear()
        self.status.setText(f"{answer.status}: {answer.seconds:.1f} s, first words after {answer.first_token_seconds or 0:.1f} s")
        self.show_history()
        self._update_buttons()
        self.answered.emit(answer)

    @Slot(object)
    def _on_tested(self, result: Any) -> None:
        self._finish()
        self.status.setText(f"OK: shown a plain {result.colour} image, the model answered {result.answer!r}")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._finish()
        self.status.setText(message)
        self.show_history()

    # ---- copying an answer into the project (undoable) ---------------------------------------------

    def _answer_text(self) -> str | None:
        return self.last_answer.answer.strip() if self.last_answer is not None else None

    @Slot()
    def copy_to_caption(self) -> None:
        text = self._answer_text()
        if text and self.last_answer is not None:
            self.undo_stack.push(SetCaption(self.project, self.last_answer.media_id, text, self.data_changed.emit,
                                            "Answer as caption"))

    @Slot()
    def copy_to_tag(self) -> None:
        text = self._answer_text()
        if text and self.last_answer is not None:
            media_id = self.last_answer.media_id
            tags = sorted({*self.project.tags(media_id), text})
            self.undo_stack.push(SetTags(self.project, media_id, tags, self.data_changed.emit, "Answer as tag"))

    @Slot()
    def copy_to_attribute(self) -> None:
        text, name = self._answer_text(), self.attribute.text().strip()
        if not name:
            self.status.setText("name the attribute the answer goes to")
            return
        if not text or len(self.selection) != 1:
            return
        before = self.project.get_annotation(self.selection[0])
        after = replace(before, attributes={**before.attributes, name: text})
        self.undo_stack.push(UpdateAnnotation(self.project, before, after, self.data_changed.emit,
                                              f"Answer as attribute {name}"))

