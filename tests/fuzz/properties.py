"""Hypothesis properties over hostile input, run by test_fuzz.py in a subprocess under a memory limit
(an abort in pycocotools must fail the test, not kill pytest). Prints one JSON summary line.

    python properties.py WORKDIR EXAMPLES
"""

from __future__ import annotations

import json
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MEMORY_LIMIT = 3 << 30
FIGURES: dict[str, Any] = {"rle_cases": 0, "rle_accepted": 0, "coco_cases": 0, "coco_imported": 0,
                           "tracebacks": 0, "internal_errors": 0, "failures": []}

# Any text pycocotools could be handed: its own alphabet '0'..'o' mostly, and anything else.
RLE_TEXT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=111), max_size=40),
    st.text(max_size=12),
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)


@st.composite
def rle_counts(draw: st.DrawFn) -> tuple[str, int, int]:
    """(counts, height, width): arbitrary text, or pycocotools' own encoding of a random mask, whole or
    with one character changed, dropped or added (the near-misses a hand-written check gets wrong)."""
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if draw(st.booleans()):
        return draw(RLE_TEXT), height, width
    import numpy as np
    from pycocotools import mask as mask_utils

    pixels = np.array(draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width)), np.uint8)
    counts = mask_utils.encode(np.asfortranarray(pixels.reshape(height, width)))["counts"].decode("ascii")
    edit = draw(st.sampled_from(["none", "change", "drop", "add"]))
    at = draw(st.integers(0, len(counts)))
    char = draw(st.characters(min_codepoint=32, max_codepoint=126))
    if edit == "change" and at < len(counts):
        counts = counts[:at] + char + counts[at + 1 :]
    elif edit == "drop":
        counts = counts[:at] + counts[at + 1 :]
    elif edit == "add":
        counts = counts[:at] + char + counts[at:]
    return counts, height, width


@settings(max_examples=int(sys.argv[2]) if len(sys.argv) > 2 else 200, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=rle_counts())
def rle_is_refused_or_exact(case: tuple[str, int, int]) -> None:
    """Any counts string: refused with InvalidShapeError, or decoded by pycocotools to exactly the runs
    Studio read, the same pixels every time (no uninitialised memory)."""
    import numpy as np

    from studio.core import geometry
    from studio.core.errors import InvalidShapeError
    from studio.core.shapes import Mask, rle_runs

    counts, height, width = case
    FIGURES["rle_cases"] += 1
    try:
        mask = Mask((height, width), counts)
    except InvalidShapeError:
        return
    FIGURES["rle_accepted"] += 1
    runs = rle_runs(counts)
    expected = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool).reshape((width, height)).T
    first, second = geometry.decode_mask(mask), geometry.decode_mask(mask)
    assert (first == expected).all() and (second == first).all(), counts


def coco_document(annotation: dict[str, Any], image: dict[str, Any], category: dict[str, Any]) -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 12, **image}],
        "categories": [{"id": 1, "name": "cat", **category}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], **annotation}],
    }


FIELDS = st.dictionaries(
    st.sampled_from(["id", "image_id", "category_id", "bbox", "segmentation", "iscrowd", "score", "attributes",
                     "track_id", "studio_shape", "file_name", "width", "height", "name"]),
    JSON_VALUES | st.fixed_dictionaries({"size": JSON_VALUES, "counts": RLE_TEXT | JSON_VALUES})
    | st.fixed_dictionaries({"kind": st.just("mask"), "size": st.just([12, 16]), "counts": RLE_TEXT}),
    max_size=3,
)


def make_coco_property(workdir: Path) -> Any:
    from studio.core.errors import StudioError
    from studio.db import Project
    from studio.io.formats.transfer import import_dataset

    dataset = workdir / "coco"
    dataset.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(dataset / "a.png"), np.zeros((12, 16, 3), np.uint8))
    project = Project.create(workdir / "project")

    @settings(max_examples=int(sys.argv[2]) if len(sys.argv) > 2 else 200, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(annotation=FIELDS, image=FIELDS, category=FIELDS)
    def coco_import_is_clean(annotation: dict[str, Any], image: dict[str, Any], category: dict[str, Any]) -> None:
        """A COCO file with any values in its fields imports, or fails with a StudioError leaving the
        project's counts as they were."""
        FIGURES["coco_cases"] += 1
        path = dataset / "annotations.json"
        path.write_text(json.dumps(coco_document(annotation, image, category)))
        before = project.counts()
        try:
            import_dataset(project, "coco", path)
            FIGURES["coco_imported"] += 1
        except StudioError:
            assert project.counts() == before
        except Exception:
            FIGURES["internal_errors"] += 1
            FIGURES["failures"].append(traceback.format_exc(limit=3)[-600:])

    return coco_import_is_clean


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    workdir = Path(sys.argv[1])
    for prop in (rle_is_refused_or_exact, make_coco_property(workdir)):
        try:
            prop()
        except Exception:
            FIGURES["tracebacks"] += 1
            FIGURES["failures"].append(traceback.format_exc(limit=4)[-800:])
    FIGURES["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(FIGURES))


if __name__ == "__main__":
    main()
