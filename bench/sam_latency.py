"""Click latency: plain segment-anything SamPredictor vs Studio's click path, same image, same clicks.

Raw: `SamPredictor.set_image` once, then `predict` per click. Studio: the embedding through the
EmbeddingCache (encode on a miss, then memory / disk hits) and per click `segment_image` (cache lookup
by content hash, prompt checks, `SegmentAnythingSegmenter.predict`, candidates sorted) — everything the
canvas tool does except painting. Clicks accumulate as in real use (click k sends the first k points),
and raw and Studio alternate click by click so machine noise hits both alike; each click is timed
REPEATS times per side and its median kept, so one stall of a busy machine does not make the p95.

Random-init ViT-B unless --checkpoint gives a real file (latency does not depend on the weights).
Prints encoder time, cache-hit times, p50/p95 per click for both, and last `ratio=` raw p95 / Studio p95.

    .venv/bin/python bench/sam_latency.py            # 640x480, 12 clicks, CPU: ~45 s
    .venv/bin/python bench/sam_latency.py --full     # 1024x768, 30 clicks
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPEATS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="1024x768 image, 30 clicks")
    parser.add_argument("--checkpoint", type=Path, help="a real sam_vit_b checkpoint (default: random init)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    from segment_anything import SamPredictor, sam_model_registry
    from studio_plugins.segment_anything_sam import SegmentAnythingSegmenter

    from studio.jobs.segment import segment_image
    from studio.models.embedding_cache import EmbeddingCache

    width, height, n_clicks = (1024, 768, 30) if args.full else (640, 480, 12)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)  # BGR, as Studio reads images
    clicks = np.column_stack([rng.uniform(0, width, n_clicks), rng.uniform(0, height, n_clicks)])
    labels = (np.arange(n_clicks) % 3 != 2).astype(np.int64)  # mostly positive, every third negative

    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"](checkpoint=str(args.checkpoint) if args.checkpoint else None)
    sam.to(args.device).eval()
    raw = SamPredictor(sam)
    studio = SegmentAnythingSegmenter(sam)

    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(Path(folder))
        start = time.perf_counter()
        raw.set_image(image, image_format="BGR")
        raw_encode = time.perf_counter() - start
        start = time.perf_counter()
        cache.embedding(studio, image, model_id="sam-vit-b")
        studio_encode = time.perf_counter() - start
        start = time.perf_counter()
        cache.embedding(studio, image, model_id="sam-vit-b")
        memory_hit = time.perf_counter() - start
        start = time.perf_counter()
        EmbeddingCache(Path(folder)).embedding(studio, image, model_id="sam-vit-b")
        disk_hit = time.perf_counter() - start
        assert cache.stats().misses == 1

        raw_times, studio_times = [], []
        for k in range(1, n_clicks + 1):
            points, point_labels, multimask = clicks[:k], labels[:k], k == 1
            samples: dict[str, list[float]] = {"raw": [], "studio": []}
            for repeat in range(REPEATS):
                for side in ("raw", "studio") if (k + repeat) % 2 else ("studio", "raw"):
                    start = time.perf_counter()
                    if side == "raw":
                        raw.predict(point_coords=points, point_labels=point_labels, multimask_output=multimask)
                    else:
                        segment_image(
                            studio, image, model_id="sam-vit-b", points=[tuple(p) for p in points],
                            point_labels=point_labels.tolist(), multimask=multimask, cache=cache,
                        )
                    samples[side].append(time.perf_counter() - start)
            raw_times.append(float(np.median(samples["raw"])))
            studio_times.append(float(np.median(samples["studio"])))

    raw_p50, raw_p95 = np.percentile(raw_times, [50, 95])
    studio_p50, studio_p95 = np.percentile(studio_times, [50, 95])
    print(f"image {width}x{height}, {n_clicks} clicks x {REPEATS} repeats (median), SAM ViT-B on {args.device}, torch {torch.__version__}")
    print(f"encoder: raw set_image {raw_encode:.2f} s, studio (cache miss) {studio_encode:.2f} s")
    print(f"cache hit: memory {memory_hit * 1000:.1f} ms, disk {disk_hit * 1000:.1f} ms")
    print(f"per click raw:    p50 {raw_p50 * 1000:.1f} ms  p95 {raw_p95 * 1000:.1f} ms")
    print(f"per click studio: p50 {studio_p50 * 1000:.1f} ms  p95 {studio_p95 * 1000:.1f} ms")
    print(f"ratio={raw_p95 / studio_p95:.3f}")


if __name__ == "__main__":
    main()
