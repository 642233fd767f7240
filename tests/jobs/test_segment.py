"""Segmenting one image from prompts, "segment all boxes" as a run with progress and cancel, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from studio_plugins.grabcut import GrabCutSegmenter

from studio.cli.main import main
from studio.core.errors import CancelledError, StudioError
from studio.core.geometry import decode_mask
from studio.core.shapes import Box, Mask
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths
from studio.jobs.segment import segment_all_boxes, segment_image
from studio.models.embedding_cache import EmbeddingCache

DISKS = [((40, 40), 22), ((120, 70), 25)]  # (centre, radius) on a 160x120 image
BOXES = [Box(14, 14, 66, 66), Box(91, 41, 149, 99)]


def disk_truth(index: int) -> np.ndarray:
    truth = np.zeros((120, 160), dtype=np.uint8)
    cv2.circle(truth, *DISKS[index], 1, -1)
    return truth.astype(bool)


def write_scene(path: Path) -> Path:
    rng = np.random.default_rng(3)
    image = rng.integers(100, 150, (120, 160, 3), dtype=np.uint8)
    for (centre, radius), colour in zip(DISKS, [(20, 20, 230), (230, 40, 30)], strict=True):
        cv2.circle(image, centre, radius, colour, -1)
    cv2.imwrite(str(path), image)
    return path


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture
def scene_project(project: Project, tmp_path: Path) -> Project:
    (media,) = add_paths(project, [write_scene(tmp_path / "scene.jpg")]).added
    label = project.ensure_label("disk")
    project.add_annotations(Annotation(media.id, label.id, box) for box in BOXES)
    return project


class CountingGrabCut(GrabCutSegmenter):
    persist_embeddings = True

    def __init__(self) -> None:
        super().__init__()
        self.encodes = 0

    def encode(self, image):
        self.encodes += 1
        return super().encode(image)


def test_segment_image_sorts_candidates_and_uses_the_cache(tmp_path: Path):
    image = cv2.imread(str(write_scene(tmp_path / "s.jpg")))
    segmenter, cache = CountingGrabCut(), EmbeddingCache(tmp_path / "cache")
    for _ in range(2):
        candidates = segment_image(segmenter, image, model_id="grabcut", points=[(40, 40)], cache=cache)
    assert segmenter.encodes == 1
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    assert iou(candidates[0].mask, disk_truth(0)) > 0.8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one point"),
        ({"points": [(500, 10)]}, "outside"),
        ({"points": [(5, 5)], "point_labels": [1, 0]}, "labels"),
        ({"box": Box(200, 200, 300, 300)}, "outside"),
    ],
)
def test_segment_image_rejects_bad_prompts(kwargs, message):
    with pytest.raises(StudioError, match=message):
        segment_image(GrabCutSegmenter(), np.zeros((120, 160, 3), np.uint8), model_id="grabcut", **kwargs)


def test_all_boxes_become_masks_in_a_new_run(scene_project: Project):
    seen = []
    report = segment_all_boxes(
        scene_project, GrabCutSegmenter(), model_id="grabcut", progress=lambda d, t: seen.append((d, t))
    )
    assert report.boxes == 2 and report.masks == 2 and report.run.status == "complete"
    assert seen[-1] == (2, 2)
    masks = scene_project.annotations(source=report.run.id)
    human_boxes = scene_project.annotations(source="human")
    assert len(human_boxes) == 2  # the human annotations are untouched
    for ann, box_ann, index in zip(masks, human_boxes, range(2), strict=True):
        assert isinstance(ann.shape, Mask) and ann.label_id == box_ann.label_id
        assert ann.attributes["box_annotation"] == box_ann.id
        assert iou(decode_mask(ann.shape), disk_truth(index)) > 0.9


def test_all_boxes_cancel_keeps_done_work_and_marks_the_run(scene_project: Project, tmp_path: Path):
    (second,) = add_paths(scene_project, [write_scene(tmp_path / "second.jpg")]).added
    scene_project.add_annotation(Annotation(second.id, scene_project.find_label("disk").id, BOXES[0]))
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # stop before the second image

    with pytest.raises(CancelledError, match="cancelled after 2 of 3"):
        segment_all_boxes(scene_project, GrabCutSegmenter(), model_id="grabcut", cancel=cancel)
    (run,) = scene_project.runs()
    assert run.status == "cancelled" and run.stats["masks"] == 2
    assert len(scene_project.annotations(source=run.id)) == 2


def test_all_boxes_without_boxes_is_one_clear_error(project: Project):
    with pytest.raises(StudioError, match="no boxes"):
        segment_all_boxes(project, GrabCutSegmenter(), model_id="grabcut")
    assert project.runs() == []


# ---- CLI ---------------------------------------------------------------------------------------------


def test_cli_segment_prints_and_saves_the_mask(scene_project: Project, capsys, tmp_path: Path):
    root = str(scene_project.root)
    out = tmp_path / "mask.png"
    code = main(["segment", root, "1", "--point", "40,40", "--point", "120,70,0", "--model", "grabcut",
                 "--save", "--label", "disk", "--out", str(out), "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["candidates"][0]["area"] > 0.8 * disk_truth(0).sum()
    saved = scene_project.get_annotation(document["saved_annotation"])
    assert isinstance(saved.shape, Mask) and iou(decode_mask(saved.shape), disk_truth(0)) > 0.8
    assert (cv2.imread(str(out), cv2.IMREAD_GRAYSCALE) > 0).sum() == decode_mask(saved.shape).sum()


def test_cli_segment_box_as_polygon(scene_project: Project, capsys):
    code = main(["segment", str(scene_project.root), "scene.jpg", "--box", "91,41,149,99", "--model", "grabcut",
                 "--save", "--polygon", "1.5"])
    assert code == 0 and "saved annotation" in capsys.readouterr().out
    assert scene_project.annotations(source="human")[-1].shape.kind == "polygon"


def test_cli_all_boxes_and_noc(scene_project: Project, capsys):
    assert main(["segment", str(scene_project.root), "--all-boxes", "--model", "grabcut", "--run", "masks"]) == 0
    assert "into 2 masks in run 'masks'" in capsys.readouterr().out
    run = scene_project.find_run("masks")
    for ann in scene_project.annotations(source=run.id):  # promote the masks to ground truth for the meter
        scene_project.add_annotation(Annotation(ann.media_id, ann.label_id, ann.shape))
    assert main(["noc", str(scene_project.root), "--model", "grabcut", "--max-clicks", "3", "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["models"]
    assert report["model"] == "grabcut" and report["objects"] == 2 and 1 <= report["noc"]["NoC@85"] <= 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--point", "1,2,3"], "must be 1 (positive) or 0"),
        (["--point", "abc"], "comma-separated numbers"),
        (["--box", "1,2,3"], "4 comma-separated"),
        ([], "at least one --point"),
        (["--point", "5,5", "--model", "nope"], "no model plugin 'nope'"),
        (["--point", "5,5", "--model", "sam-vit-b", "--weights", "/nowhere/sam_vit_b.pth"], "not found"),
    ],
)
def test_cli_bad_input_is_one_line_and_changes_nothing(scene_project: Project, capsys, argv, message):
    before = scene_project.counts()
    if "--model" not in argv:
        argv = [*argv, "--model", "grabcut"]
    assert main(["segment", str(scene_project.root), "1", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert scene_project.counts() == before


def test_cli_unknown_media_is_one_clear_error(scene_project: Project, capsys):
    assert main(["segment", str(scene_project.root), "nope.jpg", "--point", "1,1", "--model", "grabcut"]) == 1
    assert "no media 'nope.jpg'" in capsys.readouterr().err

