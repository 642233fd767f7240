"""Projects and datasets: new / open, add media, import and export, each on a worker behind a progress dialog
with the same service calls as the CLI.

A mixin of MainWindow (studio.ui.main_window): it uses the window's session, undo stack, status bar
and docks, and keeps one job of the window in one module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QFileDialog,
)

from studio.core.types import Media
from studio.db.project import Project
from studio.ui.jobs import Job

FORMATS = {  # name -> (menu text, whether the dataset is one file rather than a folder)
    "coco": ("COCO JSON", True),
    "yolo": ("YOLO folder", False),
    "voc": ("Pascal VOC folder", False),
    "labelme": ("labelme folder", False),
    "cvat": ("CVAT for images XML", True),
}


def export_dialog_title(format_name: str) -> str:
    """ "Export YOLO: choose the folder to write into" (not "Export YOLO folder into folder")."""
    name = FORMATS[format_name][0].removesuffix(" folder")
    return f"Export {name}: choose the folder to write into"


class DatasetActions:
    """Mixed into MainWindow."""

    # ---- long jobs ---------------------------------------------------------------------------------

    def run_job(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> Job:
        """Run a service call on a worker thread with a progress dialog; `done` gets its result."""
        job = Job(self, title, work)
        job.done.connect(done)
        job.done.connect(lambda _r: self._job_finished(job))
        job.failed.connect(lambda _m: self._job_finished(job))
        self.jobs.append(job)
        return job.start()

    def _job_finished(self, job: Job) -> None:
        self.jobs.remove(job)
        job.deleteLater()

    @Slot(object)
    def _on_media_batch_added(self, batch: list[Media]) -> None:
        """List what an add job stored so far; open the first image if nothing is shown yet."""
        self.browser.refresh()
        if self.media is None and batch:
            self.show_media(batch[0].id)

    def add_paths(self, paths: list[str | Path]) -> Job:
        """Add files and folders (the same call as `studio add`), then show them in the browser."""
        from studio.io.media import add_paths

        project = self._require()

        def work(progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Any:
            # batches reach the browser while the rest of the folder is still being read
            return add_paths(
                project, paths, skip_bad=True, progress=progress, cancel=cancelled, on_batch=self.media_batch_added.emit
            )

        def done(report: Any) -> None:  # the browser already listed each batch as it was stored
            message = f"Added {len(report.added)} media ({report.already_present} already there)"
            if report.failed:
                message += f"; skipped {len(report.failed)} unreadable: {report.failed[0]}"
            self.statusBar().showMessage(message, 10000)

        return self.run_job("Adding media…", work, done)

    def import_dataset(self, format_name: str, path: str | Path) -> Job:
        from studio.io.formats.transfer import import_dataset

        project = self._require()

        def work(progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            return import_dataset(project, format_name, path, progress=progress)

        def done(report: Any) -> None:
            self.browser.refresh()
            self.session.reload_labels()
            self.session.refresh_annotations()
            self._saved()
            self.statusBar().showMessage(f"Imported {report.annotations} annotations on {report.images} images", 10000)

        return self.run_job(f"Importing {FORMATS[format_name][0]}…", work, done)

    def export_dataset(self, format_name: str, out: str | Path) -> Job:
        from studio.io.formats.transfer import export_dataset

        project = self._require()

        def work(_progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Any:
            return export_dataset(project, format_name, out, cancel=cancelled)

        def done(report: Any) -> None:
            self.statusBar().showMessage(
                f"Exported {report.annotations} annotations on {report.images} images to {out}", 10000
            )

        return self.run_job(f"Exporting {FORMATS[format_name][0]}…", work, done)

    # ---- dialogs -----------------------------------------------------------------------------------

    def new_project_dialog(self) -> None:
        self._project_dialog("New project: choose an empty folder", Project.create)

    def open_project_dialog(self) -> None:
        self._project_dialog("Open project folder", Project.open)

    def _project_dialog(self, title: str, opener: Callable[[str], Project]) -> None:
        folder = QFileDialog.getExistingDirectory(self, title)
        project = self._guard(lambda: opener(folder)) if folder else None
        if project is not None:
            self.open_project(project)

    def add_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add images", "", "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp)"
        )
        if files:
            self._guard(lambda: self.add_paths(list(files)))

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images and videos (recursive)")
        if folder:
            self._guard(lambda: self.add_paths([folder]))

    def add_video_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add videos", "", "Videos (*.mp4 *.avi *.mov *.mkv *.m4v *.webm)")
        if files:
            self._guard(lambda: self.add_paths(list(files)))

    def import_dialog(self, format_name: str) -> None:
        text, single_file = FORMATS[format_name]
        if single_file:
            path, _ = QFileDialog.getOpenFileName(self, f"Import {text}")
        else:
            path = QFileDialog.getExistingDirectory(self, f"Import {text}")
        if path:
            self._guard(lambda: self.import_dataset(format_name, path))

    def export_dialog(self, format_name: str) -> None:
        out = QFileDialog.getExistingDirectory(self, export_dialog_title(format_name))
        if out:
            self._guard(lambda: self.export_dataset(format_name, out))
