"""Run a long service call (add files, import, export) on a worker thread behind a progress dialog.

The work is the same function the CLI calls; it gets a progress callback and a cancel check. Results
and errors come back to the UI thread through queued signals, so the window keeps repainting.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from studio.core.errors import StudioError

Work = Callable[[Callable[[int, int], None], Callable[[], bool]], Any]
"""work(progress(done, total), cancelled() -> bool) -> result, run on a worker thread."""


class _WorkerSignals(QObject):
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)


class _Worker(QRunnable):
    def __init__(self, work: Work, signals: _WorkerSignals) -> None:
        super().__init__()
        self.work = work
        self.signals = signals
        self.cancelled = False

    def run(self) -> None:
        try:
            result = self.work(self.signals.progress.emit, lambda: self.cancelled)
        except StudioError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # a bug: say so plainly rather than kill the worker thread silently
            traceback.print_exc()
            self.signals.failed.emit(f"internal error: {type(exc).__name__}: {exc}")
        else:
            self.signals.finished.emit(result)


class Job(QObject):
    """One background job with its progress dialog; `done` carries the result, `failed` the message."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QWidget, title: str, work: Work) -> None:
        super().__init__(parent)
        self.title = title
        self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(400)  # quick jobs finish without a flashing dialog
        self.signals = _WorkerSignals()
        self.worker = _Worker(work, self.signals)
        self.signals.progress.connect(self._on_progress)
        self.signals.finished.connect(self._on_finished)
        self.signals.failed.connect(self._on_failed)
        self.dialog.canceled.connect(self._on_cancel)

    def start(self) -> Job:
        QThreadPool.globalInstance().start(self.worker)
        return self

    @Slot()
    def _on_cancel(self) -> None:
        self.worker.cancelled = True

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.dialog.setMaximum(total)
        self.dialog.setValue(done)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self._close()
        self.done.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._close()
        self.failed.emit(message)
        QMessageBox.warning(self.parent(), self.title, message)  # type: ignore[arg-type]

    def _close(self) -> None:
        self.dialog.reset()
        self.dialog.close()
