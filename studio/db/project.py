"""The project service: every read and edit of a project goes through `Project`.

The CLI, the GUI, jobs and tests share it. Each method is one short transaction committed before it
returns, so a crash loses at most the edit in flight; `with project.transaction():` groups many calls
into one all-or-nothing transaction (imports). Rows are turned into studio.core types here and never
leave this module, so no caller holds a session.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar

from sqlalchemy import Engine, ScalarResult, Select, Update, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from studio.core.errors import NotFoundError, ProjectError, StudioError
from studio.core.shapes import shape_from_json
from studio.core.types import (
    Annotation,
    Answer,
    FileId,
    KeypointSchema,
    Label,
    Media,
    MediaInfo,
    ModelRun,
    ReviewState,
    RunStatus,
    Split,
    TrainedModel,
    check_label_name,
    default_color,
)
from studio.db import migrate, project_file
from studio.db.engine import make_engine
from studio.db.schema import (
    AnnotationRow,
    AnswerRow,
    EmbeddingRow,
    FileIdRow,
    LabelRow,
    MediaRow,
    RunRow,
    SettingRow,
    SplitRow,
    TagRow,
    TrackRow,
    TrainedModelRow,
)

DB_NAME = "studio.db"
IDS_PER_QUERY = 10_000
"""Ids per IN (...) query: well under SQLite's limit of 32,766 parameters per statement."""

Source: TypeAlias = Literal["human", "all"] | int
"""Which annotations: "human" (ground truth), "all", or the id of a model run."""


_ESCAPED_BYTES = 0xF700
"""A file name that is not valid UTF-8 (Python reads it with surrogateescape: byte 0xNN becomes U+DCNN)
is stored with each such byte as U+F7NN, a private-use character, so the database holds valid UTF-8 and
`resolve` gives back the exact bytes. Real names holding U+F780..U+F7FF are the one ambiguity."""
_ESCAPED_CHAR = re.compile("[\uf780-\uf7ff]")


def _storable(path: str) -> str:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(chr(_ESCAPED_BYTES + ord(ch) - 0xDC00) if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in path)
    return path


def _on_disk(stored: str) -> str:
    if not _ESCAPED_CHAR.search(stored):  # a regex: resolve() runs once per media of an export
        return stored
    return _ESCAPED_CHAR.sub(lambda match: chr(0xDC00 + ord(match.group()) - _ESCAPED_BYTES), stored)


@functools.lru_cache(maxsize=4096)
def _real_directory(directory: str) -> str:
    """realpath of a folder, once per folder: the files of one folder share it."""
    return os.path.realpath(directory)


def _media(row: MediaRow) -> Media:
    return Media(
        id=row.id, path=row.path, kind=row.kind, width=row.width, height=row.height,  # type: ignore[arg-type]
        size_bytes=row.size_bytes, mtime_ns=row.mtime_ns, frame_count=row.frame_count, fps=row.fps,
        status=row.status, review_state=row.review_state, caption=row.caption,  # type: ignore[arg-type]
        labelled=bool(row.labelled),
    )


def _label(row: LabelRow) -> Label:
    keypoints = None if row.keypoints is None else KeypointSchema.from_json(row.keypoints)
    return Label(id=row.id, name=row.name, color=row.color, keypoints=keypoints)


def _run(row: RunRow) -> ModelRun:
    return ModelRun(
        id=row.id, name=row.name, plugin=row.plugin, weights=row.weights, params=dict(row.params or {}),
        device=row.device, status=row.status, created_at=row.created_at,  # type: ignore[arg-type]
        finished_at=row.finished_at, stats=dict(row.stats or {}),
    )


def _trained_model(row: TrainedModelRow) -> TrainedModel:
    return TrainedModel(
        id=row.id, name=row.name, task=row.task, plugin=row.plugin, base=row.base,  # type: ignore[arg-type]
        status=row.status, weights=row.weights, sha256=row.sha256, params=dict(row.params or {}),  # type: ignore[arg-type]
        split=dict(row.split or {}), metrics=dict(row.metrics or {}), history=list(row.history or []),
        validation_run_id=row.validation_run_id, created_at=row.created_at, finished_at=row.finished_at,
    )


def _annotation(row: AnnotationRow) -> Annotation:
    return Annotation(
        id=row.id, media_id=row.media_id, frame=row.frame, label_id=row.label_id, run_id=row.run_id,
        shape=shape_from_json(row.geometry), score=row.score, attributes=dict(row.attributes or {}),
        track_id=row.track_id, bbox=(row.x, row.y, row.w, row.h), area=row.area, created_by=row.created_by,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _answer(row: AnswerRow) -> Answer:
    region = shape_from_json(row.region) if row.region else None
    return Answer(
        id=row.id, media_id=row.media_id, frame=row.frame, annotation_id=row.annotation_id,
        region=region, conversation=row.conversation, run_id=row.run_id,  # type: ignore[arg-type]
        question=row.question, answer=row.answer, status=row.status, backend=row.backend,  # type: ignore[arg-type]
        model=row.model, params=dict(row.params or {}), seconds=row.seconds,
        first_token_seconds=row.first_token_seconds, created_at=row.created_at,
    )


def annotation_values(ann: Annotation) -> dict[str, Any]:
    """Column values for an annotation row (bbox and area as the annotation states them, else derived
    from the shape)."""
    from studio.core import geometry  # lazily: numpy and pycocotools cost CLI commands ~0.4 s to import

    x, y, w, h = ann.shape.bbox() if ann.bbox is None else ann.bbox
    values: dict[str, Any] = {
        "media_id": ann.media_id, "frame": ann.frame, "label_id": ann.label_id, "run_id": ann.run_id,
        "kind": ann.shape.kind, "geometry": ann.shape.to_json(), "x": x, "y": y, "w": w, "h": h,
        "area": geometry.area(ann.shape) if ann.area is None else ann.area, "score": ann.score, "attributes": dict(ann.attributes),
        "track_id": ann.track_id, "created_by": ann.created_by,
    }
    # an undo re-adds a deleted annotation exactly as it was: same id and timestamps
    if ann.id is not None:
        values["id"] = ann.id
    if ann.created_at is not None:
        values["created_at"] = ann.created_at
    if ann.updated_at is not None:
        values["updated_at"] = ann.updated_at
    return values


_ANNOTATIONS = AnnotationRow.__table__
_INDEXED = tuple(sorted({column.name for index in _ANNOTATIONS.indexes for column in index.columns}))
_INDEXED_VALUES = select(*(_ANNOTATIONS.c[name] for name in _INDEXED)).where(
    _ANNOTATIONS.c.id == bindparam("annotation_id")
)


@functools.cache
def _update_statement(changed_indexed: tuple[str, ...]) -> Update:
    """The UPDATE that saves an edit, the GUI's most frequent write, setting indexed columns only if changed.

    SQLite rewrites an index entry whenever its column is SET, even to the same value: setting them all
    wrote 4 pages per edit instead of 1, and with synchronous=FULL that doubled the time to save. Built
    once per set of changed columns, it also skips what the ORM's UPDATE costs on every call.
    """
    skipped = {"id", "created_at", *(set(_INDEXED) - set(changed_indexed))}
    return (
        update(_ANNOTATIONS)
        .where(_ANNOTATIONS.c.id == bindparam("annotation_id"))
        .values({c.name: bindparam(f"new_{c.name}") for c in _ANNOTATIONS.columns if c.name not in skipped})
    )


RowT = TypeVar("RowT", MediaRow, LabelRow, RunRow, AnnotationRow)


def _insert_ignoring_conflicts(session: Session, model: type[LabelRow] | type[SettingRow]) -> Any:
    """INSERT that does nothing when a unique key exists already (SQLite and PostgreSQL spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model).on_conflict_do_nothing()


def _get_row(session: Session, model: type[RowT], row_id: int) -> RowT:
    row = session.get(model, row_id)
    if row is None:
        what = {MediaRow: "media", LabelRow: "label", RunRow: "run", AnnotationRow: "annotation"}[model]
        raise NotFoundError(f"no {what} with id {row_id}")
    return row


@contextmanager
def _integrity_errors_explained() -> Iterator[None]:
    """A broken reference or a reused id becomes one clear StudioError (the database says which)."""
    try:
        yield
    except IntegrityError as exc:
        raise StudioError(f"annotation refers to a missing media, label or run, or reuses an id ({exc.orig})") from exc


BUSY_MESSAGE = "project is busy (another Studio process is writing); try again"


@contextmanager
def _database_errors_explained(project: Project) -> Iterator[None]:
    """A write to a read-only project, or one that waited too long for another writer, becomes one line."""
    try:
        yield
    except OperationalError as exc:
        text = str(exc.orig).lower()
        if "readonly" in text or "read-only" in text or "read only" in text:
            raise ProjectError(
                f"{project.root} is open read-only (its file or folder cannot be written); changes cannot be saved"
            ) from None
        if "locked" in text or "busy" in text:
            raise ProjectError(BUSY_MESSAGE) from None
        raise


def _this_process() -> tuple[int, str, float | None]:
    """(pid, host name, start time): what tells this process from a later one that reuses its pid."""
    import socket

    import psutil

    try:
        started: float | None = psutil.Process().create_time()
    except psutil.Error:
        started = None
    return os.getpid(), socket.gethostname(), started


def _process_is_running(pid: int, started: float | None) -> bool:
    """Whether the process `pid` of this host that started at `started` still exists (and is no zombie)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # it exists but we may not look at it
        return True


class Project:
    """A labelling project: a directory holding studio.db (or any SQLAlchemy URL plus a media root)."""

    def __init__(self, engine: Engine, root: Path, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        """Opened without the right to write (read-only file or medium): reads work, writes raise ProjectError."""
        self.root = root.resolve()
        self._root_prefix = os.path.join(str(self.root), "")  # "/path/to/project/": media inside start with it
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._local = threading.local()

    # ---- opening -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path | str) -> Project:
        """Make a new project directory (it may exist, but must not already hold a project)."""
        root = Path(root)
        if (root / DB_NAME).exists():
            raise ProjectError(f"{root} already holds a project; open it instead")
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{root} exists and is not a directory")
        try:
            root.mkdir(parents=True, exist_ok=True)
            project_file.mark(root / DB_NAME)
        except (OSError, sqlite3.Error) as exc:
            raise ProjectError(f"cannot create a project in {root}: {getattr(exc, 'strerror', None) or exc}") from exc
        return cls._connect(f"sqlite:///{(root / DB_NAME).resolve()}", root, new=True)

    @classmethod
    def open(cls, root: Path | str, *, create: bool = False, read_only: bool | None = None) -> Project:
        """Open an existing project directory (or its studio.db file); `create=True` makes it if absent.

        A file that is not a Studio project (another program's database, an empty file) is refused and left
        untouched. `read_only` defaults to whether the file and its folder can be written.
        """
        root = Path(root)
        if root.name == DB_NAME and root.is_file():
            root = root.parent
        db = root / DB_NAME
        if not db.is_file():
            if create:
                return cls.create(root)
            raise ProjectError(f"{root} is not a Studio project (no {DB_NAME}); create it with `studio new {root}`")
        unmarked = project_file.check(db)
        if read_only is None:
            read_only = not project_file.writable(db)
        if read_only:
            return cls._connect(project_file.read_only_url(db), root, read_only=True)
        project = cls._connect(f"sqlite:///{db.resolve()}", root)
        if unmarked:  # made before Studio marked its files: mark it now
            with project.engine.begin() as conn:
                for statement in project_file.STAMP_STATEMENTS:
                    conn.exec_driver_sql(statement)
        return project

    @classmethod
    def connect(cls, url: str, root: Path | str) -> Project:
        """Open (creating tables if needed) a project in any database, e.g. PostgreSQL for a team.

        `root` is the directory that relative media paths are resolved against.
        """
        return cls._connect(url, Path(root))

    @classmethod
    def _connect(cls, url: str, root: Path, *, read_only: bool = False, new: bool = False) -> Project:
        engine = make_engine(url, read_only=read_only)
        try:
            if read_only:
                migrate.require_current(engine)
            elif new:
                migrate.create_schema(engine)
            else:
                migrate.upgrade(engine)
            project = cls(engine, root, read_only=read_only)
            if not read_only:
                project.mark_interrupted_runs()
        except SQLAlchemyError as exc:  # unreachable server, not a database file, a broken schema, ...
            engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            if "locked" in str(reason).lower():
                raise ProjectError(BUSY_MESSAGE) from None
            raise ProjectError(f"cannot open the project database {engine.url!r}: {reason}") from exc
        except BaseException:
            engine.dispose()
            raise
        return project

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- transactions ------------------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """The open transaction of `transaction()` on this thread, or a new one committed at the end."""
        active: Session | None = getattr(self._local, "session", None)
        if active is not None:
            yield active
            return
        with _database_errors_explained(self), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the calls made inside into one transaction: all of them are saved, or none."""
        if getattr(self._local, "session", None) is not None:
            yield  # nested: the outer transaction decides
            return
        with _database_errors_explained(self), self._sessions() as session, session.begin():
            self._local.session = session
            try:
                yield
            finally:
                self._local.session = None

    # ---- media -------------------------------------------------------------------------------------

    def stored_path(self, path: Path | str) -> str:
        """How a media path is stored: relative (posix) inside the project directory, absolute outside."""
        absolute = os.path.abspath(path)
        inside = self._inside_root(absolute)
        if inside is None:
            # the root is stored resolved: a path through a symlinked folder (macOS's /tmp, a linked home)
            # still lies inside the project. The file itself stays unresolved: a linked file is its own media.
            directory, name = os.path.split(absolute)
            inside = self._inside_root(os.path.join(_real_directory(directory), name))
        return _storable(inside if inside is not None else Path(absolute).as_posix())

    def _inside_root(self, absolute: str) -> str | None:
        # string prefix, not pathlib: adding a 10,000-file folder calls this per file (0.5 s -> 0.03 s)
        prefix = self._root_prefix
        return absolute[len(prefix) :].replace(os.sep, "/") if absolute.startswith(prefix) else None

    def resolve(self, media: Media | str) -> Path:
        """Where a media file is on disk."""
        path = Path(_on_disk(media.path if isinstance(media, Media) else media))
        return path if path.is_absolute() else self.root / path

    def add_media(self, infos: Sequence[MediaInfo]) -> list[Media]:
        """Add probed files; a path already in the project is returned as it is, not added twice."""
        paths = [self.stored_path(info.path) for info in infos]
        with self._session() as s:
            # One IN query per 500 paths and one bulk INSERT, not a SELECT and a flush per file: adding
            # 10,000 files takes a fraction of a second instead of several seconds.
            rows: dict[str, MediaRow] = {}
            for start in range(0, len(paths), 500):
                found = s.scalars(select(MediaRow).where(MediaRow.path.in_(paths[start : start + 500])))
                rows.update((row.path, row) for row in found)
            new = {
                path: {"path": path, "kind": info.kind, "width": info.width, "height": info.height,
                       "size_bytes": info.size_bytes, "mtime_ns": info.mtime_ns, "frame_count": info.frame_count,
                       "fps": info.fps}
                for path, info in zip(paths, infos, strict=True) if path not in rows
            }
            if new:
                rows.update((row.path, row) for row in s.scalars(insert(MediaRow).returning(MediaRow), list(new.values())))
            return [_media(rows[path]) for path in paths]

    def get_media(self, media_id: int) -> Media:
        with self._session() as s:
            row = _get_row(s, MediaRow, media_id)
            return _media(row)

    def find_media(self, path: Path | str) -> Media | None:
        """The media stored under this path (given as on disk, or as stored)."""
        stored = path if isinstance(path, str) and not os.path.isabs(path) and "\\" not in path else None
        candidates = {self.stored_path(path)} | ({stored} if stored else set())
        with self._session() as s:
            row = s.scalar(select(MediaRow).where(MediaRow.path.in_(candidates)))
            return None if row is None else _media(row)

    def _media_query(
        self, *, name_contains: str | None, label_id: int | None, unannotated: bool, review_state: ReviewState | None
    ) -> Select[tuple[MediaRow]]:
        query = select(MediaRow)
        human = AnnotationRow.run_id.is_(None)
        if name_contains:
            query = query.where(MediaRow.path.icontains(name_contains, autoescape=True))
        if label_id is not None:
            query = query.where(
                exists().where(AnnotationRow.media_id == MediaRow.id, AnnotationRow.label_id == label_id, human)
            )
        if unannotated:
            query = query.where(~exists().where(AnnotationRow.media_id == MediaRow.id, human))
        if review_state is not None:
            query = query.where(MediaRow.review_state == review_state)
        return query

    def list_media(
        self,
        *,
        offset: int = 0,
        limit: int | None = None,
        name_contains: str | None = None,
        label_id: int | None = None,
        unannotated: bool = False,
        review_state: ReviewState | None = None,
    ) -> list[Media]:
        """Media in the order they were added, filtered (label and "unannotated" look at human annotations)."""
        query = self._media_query(
            name_contains=name_contains, label_id=label_id, unannotated=unannotated, review_state=review_state
        )
        # plain column rows, not ORM objects: listing 10,000 media costs a third of the time
        query = query.with_only_columns(*MediaRow.__table__.columns).order_by(MediaRow.id).offset(offset).limit(limit)
        with self._session() as s:
            return [_media(row) for row in s.execute(query)]

    def count_media(
        self,
        *,
        name_contains: str | None = None,
        label_id: int | None = None,
        unannotated: bool = False,
        review_state: ReviewState | None = None,
    ) -> int:
        query = self._media_query(
            name_contains=name_contains, label_id=label_id, unannotated=unannotated, review_state=review_state
        )
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(query.subquery())) or 0

    def _update_media(self, media_id: int, **values: Any) -> Media:
        with self._session() as s:
            row = _get_row(s, MediaRow, media_id)
            for key, value in values.items():
                setattr(row, key, value)
            return _media(row)

    def set_review_state(self, media_id: int, state: ReviewState) -> Media:
        return self._update_media(media_id, review_state=state)

    def set_caption(self, media_id: int, caption: str | None) -> Media:
        return self._update_media(media_id, caption=caption)

    def mark_labelled(self, media_ids: Iterable[int]) -> None:
        """Record that these images' ground truth is complete (listed by a dataset file), empty or not."""
        ids = sorted(set(media_ids))
        with self._session() as s:
            for start in range(0, len(ids), IDS_PER_QUERY):
                s.execute(update(MediaRow).where(MediaRow.id.in_(ids[start : start + IDS_PER_QUERY])).values(labelled=True))

    def set_media_status(self, media_id: int, status: str, info: MediaInfo | None = None) -> Media:
        """Record what change detection found; with `info`, also the file's new size and mtime."""
        values: dict[str, Any] = {"status": status}
        if info is not None:
            values.update(size_bytes=info.size_bytes, mtime_ns=info.mtime_ns, width=info.width, height=info.height,
                          frame_count=info.frame_count, fps=info.fps)
        return self._update_media(media_id, **values)

    # ---- labels ------------------------------------------------------------------------------------

    def labels(self) -> list[Label]:
        with self._session() as s:
            return [_label(row) for row in s.scalars(select(LabelRow).order_by(LabelRow.id))]

    def get_label(self, label_id: int) -> Label:
        with self._session() as s:
            row = _get_row(s, LabelRow, label_id)
            return _label(row)

    def find_label(self, name: str) -> Label | None:
        with self._session() as s:
            row = s.scalar(select(LabelRow).where(LabelRow.name == name))
            return None if row is None else _label(row)

    def ensure_label(self, name: str, color: str | None = None) -> Label:
        """The label with this name, created (with `color` or the next palette colour) if absent."""
        check_label_name(name)
        name = name.strip()
        with self._session() as s:
            row = s.scalar(select(LabelRow).where(LabelRow.name == name))
            if row is None:
                count = s.scalar(select(func.count(LabelRow.id))) or 0
                label = Label(id=0, name=name, color=color or default_color(count))  # validates
                # another process may create the same label at the same moment: insert unless it exists,
                # then read whichever row won (the insert took the write lock, so the read sees it)
                s.execute(_insert_ignoring_conflicts(s, LabelRow).values(name=label.name, color=label.color))
                row = s.scalar(select(LabelRow).where(LabelRow.name == name).execution_options(populate_existing=True))
                assert row is not None
            return _label(row)

    def set_label_keypoints(self, label_id: int, keypoints: KeypointSchema | None) -> Label:
        """Make a label a keypoint label (its points' names and skeleton), or a plain one with None."""
        with self._session() as s:
            row = _get_row(s, LabelRow, label_id)
            row.keypoints = None if keypoints is None else keypoints.to_json()
            return _label(row)

    def rename_label(self, label_id: int, name: str) -> Label:
        existing = self.find_label(name.strip())
        if existing is not None and existing.id != label_id:
            raise StudioError(f"a label named {name.strip()!r} exists already; merge the labels instead")
        return self._update_label(label_id, name=name.strip())

    def recolor_label(self, label_id: int, color: str) -> Label:
        return self._update_label(label_id, color=color)

    def _update_label(self, label_id: int, **values: str) -> Label:
        with self._session() as s:
            row = _get_row(s, LabelRow, label_id)
            _label(LabelRow(id=row.id, name=values.get("name", row.name), color=values.get("color", row.color)))
            for key, value in values.items():
                setattr(row, key, value)
            return _label(row)

    def merge_labels(self, source_id: int, target_id: int) -> int:
        """Move every annotation of `source_id` to `target_id` and delete the source label."""
        if source_id == target_id:
            return 0
        self.get_label(source_id)
        self.get_label(target_id)
        with self._session() as s:
            moved = s.execute(
                update(AnnotationRow).where(AnnotationRow.label_id == source_id).values(label_id=target_id)
            ).rowcount
            s.execute(update(FileIdRow).where(FileIdRow.label_id == source_id).values(label_id=target_id))
            s.execute(delete(LabelRow).where(LabelRow.id == source_id))
        return moved

    def delete_label(self, label_id: int) -> None:
        """Delete an unused label; one still in use must be merged into another first."""
        with self._session() as s:
            used = s.scalar(select(func.count(AnnotationRow.id)).where(AnnotationRow.label_id == label_id))
            if used:
                raise StudioError(f"label is used by {used} annotations; merge it into another label instead")
            if s.execute(delete(LabelRow).where(LabelRow.id == label_id)).rowcount == 0:
                raise NotFoundError(f"no label with id {label_id}")

    def label_counts(self, source: Source = "human") -> dict[int, int]:
        """Annotations per label id for a source (labels without any are left out)."""
        count = func.count(AnnotationRow.id)
        if source == "human":
            # counted with FILTER, not WHERE: "run_id IS NULL" matches most rows, and as a WHERE it made
            # SQLite sort them all for the GROUP BY instead of reading the (label_id, run_id) index in order
            count = count.filter(AnnotationRow.run_id.is_(None))
        query = select(AnnotationRow.label_id, count).group_by(AnnotationRow.label_id)
        if isinstance(source, int):
            query = query.where(AnnotationRow.run_id == source)
        with self._session() as s:
            return {label_id: n for label_id, n in s.execute(query).all() if n}

    # ---- annotations -------------------------------------------------------------------------------

    @staticmethod
    def _filter_source(query: Select, source: Source) -> Select:
        if source == "human":
            return query.where(AnnotationRow.run_id.is_(None))
        if source == "all":
            return query
        return query.where(AnnotationRow.run_id == source)

    def add_annotation(self, ann: Annotation) -> Annotation:
        """Store one annotation (an `id` set re-inserts a deleted one under its id, for undo)."""
        with self._session() as s:
            row = AnnotationRow(**annotation_values(ann))
            s.add(row)
            with _integrity_errors_explained():
                s.flush()
            return _annotation(row)

    def add_annotations(self, anns: Iterable[Annotation], *, batch_size: int = 5000) -> int:
        """Store many annotations with bulk inserts; returns how many."""
        count = 0
        batch: list[dict[str, Any]] = []
        with self._session() as s:
            for ann in anns:
                batch.append(annotation_values(ann))
                if len(batch) >= batch_size:
                    count += self._insert(s, batch)
                    batch = []
            if batch:
                count += self._insert(s, batch)
        return count

    @staticmethod
    def _insert(session: Session, batch: list[dict[str, Any]]) -> int:
        now = datetime.now(UTC)
        for values in batch:
            values.setdefault("created_at", now)
            values.setdefault("updated_at", values["created_at"])
        with _integrity_errors_explained():
            session.execute(insert(AnnotationRow), batch)
        return len(batch)

    def get_annotation(self, annotation_id: int) -> Annotation:
        with self._session() as s:
            row = _get_row(s, AnnotationRow, annotation_id)
            return _annotation(row)

    def update_annotation(self, ann: Annotation) -> Annotation:
        """Save an edited annotation (shape, label, attributes, ...); returns it with its new timestamp."""
        if ann.id is None:
            raise StudioError("cannot update an annotation that was never saved")
        if ann.bbox is not None or ann.area is not None:
            with self._session() as s:
                stored = s.scalar(select(AnnotationRow.geometry).where(AnnotationRow.id == ann.id))
            if stored != ann.shape.to_json():  # a stated box and area belong to the shape they came with
                ann = replace(ann, bbox=None, area=None)
        values = annotation_values(ann)
        values.pop("id")
        values.pop("created_at", None)
        values["updated_at"] = datetime.now(UTC)
        params = {f"new_{name}": value for name, value in values.items()}
        with self._session() as s:
            conn = s.connection()
            current = conn.execute(_INDEXED_VALUES, {"annotation_id": ann.id}).one_or_none()
            if current is None:
                raise NotFoundError(f"no annotation with id {ann.id}")
            changed = tuple(name for name, old in zip(_INDEXED, current, strict=True) if values[name] != old)
            with _integrity_errors_explained():
                conn.execute(_update_statement(changed), {**params, "annotation_id": ann.id})
        return replace(
            ann, updated_at=values["updated_at"], bbox=(values["x"], values["y"], values["w"], values["h"]),
            area=values["area"],
        )

    def delete_annotations(self, annotation_ids: Sequence[int]) -> list[Annotation]:
        """Delete and return the deleted annotations (so an undo can re-add them with their ids)."""
        ids = list(annotation_ids)
        deleted: list[Annotation] = []
        with self._session() as s:
            # in chunks: SQLite refuses a statement with more than 32,766 parameters (select-all on a video)
            for start in range(0, len(ids), IDS_PER_QUERY):
                chunk = ids[start : start + IDS_PER_QUERY]
                deleted += [_annotation(row) for row in s.scalars(select(AnnotationRow).where(AnnotationRow.id.in_(chunk)))]
                s.execute(delete(AnnotationRow).where(AnnotationRow.id.in_(chunk)))
        return sorted(deleted, key=lambda ann: ann.id or 0)

    def annotations(
        self,
        media_id: int | None = None,
        *,
        frame: int | None = None,
        source: Source = "human",
        label_ids: Sequence[int] | None = None,
        min_score: float | None = None,
    ) -> list[Annotation]:
        """Annotations matching every filter given, in creation order."""
        query = self._filter_source(select(AnnotationRow), source)
        if media_id is not None:
            query = query.where(AnnotationRow.media_id == media_id)
        if frame is not None:
            query = query.where(AnnotationRow.frame == frame)
        if label_ids is not None:
            query = query.where(AnnotationRow.label_id.in_(label_ids))
        if min_score is not None:
            query = query.where(AnnotationRow.score >= min_score)
        with self._session() as s:
            result: ScalarResult[AnnotationRow] = s.scalars(query.order_by(AnnotationRow.id))
            return [_annotation(row) for row in result]

    def annotation_table(self, source: Source = "human", *, with_geometry: bool = False) -> dict[str, list[Any]]:
        """Annotation fields as columns (lists by name), in creation order, without building objects.

        For bulk readers such as evaluation over 100k predictions: the stored bbox (x, y, w, h) and area
        need no shape decoding. Columns: id, media_id, frame, label_id, kind, x, y, w, h, area, score,
        attributes, track_id, and geometry (the shape's JSON) if `with_geometry`.
        """
        names = ["id", "media_id", "frame", "label_id", "kind", "x", "y", "w", "h", "area", "score", "attributes", "track_id"]
        names += ["geometry"] if with_geometry else []
        query = select(*(AnnotationRow.__table__.c[name] for name in names))
        with self._session() as s:
            rows = s.execute(self._filter_source(query, source).order_by(AnnotationRow.id)).all()
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}

    def annotated_frames(self, media_id: int, source: Source = "human") -> list[int]:
        """Frames of a video that hold annotations (keyframe markers on the timeline)."""
        query = self._filter_source(
            select(AnnotationRow.frame).where(AnnotationRow.media_id == media_id).distinct(), source
        )
        with self._session() as s:
            return sorted(s.scalars(query))

    # ---- model runs --------------------------------------------------------------------------------

    def create_run(
        self,
        plugin: str,
        *,
        name: str | None = None,
        weights: str | None = None,
        params: dict[str, Any] | None = None,
        device: str | None = None,
    ) -> ModelRun:
        """Start a new run (never reuses one); without a name it is called "<plugin>-<n>"."""
        with self._session() as s:
            if name is None:
                taken = set(s.scalars(select(RunRow.name)))
                n = 1
                while f"{plugin}-{n}" in taken:
                    n += 1
                name = f"{plugin}-{n}"
            elif s.scalar(select(RunRow.id).where(RunRow.name == name)) is not None:
                raise StudioError(f"a run named {name!r} exists already; choose another name")
            pid, host, started = _this_process()
            row = RunRow(name=name, plugin=plugin, weights=weights, params=params or {}, device=device, pid=pid,
                         host=host, process_started=started)
            s.add(row)
            s.flush()
            return _run(row)

    def finish_run(self, run_id: int, status: RunStatus, stats: dict[str, Any] | None = None) -> ModelRun:
        with self._session() as s:
            row = _get_row(s, RunRow, run_id)
            row.status = status
            row.finished_at = datetime.now(UTC)
            if stats is not None:
                row.stats = {**(row.stats or {}), **stats}
            return _run(row)

    def mark_interrupted_runs(self) -> list[int]:
        """Mark "interrupted" the runs of this host still "running" whose process is gone; returns their ids.

        Runs of other hosts are left as they are (their processes cannot be seen from here), and so are
        runs recorded before the process was (no pid).
        """
        import socket

        host = socket.gethostname()
        with self._session() as s:
            running = s.execute(
                select(RunRow.id, RunRow.pid, RunRow.process_started)
                .where(RunRow.status == "running", RunRow.host == host, RunRow.pid.is_not(None))
            ).all()
            gone = [run_id for run_id, pid, started in running if not _process_is_running(pid, started)]
            if gone:
                s.execute(
                    update(RunRow).where(RunRow.id.in_(gone), RunRow.status == "running")
                    .values(status="interrupted", finished_at=datetime.now(UTC))
                )
        return gone

    def runs(self) -> list[ModelRun]:
        with self._session() as s:
            return [_run(row) for row in s.scalars(select(RunRow).order_by(RunRow.id))]

    def get_run(self, run_id: int) -> ModelRun:
        with self._session() as s:
            row = _get_row(s, RunRow, run_id)
            return _run(row)

    def find_run(self, name: str) -> ModelRun:
        """The run with this name; NotFoundError lists the runs there are."""
        with self._session() as s:
            row = s.scalar(select(RunRow).where(RunRow.name == name))
            if row is None:
                names = ", ".join(s.scalars(select(RunRow.name).order_by(RunRow.id))) or "none"
                raise NotFoundError(f"no run named {name!r} (runs: {names})")
            return _run(row)

    def delete_run(self, run_id: int) -> None:
        """Delete a run and its predictions."""
        with self._session() as s:
            s.execute(delete(AnnotationRow).where(AnnotationRow.run_id == run_id))
            s.execute(delete(RunRow).where(RunRow.id == run_id))

    # ---- the train/val split and trained models ----------------------------------------------------

    def split(self) -> dict[int, Split]:
        """The side (train or val) of every media that has one."""
        with self._session() as s:
            return {media_id: side for media_id, side in s.execute(select(SplitRow.media_id, SplitRow.split))}  # type: ignore[misc]

    def set_split(self, sides: dict[int, Split], *, replace_all: bool = False) -> None:
        """Store the side of these media (all others are forgotten with `replace_all`)."""
        with self._session() as s:
            if replace_all:
                s.execute(delete(SplitRow))
            else:
                s.execute(delete(SplitRow).where(SplitRow.media_id.in_(list(sides))))
            s.add_all(SplitRow(media_id=media_id, split=side) for media_id, side in sides.items())

    def create_trained_model(
        self, *, name: str, task: str, plugin: str, base: str, params: dict[str, Any], split: dict[str, Any]
    ) -> TrainedModel:
        with self._session() as s:
            if s.scalar(select(TrainedModelRow.id).where(TrainedModelRow.name == name)) is not None:
                raise StudioError(f"a trained model named {name!r} exists already; choose another name")
            row = TrainedModelRow(name=name, task=task, plugin=plugin, base=base, params=params, split=split,
                                  metrics={}, history=[])
            s.add(row)
            s.flush()
            return _trained_model(row)

    def update_trained_model(self, model_id: int, **values: Any) -> TrainedModel:
        """Change some fields (status, weights, sha256, metrics, history, validation_run_id, finished_at)."""
        with self._session() as s:
            row = _get_row(s, TrainedModelRow, model_id)
            for key, value in values.items():
                setattr(row, key, value)
            return _trained_model(row)

    def trained_models(self) -> list[TrainedModel]:
        with self._session() as s:
            return [_trained_model(row) for row in s.scalars(select(TrainedModelRow).order_by(TrainedModelRow.id))]

    def find_trained_model(self, name: str) -> TrainedModel:
        """The trained model with this name; NotFoundError lists those there are."""
        models = self.trained_models()
        for model in models:
            if model.name == name:
                return model
        names = ", ".join(m.name for m in models) or "none"
        raise NotFoundError(f"no trained model named {name!r} (trained models: {names})")

    def delete_trained_model(self, model_id: int) -> None:
        with self._session() as s:
            s.execute(delete(TrainedModelRow).where(TrainedModelRow.id == model_id))

    # ---- tags and settings -------------------------------------------------------------------------

    def set_tags(self, media_id: int, names: Iterable[str]) -> list[str]:
        """Replace the human tags of a media item."""
        wanted = sorted({n.strip() for n in names if n.strip()})
        with self._session() as s:
            s.execute(delete(TagRow).where(TagRow.media_id == media_id, TagRow.run_id.is_(None)))
            s.add_all(TagRow(media_id=media_id, name=name) for name in wanted)
        return wanted

    def tags(self, media_id: int) -> list[str]:
        """The human tags of a media item (a model run's tags are `run_tags`)."""
        with self._session() as s:
            return sorted(s.scalars(select(TagRow.name).where(TagRow.media_id == media_id, TagRow.run_id.is_(None))))

    def tag_table(self) -> dict[int, list[str]]:
        """Human tags of every tagged media item, by media id (split checks, zero-shot accuracy)."""
        with self._session() as s:
            rows = s.execute(select(TagRow.media_id, TagRow.name).where(TagRow.run_id.is_(None)).order_by(TagRow.name))
            table: dict[int, list[str]] = {}
            for media_id, name in rows:
                table.setdefault(media_id, []).append(name)
            return table

    def add_run_tags(self, run_id: int, tags: Iterable[tuple[int, str, float]]) -> int:
        """Store a model run's image tags: (media id, tag, score) each."""
        rows = [{"media_id": m, "name": name, "run_id": run_id, "score": float(score)} for m, name, score in tags]
        with self._session() as s:
            for start in range(0, len(rows), 5000):
                s.execute(insert(TagRow), rows[start : start + 5000])
        return len(rows)

    def run_tags(self, run_id: int, *, min_score: float | None = None) -> list[tuple[int, str, float]]:
        """A run's tags as (media id, tag, score), best first per media item."""
        query = select(TagRow.media_id, TagRow.name, TagRow.score).where(TagRow.run_id == run_id)
        if min_score is not None:
            query = query.where(TagRow.score >= min_score)
        with self._session() as s:
            rows = s.execute(query.order_by(TagRow.media_id, TagRow.score.desc())).all()
        return [(m, name, float(score or 0.0)) for m, name, score in rows]

    def media_ids_with_tag(self, name: str) -> set[int]:
        """Media carrying this tag, from a person or from a run."""
        with self._session() as s:
            return set(s.scalars(select(TagRow.media_id).where(TagRow.name == name)))

    def media_ids_of_run(self, run_id: int) -> set[int]:
        """Media on which a run predicted something (a box or a tag)."""
        with self._session() as s:
            boxes = s.scalars(select(AnnotationRow.media_id).where(AnnotationRow.run_id == run_id).distinct())
            tags = s.scalars(select(TagRow.media_id).where(TagRow.run_id == run_id).distinct())
            return set(boxes) | set(tags)

    # ---- answers of vision-language models ---------------------------------------------------------

    def add_answer(self, answer: Answer) -> Answer:
        """Store a question and its answer (one short transaction)."""
        with self._session() as s:
            row = AnswerRow(
                media_id=answer.media_id, frame=answer.frame, annotation_id=answer.annotation_id,
                region=answer.region.to_json() if answer.region is not None else None,
                conversation=answer.conversation, run_id=answer.run_id, question=answer.question,
                answer=answer.answer, status=answer.status, backend=answer.backend, model=answer.model,
                params=dict(answer.params), seconds=answer.seconds, first_token_seconds=answer.first_token_seconds,
            )
            s.add(row)
            with _integrity_errors_explained():
                s.flush()
            return _answer(row)

    def answers(
        self,
        media_id: int | None = None,
        *,
        frame: int | None = None,
        annotation_id: int | None = None,
        conversation: str | None = None,
        run_id: int | None = None,
    ) -> list[Answer]:
        """Stored answers matching every filter given, oldest first."""
        query = select(AnswerRow)
        for column, value in ((AnswerRow.media_id, media_id), (AnswerRow.frame, frame),
                              (AnswerRow.annotation_id, annotation_id), (AnswerRow.conversation, conversation),
                              (AnswerRow.run_id, run_id)):
            if value is not None:
                query = query.where(column == value)
        with self._session() as s:
            return [_answer(row) for row in s.scalars(query.order_by(AnswerRow.id))]

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._session() as s:
            row = s.get(SettingRow, key)
            return default if row is None else row.value.get("v", default)

    def set_setting(self, key: str, value: Any) -> None:
        with self._session() as s:
            row = s.get(SettingRow, key)
            if row is None:
                s.add(SettingRow(key=key, value={"v": value}))
            else:
                row.value = {"v": value}

    # ---- numbers that dataset files gave images and categories ------------------------------------

    def file_ids(self, format_name: str) -> list[FileId]:
        """Every remembered number of a format's files, oldest first."""
        table = FileIdRow.__table__.c
        columns = (table.format, table.file, table.kind, table.number, table.media_id, table.frame, table.label_id)
        with self._session() as s:  # plain column rows, not ORM objects: an export reads them all
            rows = s.execute(select(*columns).where(table.format == format_name).order_by(table.id))
            return [FileId(*row) for row in rows]

    def remember_file_ids(self, file_ids: Sequence[FileId]) -> None:
        """Record what the numbers of dataset files mean. A number a file already gave keeps its row,
        updated to what the file says now (a file re-imported after an edit); the others are added."""
        with self._session() as s:
            existing: dict[tuple[str, str, str, int], FileIdRow] = {}
            for format_name, file in {(f.format, f.file) for f in file_ids}:
                rows = s.scalars(select(FileIdRow).where(FileIdRow.format == format_name, FileIdRow.file == file))
                existing.update(((row.format, row.file, row.kind, row.number), row) for row in rows)
            new: dict[tuple[str, str, str, int], dict[str, Any]] = {}
            for f in file_ids:
                key = (f.format, f.file, f.kind, f.number)
                row = existing.get(key)
                if row is None:
                    new[key] = {"format": f.format, "file": f.file, "kind": f.kind, "number": f.number,
                                "media_id": f.media_id, "frame": f.frame, "label_id": f.label_id}
                elif (row.media_id, row.frame, row.label_id) != (f.media_id, f.frame, f.label_id):
                    row.media_id, row.frame, row.label_id = f.media_id, f.frame, f.label_id
            if new:  # a Core executemany: the ORM's bulk insert costs 10x as much per row
                s.execute(insert(FileIdRow.__table__), list(new.values()))

    def counts(self) -> dict[str, int]:
        """What `studio info --json` prints: media, annotations (human), labels, runs, predictions, answers,
        embeddings, tracks."""
        with self._session() as s:
            # one pass over the small (label_id, run_id) index counts both
            total, human = s.execute(
                select(func.count(AnnotationRow.id), func.count(AnnotationRow.id).filter(AnnotationRow.run_id.is_(None)))
            ).one()
            return {
                "media": s.scalar(select(func.count(MediaRow.id))) or 0,
                "annotations": human,
                "labels": s.scalar(select(func.count(LabelRow.id))) or 0,
                "runs": s.scalar(select(func.count(RunRow.id))) or 0,
                "predictions": total - human,
                "answers": s.scalar(select(func.count(AnswerRow.id))) or 0,
                "embeddings": s.scalar(select(func.count(EmbeddingRow.id))) or 0,
                "tracks": s.scalar(select(func.count(TrackRow.id))) or 0,
            }
