"""Near-duplicates, train/val leaks and a uniqueness score, from stored image embeddings.

Every vector's nearest neighbours are found in blocks (exact: one matrix product per 256 rows, memory
bounded whatever the project size; HNSW sets: usearch's batched multi-threaded search), pairs above the
threshold become edges, and the connected components of that graph are the duplicate groups (scipy).
Frames of one video are not duplicates of each other. Uniqueness is 1 - the similarity to the nearest
other item: 0 for an exact copy, higher for images unlike any other; a sort key for "label these first".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.db.project import Project
from studio.search.index import HnswIndex
from studio.search.query import EmbeddingSet

BLOCK_ROWS = 256
NEIGHBOURS = 10


@dataclass(frozen=True)
class DuplicateGroup:
    """Items (media id, frame) that are all near-duplicates of one another, and the lowest similarity
    of the pairs that joined them."""

    items: list[tuple[int, int]]
    similarity: float


@dataclass(frozen=True)
class DuplicateReport:
    groups: list[DuplicateGroup]
    uniqueness: dict[tuple[int, int], float]
    leaks: list[DuplicateGroup]
    """Groups whose media carry different split tags (e.g. one image in train, its copy in val)."""


def _neighbours(embeddings: EmbeddingSet, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) positions and similarities of each vector's k nearest others (-1 / -inf where fewer)."""
    vectors = embeddings.vectors()
    n = len(vectors)
    k = max(1, min(k, n - 1))
    positions = np.full((n, k), -1, np.int64)
    scores = np.full((n, k), -np.inf, np.float32)
    media = embeddings.meta.media_ids
    index = embeddings.index
    for start in range(0, n, BLOCK_ROWS):
        block = vectors[start : start + BLOCK_ROWS]
        rows = np.arange(start, start + len(block))
        if isinstance(index, HnswIndex):
            found = index.index.search(block.astype(np.float16), k + 1)
            candidates = np.searchsorted(embeddings.meta.ids, np.asarray(found.keys, np.int64).reshape(len(block), -1))
            candidates = np.minimum(candidates, n - 1)
            sims = np.einsum("ij,ikj->ik", block, vectors[candidates])  # exact similarity of each candidate
            same = media[candidates] == media[rows][:, None]
        else:
            sims = block @ vectors.T
            candidates = None
            same = media[None, :] == media[rows][:, None]
        sims = np.where(same, -np.inf, sims)  # itself, and frames of the same video
        take = min(k, sims.shape[1])
        best = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        positions[rows, :take] = best if candidates is None else np.take_along_axis(candidates, best, axis=1)
        scores[rows, :take] = np.take_along_axis(sims, best, axis=1)
    return positions, scores


def find_duplicates(
    project: Project, embeddings: EmbeddingSet, *, threshold: float = 0.95, splits: Sequence[str] = ("train", "val", "test")
) -> DuplicateReport:
    """Groups of items whose cosine similarity is >= `threshold`, uniqueness per item, and split leaks."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(embeddings)
    meta = embeddings.meta
    items = [(int(m), int(f)) for m, f in zip(meta.media_ids, meta.frames, strict=True)]
    if n < 2:
        return DuplicateReport([], dict.fromkeys(items, 1.0), [])
    positions, scores = _neighbours(embeddings, NEIGHBOURS)
    nearest = scores.max(axis=1)
    uniqueness = {item: float(np.clip(1.0 - s, 0.0, 2.0)) if np.isfinite(s) else 1.0 for item, s in zip(items, nearest, strict=True)}
    rows, cols = np.nonzero(scores >= threshold)
    targets = positions[rows, cols]
    edge_scores = scores[rows, cols]
    graph = coo_matrix((np.ones(len(rows)), (rows, targets)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for position in np.unique(np.concatenate([rows, targets])):
        members.setdefault(int(component[position]), []).append(int(position))
    lowest: dict[int, float] = {}
    for row, score in zip(rows, edge_scores, strict=True):
        c = int(component[row])
        lowest[c] = min(lowest.get(c, 1.0), float(score))
    groups = sorted(
        (DuplicateGroup([items[p] for p in sorted(ps)], round(lowest[c], 6)) for c, ps in members.items() if len(ps) > 1),
        key=lambda g: (-len(g.items), -g.similarity, g.items),
    )
    tags = project.tag_table()
    split_names = set(splits)
    leaks = [g for g in groups if len({t for m, _ in g.items for t in tags.get(m, ()) if t in split_names}) > 1]
    return DuplicateReport(groups, uniqueness, leaks)
