"""The HNSW index finds what exact search finds, honours filters, and is kept beside the project and
brought up to date (new vectors added, deleted ones removed) without a rebuild."""

from __future__ import annotations

import numpy as np
import pytest
from clip_helpers import random_clip, write_shapes

from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import embeddings as store
from studio.io.media import add_paths
from studio.jobs.embed import embed_project
from studio.search.index import ExactIndex, HnswIndex, normalized
from studio.search.query import EmbeddingSet


def clustered(count: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = normalized(rng.standard_normal((50, dim)))
    return normalized(centres[rng.integers(0, 50, count)] + 0.1 * rng.standard_normal((count, dim)))


def test_hnsw_with_exact_reranking_agrees_with_exact_search():
    data = clustered(4000, 32, seed=0)
    exact, hnsw = ExactIndex(32), HnswIndex(32)
    for index in (exact, hnsw):
        index.add(np.arange(4000), data)
    queries = clustered(30, 32, seed=1)
    recall = []
    for q in queries:
        want_keys, want_scores = exact.search(q, 20)
        keys, scores = hnsw.search(q, 20)
        recall.append(len(set(keys) & set(want_keys)) / 20)
        want = dict(zip(want_keys.tolist(), want_scores.tolist(), strict=True))
        for key, score in zip(keys.tolist(), scores.tolist(), strict=True):  # re-ranked: the exact score
            assert key not in want or score == pytest.approx(want[key], abs=2e-3)  # (of float16 vectors)
        assert list(scores) == sorted(scores, reverse=True)
    assert np.mean(recall) >= 0.95
    allowed = np.arange(0, 4000, 7)
    for index in (exact, hnsw):
        keys, _ = index.search(queries[0], 20, allowed=allowed)
        assert len(keys) == 20 and set(keys) <= set(allowed)
    hnsw.remove(np.arange(2000))
    assert len(hnsw) == 2000 and hnsw.search(queries[0], 50)[0].min() >= 2000


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return random_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_the_hnsw_index_on_disk_follows_the_database(project, tiny_clip):
    write_shapes(project.root / "a", 1, seed=0)
    add_paths(project, [project.root / "a"])
    report = embed_project(project, "clip-local", weights=str(tiny_clip))
    model = report.model
    ann = EmbeddingSet(project, model, ann_threshold=5)
    assert isinstance(ann.index, HnswIndex) and ann.files.graph.is_file()
    exact = EmbeddingSet(project, model)
    assert isinstance(exact.index, ExactIndex)
    query = store.vector_of(project, model, (3, 0, -1))
    assert [h.media_id for h in ann.search(query, 12)] == [h.media_id for h in exact.search(query, 12)]

    write_shapes(project.root / "b", 1, seed=1)
    add_paths(project, [project.root / "b"])
    embed_project(project, "clip-local", weights=str(tiny_clip))
    saved = ann.files.graph.stat().st_mtime_ns
    grown = EmbeddingSet(project, model, ann_threshold=5)  # loads the saved graph, adds only the 12 new
    assert len(grown.index) == 24 and ann.files.read_meta()["count"] == 24
    assert ann.files.graph.stat().st_mtime_ns != saved
    (best, *_) = grown.search(store.vector_of(project, model, (20, 0, -1)), 1)
    assert best.media_id == 20

    label = project.ensure_label("thing")
    boxes = [project.add_annotation(Annotation(m.id, label.id, Box(0, 0, 40, 40))) for m in project.list_media()[:8]]
    embed_project(project, "clip-local", weights=str(tiny_clip), regions=True)
    regions = EmbeddingSet(project, model, regions=True, ann_threshold=5)
    assert len(regions.index) == 8
    project.delete_annotations([b.id for b in boxes[:3]])  # their vectors go with them (foreign key cascade)
    regions = EmbeddingSet(project, model, regions=True, ann_threshold=5)
    assert len(regions.index) == 5
    hits = regions.search(query, 10)
    assert sorted(h.annotation_id for h in hits) == sorted(b.id for b in boxes[3:])


def test_duplicates_through_hnsw_equal_those_of_exact_search(project, tiny_clip):
    import shutil

    from studio.search.duplicates import find_duplicates

    write_shapes(project.root / "a", 2, seed=0)
    for name in ("red-circle-0.png", "blue-square-1.png"):
        shutil.copy(project.root / "a" / name, project.root / "a" / f"copy-{name}")
    add_paths(project, [project.root / "a"])
    model = embed_project(project, "clip-local", weights=str(tiny_clip)).model
    exact = find_duplicates(project, EmbeddingSet(project, model), threshold=0.9999)
    ann = find_duplicates(project, EmbeddingSet(project, model, ann_threshold=5), threshold=0.9999)
    assert len(exact.groups) == 2 and [g.items for g in ann.groups] == [g.items for g in exact.groups]
    assert ann.uniqueness.keys() == exact.uniqueness.keys()
    for item, score in exact.uniqueness.items():
        assert ann.uniqueness[item] == pytest.approx(score, abs=2e-3)
