"""CLIP search: `studio embed` throughput against a plain open_clip loop, and query latency against numpy.

1. Embedding: the same random-init open_clip model (ViT-B-32 by default; speed does not depend on the
   weights) encodes the same JPEG files in batches of 32 on the CPU, once as open_clip's README does it (PIL
   open, the model's transform, `encode_image(normalize=True)`), once through `embed_project`, which also
   reads through the project, stamps files and writes float16 vectors to the database.
2. Queries on synthetic unit 512-d vectors drawn around one centre per 200 vectors (real embeddings
   cluster; uniform random vectors have no neighbours worth finding): p50/p95 of 100 single queries for numpy brute force
   (`matrix @ q` + argpartition) and for Studio's index, recall@100 of the HNSW index against exact search,
   its memory, and the time to add 1,000 vectors to the built index.

Default: 64 images, 100k exact, 20k HNSW (building the graph costs ~1 ms per vector per core, the most
expensive part); --full: 256 images, 100k exact, 1M HNSW; --ann N sets the HNSW size. The last line is
ratio = plain open_clip time / Studio embed time.

    .venv/bin/python bench/search.py [--full] [--ann N] [--arch ViT-B-32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from studio.db import Project
from studio.io.media import add_paths
from studio.jobs.embed import embed_project
from studio.search.index import ExactIndex, HnswIndex, normalized, top_k

BATCH, DIM, QUERIES, K = 32, 512, 100, 100


def make_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        path = folder / f"{i:04d}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def save_random_clip(arch: str, folder: Path) -> Path:
    import open_clip
    import torch

    model = open_clip.create_model(arch, pretrained=None)
    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": open_clip.get_model_config(arch)}))
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def plain_open_clip(folder: Path, paths: list[Path]) -> float:
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    model.eval()
    started = time.perf_counter()
    rows = []
    with torch.inference_mode():
        for i in range(0, len(paths), BATCH):
            images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[i : i + BATCH]])
            rows.append(model.encode_image(images, normalize=True).numpy())
    elapsed = time.perf_counter() - started
    assert sum(len(r) for r in rows) == len(paths)
    return elapsed


def studio_embed(folder: Path, root: Path, paths: list[Path]) -> float:
    from studio.models.registry import load_model

    with Project.create(root) as project:
        add_paths(project, paths)
        load_model("clip-local", weights=str(folder), device="cpu")  # loaded before timing, like the plain model
        started = time.perf_counter()
        report = embed_project(project, "clip-local", weights=str(folder), device="cpu", batch_size=BATCH)
        elapsed = time.perf_counter() - started
        assert report.embedded == len(paths), report
    return elapsed


def clustered_vectors(count: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = np.empty((count, DIM), np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        picks = centres[rng.integers(0, len(centres), n)]
        out[start : start + n] = normalized(picks + 0.08 * rng.standard_normal((n, DIM), dtype=np.float32))
    return out


def latencies(search, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 95) * 1000)


def bench_exact(count: int, rng: np.random.Generator, centres: np.ndarray, queries: np.ndarray) -> None:
    data = clustered_vectors(count, rng, centres)
    brute = latencies(lambda q: top_k(data @ q, K), queries)
    exact = ExactIndex(DIM)
    exact.add(np.arange(count), data)
    studio = latencies(lambda q: exact.search(q, K), queries)
    print(f"exact {count:>9,} vectors: numpy p50 {brute[0]:6.1f} ms p95 {brute[1]:6.1f} ms | "
          f"studio p50 {studio[0]:6.1f} ms p95 {studio[1]:6.1f} ms")


def bench_hnsw(count: int, rng: np.random.Generator, centres: np.ndarray, queries: np.ndarray) -> None:
    data = clustered_vectors(count, rng, centres)
    truth = [set(top_k(data @ q, K).tolist()) for q in queries]
    brute = latencies(lambda q: top_k(data @ q, K), queries)
    index = HnswIndex(DIM)
    started = time.perf_counter()
    keys = np.arange(count)
    for start in range(0, count, 100_000):
        index.add(keys[start : start + 100_000], data[start : start + 100_000])
    built = time.perf_counter() - started
    matrix_bytes = data.nbytes
    data = None  # only the index holds the vectors from here on
    ann = latencies(lambda q: index.search(q, K), queries)
    recall = np.mean([len(set(index.search(q, K)[0].tolist()) & t) / K for q, t in zip(queries, truth, strict=True)])
    extra = clustered_vectors(1000, rng, centres)
    started = time.perf_counter()
    index.add(np.arange(count, count + 1000), extra)
    added = time.perf_counter() - started
    memory = index.index.memory_usage
    print(f"hnsw  {count:>9,} vectors: numpy p50 {brute[0]:6.1f} ms p95 {brute[1]:6.1f} ms | "
          f"studio p50 {ann[0]:6.1f} ms p95 {ann[1]:6.1f} ms, recall@{K} {recall:.3f}")
    print(f"hnsw  memory {memory / 2**30:.2f} GiB (numpy float32 matrix {matrix_bytes / 2**30:.2f} GiB), "
          f"built in {built:.1f} s, 1,000 more vectors added in {added * 1000:.0f} ms without a rebuild")


def bench_queries(exact_n: int, ann_n: int) -> None:
    rng = np.random.default_rng(0)
    for count, part in ((exact_n, bench_exact), (ann_n, bench_hnsw)):
        # one centre per ~200 vectors: a query's 100 nearest are real neighbours, not noise-level ties
        centres = normalized(rng.standard_normal((max(10, count // 200), DIM), dtype=np.float32))
        part(count, rng, centres, clustered_vectors(QUERIES, rng, centres))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="256 images and 1M HNSW vectors")
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (default ViT-B-32)")
    parser.add_argument("--ann", type=int, metavar="N", help="vectors in the HNSW part (default 20,000; --full 1M)")
    parser.add_argument("--skip-queries", action="store_true", help="only the embedding throughput")
    args = parser.parse_args()
    count = 256 if args.full else 64
    if not args.skip_queries:
        bench_queries(100_000, args.ann or (1_000_000 if args.full else 20_000))
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp) / "images", count)
        folder = save_random_clip(args.arch, Path(tmp) / "model")
        plain_open_clip(folder, paths[:BATCH])  # warm-up of both: first calls allocate
        plain = plain_open_clip(folder, paths)
        studio = studio_embed(folder, Path(tmp) / "project", paths)
    print(f"embed {count} images 320x240 with {args.arch} (CPU, batch {BATCH}): open_clip {plain:.2f} s "
          f"({count / plain:.1f}/s), studio embed {studio:.2f} s ({count / studio:.1f}/s)")
    print(f"ratio={plain / studio:.2f}")


if __name__ == "__main__":
    main()
