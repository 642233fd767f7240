"""SQLAlchemy 2 ORM tables. Rows never leave studio.db: `Project` turns them into studio.core types.

Changing a table means a new Alembic revision in studio/db/migrations/versions; a test compares these
tables with what the migrations build, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    SQLite stores no offset and hands back naive values while PostgreSQL hands back aware ones, so
    comparing or subtracting timestamps from the two would fail. Values are stored as UTC and always read
    back aware. The column type stays DateTime(timezone=True), so the migrations are unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # a naive value (e.g. parsed from a dataset file) is taken to be UTC already, as it is read back
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class MediaRow(Base):
    __tablename__ = "media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    frame_count: Mapped[int] = mapped_column(Integer, default=1)
    fps: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    review_state: Mapped[str] = mapped_column(String(16), default="todo")
    caption: Mapped[str | None] = mapped_column(Text)
    labelled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Someone stated this image's ground truth complete (a dataset file listed it), even with no objects:
    evaluation counts predictions on it."""
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LabelRow(Base):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    color: Mapped[str] = mapped_column(String(7))
    keypoints: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """{"names": [...], "skeleton": [[i, j], ...]} for a label whose objects are keypoints (COCO's category)."""


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    plugin: Mapped[str] = mapped_column(String(256))
    weights: Mapped[str | None] = mapped_column(String(4096))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    device: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the process running it, so a run whose process is gone can be told from one still going
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(256))
    process_started: Mapped[float | None] = mapped_column(Float)


class AnnotationRow(Base):
    """One shape. bbox and area are denormalised from `geometry` so filters and eval need no decoding."""

    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_media_frame", "media_id", "frame"),
        # run first: "human annotations (run_id IS NULL) of this image" is what the window asks most; on an
        # index of run_id alone SQLite scanned every human annotation for it (0.5 s at 1M). label_id
        # answers "images with this label" from the index alone.
        Index("ix_annotations_run_media", "run_id", "media_id", "frame", "label_id"),
        # counts per label of a source, and the project's counts, read this small index in order
        Index("ix_annotations_label_run", "label_id", "run_id"),
        Index("ix_annotations_track", "track_id"),  # a track's keyframes
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="RESTRICT"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    area: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    track_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TrackRow(Base):
    """An object across the frames of a video; its keyframes are the annotations with its id."""

    __tablename__ = "tracks"
    __table_args__ = (Index("ix_tracks_media_run", "media_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="RESTRICT"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outside: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    """Inclusive [first, last] frame ranges where the object is absent."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (
        # a person tags an image once per name, and so does each model run; a run's tag may repeat a
        # person's (zero-shot tagging proposes what may already be there)
        Index("uq_tags_human", "media_id", "name", unique=True,
              sqlite_where=text("run_id IS NULL"), postgresql_where=text("run_id IS NULL")),
        Index("uq_tags_run", "run_id", "media_id", "name", unique=True,
              sqlite_where=text("run_id IS NOT NULL"), postgresql_where=text("run_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    score: Mapped[float | None] = mapped_column(Float)


class AnswerRow(Base):
    """One question asked of a vision-language model about an image or a region, and its answer.

    `annotation_id` is the asked-about box when it is a stored annotation (kept NULL when the box is
    deleted later: the answer stays, with its region); `conversation` groups follow-up questions.
    `run_id` is set for answers of a batch, whose outputs (tags, captions, labels) the run proposes.
    """

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_media", "media_id", "frame", "annotation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    region: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conversation: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    backend: Mapped[str] = mapped_column(String(256))
    model: Mapped[str] = mapped_column(String(1024))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float)
    first_token_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class FileIdRow(Base):
    """A number a dataset file gave an image (or a category), remembered so that a later file naming
    them by number alone (a COCO results file) resolves to what the number meant in that file.

    One row per (format, file, kind, number): a number never means two things in one file. A deleted
    image keeps its row (media_id NULL), so its number is never handed to another image.
    """

    __tablename__ = "file_ids"
    __table_args__ = (UniqueConstraint("format", "file", "kind", "number", name="uq_file_ids_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(32))
    file: Mapped[str] = mapped_column(String(4096))
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(BigInteger)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"), index=True)
    frame: Mapped[int] = mapped_column(Integer, default=0)
    label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id", ondelete="SET NULL"))


class SettingRow(Base):
    """Per-project key/value state: last image, view, UI choices that belong to the project."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class EmbeddingRow(Base):
    """One stored vector: a whole image or video frame (annotation_id NULL) or an annotation's crop.

    `model` names the embedding space (plugin and weights); vectors of two spaces never mix. `vector` holds
    `dim` float16 values (half the size of float32, and more than enough precision for cosine ranking).
    `stamp` records what was embedded (the file's size and mtime, and the annotation's geometry time), so a
    changed file or an edited box is re-embedded and an unchanged one is not.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        Index("ix_embeddings_model_media", "model", "media_id", "frame"),
        Index("ix_embeddings_annotation", "annotation_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(512))
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    stamp: Mapped[str] = mapped_column(String(128))


class SplitRow(Base):
    """The project's train/val split, by media: a video's frames all fall on one side."""

    __tablename__ = "splits"

    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    split: Mapped[str] = mapped_column(String(8))


class TrainedModelRow(Base):
    """A model trained on the project (see studio.core.types.TrainedModel)."""

    __tablename__ = "trained_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    task: Mapped[str] = mapped_column(String(16))
    plugin: Mapped[str] = mapped_column(String(256))
    base: Mapped[str] = mapped_column(String(4096))
    status: Mapped[str] = mapped_column(String(16), default="running")
    weights: Mapped[str | None] = mapped_column(String(4096))
    sha256: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    split: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    validation_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
