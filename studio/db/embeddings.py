"""Stored embeddings: vectors per image, video frame or annotation crop, per model, in the project database.

Vectors are float16 blobs (512-d: 1 KiB each) beside their model id and dimension, so SQLite and PostgreSQL
hold them alike and they survive restarts with the project. Readers get numpy arrays in one pass, never a
Python object per vector. Writes are short transactions of one batch each, like every other write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select, tuple_

from studio.core.errors import StudioError
from studio.db.project import Project
from studio.db.schema import EmbeddingRow

NO_ANNOTATION = -1
"""`annotation_ids` value of a whole-image (or whole-frame) vector."""

Key = tuple[int, int, int]
"""(media id, frame, annotation id or NO_ANNOTATION): what one vector describes."""


@dataclass(frozen=True)
class StoredVectors:
    """Vectors of one model as parallel arrays: row ids, what each describes, and (N, dim) float16 vectors."""

    ids: np.ndarray
    media_ids: np.ndarray
    frames: np.ndarray
    annotation_ids: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, dim: int = 0) -> StoredVectors:
        none = np.zeros(0, np.int64)
        return cls(none, none, none, none, np.zeros((0, dim), np.float16))


def _kind_filter(regions: bool):
    column = EmbeddingRow.annotation_id
    return column.is_not(None) if regions else column.is_(None)


def stored_stamps(project: Project, model: str, *, regions: bool) -> dict[Key, str]:
    """What is stored for `model`: the stamp of each (media, frame, annotation) vector."""
    query = select(EmbeddingRow.media_id, EmbeddingRow.frame, EmbeddingRow.annotation_id, EmbeddingRow.stamp).where(
        EmbeddingRow.model == model, _kind_filter(regions)
    )
    with project._session() as s:
        return {
            (media_id, frame, NO_ANNOTATION if ann is None else ann): stamp
            for media_id, frame, ann, stamp in s.execute(query)
        }


def save_embeddings(project: Project, model: str, keys: Sequence[Key], stamps: Sequence[str], vectors: np.ndarray) -> int:
    """Store (or replace) the vectors of these keys in one transaction; returns how many were written."""
    if not len(keys) == len(stamps) == len(vectors):
        raise StudioError(f"{len(keys)} keys, {len(stamps)} stamps and {len(vectors)} vectors do not match")
    if not keys:
        return 0
    half = np.ascontiguousarray(vectors, dtype=np.float16)
    rows = [
        {"model": model, "media_id": media_id, "frame": frame,
         "annotation_id": None if ann == NO_ANNOTATION else ann, "dim": half.shape[1],
         "vector": half[i].tobytes(), "stamp": stamp}
        for i, ((media_id, frame, ann), stamp) in enumerate(zip(keys, stamps, strict=True))
    ]
    with project._session() as s:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for regions in (False, True):
                wanted = [(m, f, a) for m, f, a in chunk if (a != NO_ANNOTATION) == regions]
                if not wanted:
                    continue
                if regions:
                    match = EmbeddingRow.annotation_id.in_([a for _, _, a in wanted])
                else:
                    match = tuple_(EmbeddingRow.media_id, EmbeddingRow.frame).in_([(m, f) for m, f, _ in wanted])
                s.execute(delete(EmbeddingRow).where(EmbeddingRow.model == model, _kind_filter(regions), match))
        s.execute(EmbeddingRow.__table__.insert(), rows)
    return len(rows)


def delete_embeddings(project: Project, model: str, keys: Sequence[Key]) -> int:
    """Drop the vectors of media or annotations that are gone or no longer readable."""
    removed = 0
    with project._session() as s:
        for media_id, frame, ann in keys:
            query = delete(EmbeddingRow).where(EmbeddingRow.model == model, EmbeddingRow.media_id == media_id,
                                               EmbeddingRow.frame == frame)
            query = query.where(EmbeddingRow.annotation_id.is_(None) if ann == NO_ANNOTATION
                                else EmbeddingRow.annotation_id == ann)
            removed += s.execute(query).rowcount
    return removed


def load_embeddings(
    project: Project, model: str, *, regions: bool = False, after_id: int = 0, with_vectors: bool = True
) -> StoredVectors:
    """The vectors of `model` (image ones, or region ones) with a row id above `after_id`, in id order.

    Without `with_vectors` only what they describe is read (an index on disk holds the vectors already);
    `vectors` is then (N, 0).
    """
    columns = [EmbeddingRow.id, EmbeddingRow.media_id, EmbeddingRow.frame, EmbeddingRow.annotation_id, EmbeddingRow.dim]
    query = (
        select(*columns, *([EmbeddingRow.vector] if with_vectors else []))
        .where(EmbeddingRow.model == model, _kind_filter(regions), EmbeddingRow.id > after_id)
        .order_by(EmbeddingRow.id)
    )
    with project._session() as s:
        rows = s.execute(query).all()
    if not rows:
        return StoredVectors.empty()
    dims = {row[4] for row in rows}
    if len(dims) != 1:
        raise StudioError(f"embeddings of {model!r} have mixed dimensions {sorted(dims)}; re-embed with `studio embed`")
    dim = dims.pop()
    if with_vectors:
        vectors = np.frombuffer(b"".join(row[5] for row in rows), dtype=np.float16).reshape(len(rows), dim)
    else:
        vectors = np.zeros((len(rows), 0), np.float16)
    table = np.array([(i, m, f, NO_ANNOTATION if a is None else a) for i, m, f, a, *_ in rows], dtype=np.int64)
    return StoredVectors(table[:, 0], table[:, 1], table[:, 2], table[:, 3], vectors)


def embedding_dim(project: Project, model: str) -> int | None:
    """The dimension of `model`'s vectors, None when none are stored."""
    with project._session() as s:
        return s.scalar(select(EmbeddingRow.dim).where(EmbeddingRow.model == model).limit(1))


def stored_ids(project: Project, model: str, *, regions: bool = False) -> np.ndarray:
    """Row ids of `model`'s vectors: an index kept on disk compares them to find what was deleted."""
    query = select(EmbeddingRow.id).where(EmbeddingRow.model == model, _kind_filter(regions)).order_by(EmbeddingRow.id)
    with project._session() as s:
        return np.fromiter(s.scalars(query), dtype=np.int64)


def vector_of(project: Project, model: str, key: Key) -> np.ndarray | None:
    """The stored float32 vector of one image, frame or annotation, or None when it was never embedded."""
    media_id, frame, ann = key
    query = select(EmbeddingRow.vector).where(EmbeddingRow.model == model)
    if ann == NO_ANNOTATION:
        query = query.where(EmbeddingRow.media_id == media_id, EmbeddingRow.frame == frame,
                            EmbeddingRow.annotation_id.is_(None))
    else:
        query = query.where(EmbeddingRow.annotation_id == ann)
    with project._session() as s:
        blob = s.scalar(query.limit(1))
    return None if blob is None else np.frombuffer(blob, dtype=np.float16).astype(np.float32)


def embedding_models(project: Project) -> dict[str, int]:
    """Number of stored vectors per model id."""
    query = select(EmbeddingRow.model, func.count(EmbeddingRow.id)).group_by(EmbeddingRow.model)
    with project._session() as s:
        return dict(s.execute(query).all())


def record_embedder(project: Project, model: str, plugin_id: str, weights: str | None) -> None:
    """Remember which plugin and weights made the vectors of `model`, so a text query later encodes its text
    with the same model without the user naming it again."""
    project.set_setting(f"{EMBEDDER_SETTING}{model}", {"plugin": plugin_id, "weights": weights})


def recorded_embedder(project: Project, model: str) -> tuple[str, str | None] | None:
    """(plugin id, weights) that made `model`'s vectors, if recorded."""
    value = project.get_setting(f"{EMBEDDER_SETTING}{model}")
    return (value["plugin"], value.get("weights")) if isinstance(value, dict) and "plugin" in value else None


EMBEDDER_SETTING = "embedder:"
