"""Nearest-neighbour search over unit vectors: exact in RAM by default, an HNSW graph for large sets.

Exact search is one BLAS matrix-vector product over float32 rows (numpy has no float16 BLAS: 20x slower).
Above `ANN_THRESHOLD` vectors the product costs too much per query, so an HNSW index (usearch) holding the
vectors as float16 finds candidates (3 per result wanted, at least 256) and they are re-ranked exactly by their stored vectors; it keeps 1M
512-d vectors in ~1.1 GB where float32 rows alone would take 2 GB. The graph is saved beside the project
database and brought up to date incrementally (new rows added, deleted rows removed) when opened.

Keys are the embedding rows' ids, so a hit leads back to its media, frame and annotation.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

ANN_THRESHOLD = 200_000
"""From this many vectors on, search through HNSW (exact search then takes > ~50 ms per query on 2 cores)."""
ANN_CANDIDATES = 3
"""HNSW candidates fetched per result wanted (at least 256), then re-ranked exactly."""


def normalized(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (zero rows stay zero)."""
    rows = np.asarray(vectors, dtype=np.float32)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first (argpartition, then a sort of only those k)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class VectorIndex(Protocol):
    """What the search needs from an index: keys and cosine scores of the best matches, best first."""

    def __len__(self) -> int: ...

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, keys: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`allowed`: sorted keys the results must come from (the browser's filters), None for all."""
        ...

    def vectors_of(self, keys: np.ndarray) -> np.ndarray: ...


class ExactIndex:
    """Every vector in RAM as float32; a query is one matrix-vector product."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.keys = np.zeros(0, np.int64)
        self.matrix = np.zeros((0, dim), np.float32)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.keys = np.concatenate([self.keys, np.asarray(keys, np.int64)])
        self.matrix = np.concatenate([self.matrix, normalized(vectors)]) if len(self.matrix) else normalized(vectors)

    def remove(self, keys: np.ndarray) -> None:
        keep = ~np.isin(self.keys, keys)
        self.keys, self.matrix = self.keys[keep], self.matrix[keep]

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.keys) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self.matrix @ normalized(query)[0]
        if allowed is not None:
            scores = np.where(np.isin(self.keys, allowed, assume_unique=True), scores, -np.inf)
            k = min(k, int(np.isfinite(scores).sum()))
        best = top_k(scores, k)
        return self.keys[best], scores[best]

    def vectors_of(self, keys: np.ndarray) -> np.ndarray:
        order = np.argsort(self.keys)
        return self.matrix[order[np.searchsorted(self.keys, keys, sorter=order)]]


class HnswIndex:
    """usearch HNSW over float16 vectors with exact re-ranking of its candidates."""

    def __init__(self, dim: int, *, connectivity: int = 16, expansion_add: int = 64, expansion_search: int = 256) -> None:
        from usearch.index import Index

        self.dim = dim
        self.index = Index(ndim=dim, metric="ip", dtype="f16", connectivity=connectivity,
                           expansion_add=expansion_add, expansion_search=expansion_search)

    @classmethod
    def load(cls, path: Path, dim: int) -> HnswIndex:
        index = cls(dim)
        index.index.load(str(path))
        return index

    def save(self, path: Path) -> None:
        """Written to a temporary file and renamed: a crash never leaves half an index."""
        partial = path.with_name(path.name + ".part")
        self.index.save(str(partial))
        os.replace(partial, path)

    def __len__(self) -> int:
        return len(self.index)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self.index.add(np.asarray(keys, np.uint64), normalized(vectors).astype(np.float16))

    def remove(self, keys: np.ndarray) -> None:
        if len(keys):
            self.index.remove(np.asarray(keys, np.uint64))

    def keys(self) -> np.ndarray:
        return np.asarray(self.index.keys, dtype=np.int64)

    def vectors_of(self, keys: np.ndarray) -> np.ndarray:
        if not len(keys):
            return np.zeros((0, self.dim), np.float32)
        # a tuple of float16 rows; asking usearch for float32 instead costs 30x more (measured, 200 rows)
        found = self.index.get(np.asarray(keys, np.uint64))
        return np.vstack(found).astype(np.float32).reshape(len(keys), self.dim)

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.index) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = normalized(query)[0]
        wanted = max(k * ANN_CANDIDATES, 256)
        if allowed is not None and len(allowed) <= wanted:
            candidates = np.asarray(allowed, np.int64)  # a narrow filter: score its few vectors directly
        else:
            found = self.index.search(q.astype(np.float16), min(wanted, len(self.index)))
            candidates = np.asarray(found.keys, np.int64)
            if allowed is not None:
                candidates = candidates[np.isin(candidates, allowed)]
                if len(candidates) < k:  # the filter removed most candidates: score the allowed set exactly
                    candidates = np.asarray(allowed, np.int64)
        scores = self.vectors_of(candidates) @ q
        best = top_k(scores, min(k, len(scores)))
        return candidates[best], scores[best]


def index_for(count: int, dim: int, *, threshold: int = ANN_THRESHOLD) -> VectorIndex:
    """Exact below `threshold` vectors, HNSW from there on."""
    return HnswIndex(dim) if count >= threshold else ExactIndex(dim)


@dataclass(frozen=True)
class IndexFiles:
    """Where the HNSW index of one embedding space lives beside the database, and what it holds."""

    folder: Path
    model: str
    regions: bool

    @property
    def stem(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model)
        return f"{safe}-{'regions' if self.regions else 'images'}"

    @property
    def graph(self) -> Path:
        return self.folder / f"{self.stem}.usearch"

    @property
    def meta(self) -> Path:
        return self.folder / f"{self.stem}.json"

    def read_meta(self) -> dict[str, object] | None:
        try:
            meta = json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("model") == self.model else None

    def write_meta(self, *, dim: int, last_id: int, count: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.meta.with_name(self.meta.name + ".part")
        partial.write_text(json.dumps({"model": self.model, "dim": dim, "last_id": last_id, "count": count}))
        os.replace(partial, self.meta)
