"""What backends share: region views, constrained answers and grounded-box parsing on real model outputs."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import AskParams
from studio.models.vqa import match_choice, names_colour, parse_boxes, qwen_input_size, region_view


def _corners(detections: list) -> list[tuple[str, tuple[float, ...]]]:
    return [(d.label, (d.box.x1, d.box.y1, d.box.x2, d.box.y2)) for d in detections]


# Florence-2: the strings of transformers' own Florence-2 processor tests and its model card's <OD> example
FLORENCE_OD = "</s><s>car<loc_53><loc_334><loc_933><loc_775>door handle<loc_425><loc_504><loc_474><loc_516></s><pad>"
FLORENCE_SHARED = ("car<loc_54><loc_375><loc_906><loc_707>door<loc_710><loc_276><loc_908><loc_537>"
                   "wheel<loc_708><loc_557><loc_865><loc_704><loc_147><loc_563><loc_305><loc_705>")
# PaliGemma's "detect wall ; car" answer (big_vision's parser example, without the segment tokens)
PALIGEMMA = "<loc0000><loc0000><loc0930><loc1012> wall ; <loc0722><loc0047><loc0895><loc0378> car"
# Qwen2.5-VL's JSON grounding answer, as its cookbook shows it
QWEN25 = '```json\n[\n\t{"bbox_2d": [135, 114, 1016, 672], "label": "dog"},\n\t{"bbox_2d": [0, 0, 28, 56], "label": "cat"}\n]\n```'


@pytest.mark.parametrize(
    ("text", "size", "kwargs", "expected"),
    [
        (FLORENCE_OD, (1000, 1000), {}, [("car", (53.5, 334.5, 933.5, 775.5)), ("door handle", (425.5, 504.5, 474.5, 516.5))]),
        (FLORENCE_SHARED, (2000, 1000), {}, [("car", (109.0, 375.5, 1813.0, 707.5)), ("door", (1421.0, 276.5, 1817.0, 537.5)),
                                              ("wheel", (1417.0, 557.5, 1731.0, 704.5)), ("wheel", (295.0, 563.5, 611.0, 705.5))]),
        (PALIGEMMA, (1024, 512), {}, [("wall", (0.0, 0.0, 1012.0, 465.0)), ("car", (47.0, 361.0, 378.0, 447.5))]),
        (QWEN25, (2184, 1624), {"input_size": (1092, 812)}, [("dog", (270.0, 228.0, 2032.0, 1344.0)), ("cat", (0.0, 0.0, 56.0, 112.0))]),
        ('[{"bbox_2d": [139, 768, 315, 954], "label": "cat"}]', (500, 1000), {"box_format": "qwen3-vl"},
         [("cat", (69.5, 768.0, 157.5, 954.0))]),
        ("There is no dog in this picture.", (100, 100), {}, []),
    ],
)
def test_grounded_answers_become_boxes_in_image_pixels(text: str, size: tuple[int, int], kwargs: dict, expected: list) -> None:
    found = _corners(parse_boxes(text, size, **kwargs))
    assert [name for name, _ in found] == [name for name, _ in expected]
    for (_, got), (_, want) in zip(found, expected, strict=True):
        assert got == pytest.approx(want)


def test_a_malformed_grounded_answer_is_one_clear_error() -> None:
    with pytest.raises(StudioError, match="not in qwen2.5-vl's box format"):
        parse_boxes('```json\n[{"bbox_2d": [1, 2, 3], "label": "x"}]\n```', (100, 100), box_format="qwen2.5-vl")


def test_qwen_input_size_follows_its_processor() -> None:
    assert qwen_input_size(1092, 812) == (1092, 812)  # already multiples of 28
    assert qwen_input_size(640, 480) == (644, 476)


def test_region_view_crops_with_context_or_draws_the_box() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    box = Box(40, 20, 80, 60)
    assert region_view(image, box, AskParams(context=0.25)).shape == (60, 60, 3)  # 40 + 2 * 10 each way
    assert region_view(image, Box(0, 0, 40, 40), AskParams(context=0.5)).shape == (60, 60, 3)  # clipped at the edge
    drawn = region_view(image, box, AskParams(region_view="draw"))
    assert drawn.shape == image.shape and drawn[20, 60].tolist() == [255, 0, 255] and not image.any()
    assert region_view(image, None, AskParams()) is image
    with pytest.raises(StudioError, match="outside"):
        region_view(image, Box(300, 300, 310, 310), AskParams())


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("Yes.", "yes"), ("no", "no"), ("  YES ", "yes"), ("Yes, it is.", "yes"), ("I think so", None), ("yes or no", None)],
)
def test_answers_are_matched_to_choices(answer: str, expected: str | None) -> None:
    assert match_choice(answer, ["yes", "no"]) == expected


def test_the_preflight_colour_must_be_named_alone() -> None:
    assert names_colour("Red.", "red") and names_colour("The image is red", "red")
    assert not names_colour("I cannot see any image.", "red") and not names_colour("red or blue", "red")
