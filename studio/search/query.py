"""Queries over a project's stored embeddings: text, image, "more like this" media or region, with filters.

`EmbeddingSet` is the searchable set of one embedding space (image vectors, or region vectors): metadata
arrays aligned with the index keys, and the index itself (exact or HNSW, see studio.search.index).
Filters are the media browser's (label, review state, unannotated, name) plus tag and model run; they
become a set of allowed keys before the index is asked, so "top 50 among reviewed images" returns 50.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.errors import NotFoundError, StudioError
from studio.core.types import ReviewState
from studio.db import embeddings as store
from studio.db.project import Project
from studio.models.protocols import Embedder
from studio.search.index import ANN_THRESHOLD, ExactIndex, HnswIndex, IndexFiles, VectorIndex

INDEX_FOLDER = ".studio-index"
"""Folder in the project directory holding HNSW indexes; deleting it is always safe (they are rebuilt)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a media item (a frame of it for video), the annotation for region results."""

    media_id: int
    frame: int
    score: float
    annotation_id: int | None = None


@dataclass(frozen=True)
class MediaFilter:
    """The media browser's filters; results come only from media matching all that are set."""

    label_id: int | None = None
    review_state: ReviewState | None = None
    unannotated: bool = False
    name_contains: str | None = None
    tag: str | None = None
    run_id: int | None = None

    def is_empty(self) -> bool:
        return self == MediaFilter()

    def media_ids(self, project: Project) -> set[int] | None:
        """Ids of the media passing the filters; None when no filter is set (everything passes)."""
        if self.is_empty():
            return None
        allowed: set[int] | None = None
        if self.label_id is not None or self.review_state is not None or self.unannotated or self.name_contains:
            allowed = {m.id for m in project.list_media(label_id=self.label_id, review_state=self.review_state,
                                                        unannotated=self.unannotated, name_contains=self.name_contains)}
        for extra in (
            project.media_ids_with_tag(self.tag) if self.tag else None,
            project.media_ids_of_run(self.run_id) if self.run_id is not None else None,
        ):
            if extra is not None:
                allowed = extra if allowed is None else allowed & extra
        return allowed


class EmbeddingSet:
    """The stored vectors of one model (images, or regions) ready to search."""

    def __init__(self, project: Project, model: str, *, regions: bool = False, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.project = project
        self.model = model
        self.regions = regions
        self.ann_threshold = ann_threshold
        self.files = IndexFiles(project.root / INDEX_FOLDER, model, regions)
        self.meta = store.StoredVectors.empty()
        self.index: VectorIndex = ExactIndex(0)
        self.refresh()

    def __len__(self) -> int:
        return len(self.meta)

    def refresh(self) -> None:
        """Bring the index up to date with the database: add new vectors, drop deleted ones."""
        meta = store.load_embeddings(self.project, self.model, regions=self.regions, with_vectors=False)
        dim = store.embedding_dim(self.project, self.model) or 0
        if len(meta) >= self.ann_threshold:
            self.index = self._hnsw(meta, dim)
        else:
            index = ExactIndex(dim)
            full = store.load_embeddings(self.project, self.model, regions=self.regions)
            index.add(full.ids, full.vectors)
            meta = store.StoredVectors(full.ids, full.media_ids, full.frames, full.annotation_ids,
                                       np.zeros((len(full), 0), np.float16))
            self.index = index
        self.meta = meta

    def _hnsw(self, meta: store.StoredVectors, dim: int) -> HnswIndex:
        saved = self.files.read_meta()
        if saved is not None and saved.get("dim") == dim and self.files.graph.is_file():
            index = HnswIndex.load(self.files.graph, dim)
            last_id = int(saved.get("last_id", 0))  # type: ignore[call-overload]
        else:
            index, last_id = HnswIndex(dim), 0
        gone = np.setdiff1d(index.keys(), meta.ids, assume_unique=True) if len(index) else np.zeros(0, np.int64)
        index.remove(gone)
        new = store.load_embeddings(self.project, self.model, regions=self.regions, after_id=last_id)
        index.add(new.ids, new.vectors)
        if len(gone) or len(new) or saved is None:
            self.files.folder.mkdir(parents=True, exist_ok=True)
            index.save(self.files.graph)
            self.files.write_meta(dim=dim, last_id=int(meta.ids.max()), count=len(index))
        return index

    def allowed_keys(self, media_ids: set[int] | None) -> np.ndarray | None:
        if media_ids is None:
            return None
        return self.meta.ids[np.isin(self.meta.media_ids, np.fromiter(media_ids, np.int64, len(media_ids)))]

    def search(self, query: np.ndarray, k: int = 50, *, media_ids: set[int] | None = None) -> list[Hit]:
        """The k vectors most similar to `query` (cosine), best first, from the allowed media only."""
        if k < 1:
            raise StudioError(f"the number of results must be 1 or more, got {k}")
        keys, scores = self.index.search(np.asarray(query, np.float32), k, allowed=self.allowed_keys(media_ids))
        rows = np.searchsorted(self.meta.ids, keys)
        return [
            Hit(int(self.meta.media_ids[r]), int(self.meta.frames[r]), float(score),
                None if self.meta.annotation_ids[r] == store.NO_ANNOTATION else int(self.meta.annotation_ids[r]))
            for r, score in zip(rows, scores, strict=True)
        ]

    def vectors(self) -> np.ndarray:
        """All vectors as float32 unit rows in the order of `self.meta` (duplicate finding, maps)."""
        return self.index.vectors_of(self.meta.ids)


def require_embeddings(project: Project, model: str, *, regions: bool = False) -> None:
    """One clear line when nothing of this model (or kind) was embedded yet."""
    stored = store.embedding_models(project)
    if model not in stored or (regions and not store.stored_stamps(project, model, regions=True)):
        what = "regions " if regions else ""
        models = ", ".join(stored) or "none"
        flag = " --regions" if regions else ""
        raise StudioError(f"no {what}embeddings of {model} in this project (stored: {models}); run `studio embed{flag}` first")


def stored_query(project: Project, model: str, key: store.Key) -> np.ndarray:
    """The stored vector of a media item, frame or annotation, to search "more like this"."""
    vector = store.vector_of(project, model, key)
    if vector is None:
        media_id, frame, annotation = key
        what = f"annotation {annotation}" if annotation != store.NO_ANNOTATION else f"media {media_id} frame {frame}"
        raise NotFoundError(f"{what} has no embedding of {model}; run `studio embed` first")
    return vector


def text_query(embedder: Embedder, text: str) -> np.ndarray:
    if not text.strip():
        raise StudioError("the search text is empty")
    return embedder.embed_texts([text])[0]


def image_query(embedder: Embedder, path: Path | str) -> np.ndarray:
    from studio.io.media import read_image

    return embedder.embed_images([read_image(path)])[0]


@dataclass(frozen=True)
class Space:
    """An embedding space of the project and the model (plugin, weights) that encodes queries into it."""

    model: str
    plugin_id: str
    weights: str | None


def resolve_space(project: Project, plugin_id: str | None = None, weights: str | None = None) -> Space:
    """The stored embeddings to use: those of the model asked for, else the only ones there are."""
    from studio.models.embedders import space_id

    stored = store.embedding_models(project)
    if plugin_id is not None and weights is not None:
        model = space_id(plugin_id, weights)
    else:
        prefix = f"{plugin_id}:" if plugin_id else ""
        matching = [m for m in stored if m.startswith(prefix)]
        if not matching:
            which = f" of {plugin_id}" if plugin_id else ""
            raise StudioError(f"no embeddings{which} in this project; run `studio embed {project.root}` first")
        if len(matching) > 1:
            raise StudioError(f"this project holds embeddings of several models ({', '.join(matching)}); choose one "
                              "with --model (and --weights)")
        model = matching[0]
    recorded = store.recorded_embedder(project, model)
    if recorded is None:
        if plugin_id is None:
            raise StudioError(f"no record of the model that made {model}; name it with --model and --weights")
        return Space(model, plugin_id, weights)
    return Space(model, recorded[0], weights if weights is not None else recorded[1])
