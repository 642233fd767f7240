"""The Search dock: find images by text or by an image, "more like this" for the open image or the selected
shape, zero-shot tagging and near-duplicates, all over the project's stored CLIP embeddings.

A view plus wiring: every button is a call into studio.jobs.embed / studio.search that the CLI makes too
(`studio embed | search | tag | duplicates`), run on a worker thread through the window's job runner.
Results are a ranked list with scores; activating one opens that image (or frame) in the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.db import embeddings as store
from studio.db.project import Project
from studio.search.query import EmbeddingSet, Hit, MediaFilter, Space, resolve_space

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

RESULTS = 50
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class SearchPanel(QDockWidget):
    """Search, tag and de-duplicate the project with CLIP; `open_media(media id, frame)` asks to show a hit."""

    open_media = Signal(int, int)

    def __init__(self, project: Project, window: MainWindow) -> None:
        super().__init__("Search", window)
        self.setObjectName("Search")
        self.project = project
        self.window_ = window
        self.current: tuple[int, int] | None = None  # (media id, frame) on the canvas
        self.selected_annotation: int | None = None

        self.model = QComboBox()
        from studio.models.registry import all_plugins

        for spec in all_plugins(task="embed"):
            self.model.addItem(spec.id)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("weights: official name, file or model folder (default: official)")
        browse = QPushButton("…")
        browse.clicked.connect(self._pick_weights)
        self.embed_button = QPushButton("Embed project")
        self.embed_button.clicked.connect(self.embed)
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search by text, or drop an image here")
        self.query.returnPressed.connect(self.search_text)
        image_button = QPushButton("Image…")
        image_button.clicked.connect(self._pick_image)
        self.like_button = QPushButton("More like this")
        self.like_button.setToolTip("Images like the open image, or like the selected shape")
        self.like_button.clicked.connect(self.more_like_this)
        tag_button = QPushButton("Tag…")
        tag_button.setToolTip("Zero-shot tags from a list of class names, as a model run")
        tag_button.clicked.connect(self.ask_tag)
        duplicates_button = QPushButton("Duplicates ≥")
        duplicates_button.clicked.connect(self.duplicates)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.5, 1.0)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.01)
        self.threshold.setValue(0.95)
        self.threshold.setToolTip("Cosine similarity from which two images count as near-duplicates")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.results = QListWidget()
        self.results.itemActivated.connect(self._activated)

        body = QWidget()
        layout = QVBoxLayout(body)
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(self.embed_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.weights, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(image_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        for button in (self.like_button, tag_button, duplicates_button, self.threshold):
            row.addWidget(button)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        self.setWidget(body)
        self.setAcceptDrops(True)
        self._pick_stored_model()

    # ---- what the window tells the panel -------------------------------------------------------------

    def set_current(self, media_id: int, frame: int) -> None:
        self.current = (media_id, frame)

    def set_selection(self, annotation_ids: list[int]) -> None:
        self.selected_annotation = annotation_ids[0] if len(annotation_ids) == 1 else None

    # ---- model choice ---------------------------------------------------------------------------------

    def _pick_stored_model(self) -> None:
        """Preselect the model the project was embedded with (and its weights), if it was."""
        for model in store.embedding_models(self.project):
            recorded = store.recorded_embedder(self.project, model)
            if recorded is not None and self.model.findText(recorded[0]) >= 0:
                self.model.setCurrentText(recorded[0])
                self.weights.setText(recorded[1] or "")
                return

    def _weights(self) -> str | None:
        return self.weights.text().strip() or None

    def space(self) -> Space:
        return resolve_space(self.project, self.model.currentText(), self._weights())

    def allowed_media(self) -> set[int] | None:
        """The media the browser's filters let through (None: all): results keep to what the browser shows."""
        return MediaFilter(**self.window_.browser.model.media_filter.query()).media_ids(self.project)

    def _pick_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights file")
        if path:
            self.weights.setText(path)

    # ---- actions: each one service call on a worker thread --------------------------------------------

    def _run(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> None:
        self.status.setText(f"{title}…")
        job = self.window_.run_job(title, work, done)
        job.failed.connect(self.status.setText)

    def embed(self) -> None:
        from studio.jobs.embed import embed_project

        plugin, weights, project = self.model.currentText(), self._weights(), self.project

        def work(progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Any:
            return embed_project(project, plugin, weights=weights, progress=lambda d, t, _eta: progress(d, t),
                                 cancel=cancelled)

        def done(report: Any) -> None:
            skipped = f", {len(report.failed)} unreadable skipped" if report.failed else ""
            self.status.setText(f"Embedded {report.embedded} images ({report.unchanged} unchanged{skipped})")

        self._run("Embedding images", work, done)

    def search_text(self) -> None:
        text = self.query.text().strip()
        if text:
            self._search_with(lambda embedder: embedder.embed_texts([text])[0], f"“{text}”")

    def search_image(self, path: Path) -> None:
        from studio.io.media import read_image

        self._search_with(lambda embedder: embedder.embed_images([read_image(path)])[0], path.name)

    def _search_with(self, encode: Callable[[Any], Any], what: str) -> None:
        from studio.models.embedders import load_embedder

        try:
            space = self.space()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        project, allowed = self.project, self.allowed_media()

        def work(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> list[Hit]:
            embedder = load_embedder(space.plugin_id, weights=space.weights)
            return EmbeddingSet(project, space.model).search(encode(embedder), RESULTS, media_ids=allowed)

        self._run(f"Searching {what}", work, lambda hits: self.show_hits(hits, what))

    def more_like_this(self) -> None:
        """Images like the selected shape (its crop must be embedded) or else like the open image."""
        if self.current is None:
            self.status.setText("Open an image first")
            return
        try:
            space = self.space()
            media_id, frame = self.current
            if self.selected_annotation is not None:
                key, what = (media_id, frame, self.selected_annotation), "the selected shape"
                vector = store.vector_of(self.project, space.model, key)
                if vector is None:  # not embedded yet: encode its crop now
                    vector = self._crop_vector(space, self.selected_annotation)
            else:
                key, what = (media_id, frame, store.NO_ANNOTATION), self.project.get_media(media_id).name
                vector = store.vector_of(self.project, space.model, key)
            if vector is None:
                raise StudioError(f"{what} has no embedding of {space.model}; embed the project first")
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        hits = EmbeddingSet(self.project, space.model).search(vector, RESULTS, media_ids=self.allowed_media())
        self.show_hits(hits, f"like {what}")

    def _crop_vector(self, space: Space, annotation_id: int) -> Any:
        from studio.io.media import read_media
        from studio.models.embedders import load_embedder

        annotation = self.project.get_annotation(annotation_id)
        pixels = read_media(self.project, self.project.get_media(annotation.media_id), annotation.frame)
        x, y, w, h = annotation.shape.bbox()
        crop = pixels[max(0, int(y)) : int(y + h) + 1, max(0, int(x)) : int(x + w) + 1]
        return load_embedder(space.plugin_id, weights=space.weights).embed_images([crop])[0]

    def ask_tag(self) -> None:
        text, ok = QInputDialog.getText(self, "Zero-shot tagging", "Class names, comma-separated:")
        if ok and text.strip():
            self.tag(text)

    def tag(self, classes: str) -> None:
        """Tag every embedded image with its best class as a new run (shown in the Runs panel)."""
        from studio.models.embedders import load_embedder
        from studio.search.zeroshot import class_names, tag_images

        try:
            names, space = class_names(classes), self.space()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        project = self.project

        def work(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            embedder = load_embedder(space.plugin_id, weights=space.weights)
            return tag_images(project, embedder, EmbeddingSet(project, space.model), names,
                              plugin_id=space.plugin_id, weights=space.weights)

        def done(run: Any) -> None:
            accuracy = run.stats.get("accuracy")
            measured = f"; accuracy {accuracy:.2f} on {run.stats['evaluated']} tagged images" if accuracy is not None else ""
            self.status.setText(f"Run {run.name}: tagged {run.stats['tagged']} images{measured}")
            self.window_.refresh_runs()

        self._run("Zero-shot tagging", work, done)

    def duplicates(self) -> None:
        """Groups of near-duplicates above the threshold, flagged when they straddle train/val/test tags."""
        from studio.search.duplicates import find_duplicates

        try:
            space = self.space()
        except StudioError as exc:
            self.status.setText(str(exc))
            return
        project, threshold = self.project, self.threshold.value()

        def work(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            return find_duplicates(project, EmbeddingSet(project, space.model), threshold=threshold)

        self._run("Finding near-duplicates", work, self.show_duplicates)

    # ---- results ------------------------------------------------------------------------------------

    def show_hits(self, hits: list[Hit], what: str) -> None:
        self.results.clear()
        names = {m.id: m.path for m in self.project.list_media()}
        for hit in hits:
            where = f" @{hit.frame}" if hit.frame else ""
            item = QListWidgetItem(f"{hit.score:.3f}   {names.get(hit.media_id, hit.media_id)}{where}")
            item.setData(Qt.ItemDataRole.UserRole, (hit.media_id, hit.frame))
            self.results.addItem(item)
        self.status.setText(f"{len(hits)} results for {what}")

    def show_duplicates(self, report: Any) -> None:
        self.results.clear()
        names = {m.id: m.path for m in self.project.list_media()}
        leaks = {id(g) for g in report.leaks}
        for number, group in enumerate(report.groups, 1):
            leak = "  — across splits!" if id(group) in leaks else ""
            header = QListWidgetItem(f"Group {number}: {len(group.items)} images ≥ {group.similarity:.3f}{leak}")
            header.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.results.addItem(header)
            for media_id, frame in group.items:
                item = QListWidgetItem(f"    {names.get(media_id, media_id)}" + (f" @{frame}" if frame else ""))
                item.setData(Qt.ItemDataRole.UserRole, (media_id, frame))
                self.results.addItem(item)
        self.status.setText(f"{len(report.groups)} groups of near-duplicates, {len(report.leaks)} across splits")

    def _activated(self, item: QListWidgetItem) -> None:
        target = item.data(Qt.ItemDataRole.UserRole)
        if target is not None:
            self.open_media.emit(*target)

    # ---- images picked or dropped -------------------------------------------------------------------

    def _pick_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by image", "", "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp)")
        if path:
            self.search_image(Path(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in IMAGE_SUFFIXES:
                self.search_image(path)
                return
