"""`studio eval` and `studio compare`: JSON a script can rely on, a report a person can share, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_cases import Obj, add_run, jitter, to_project
from test_coco_equality import jittered

from studio.cli.main import main
from studio.core.shapes import Points
from studio.core.types import Annotation
from studio.db import Project


@pytest.fixture
def two_runs(project: Project):
    """Ground truth, a good run "sharp" and a sloppier run "blurry" (other boxes, other misses)."""
    rng = np.random.default_rng(7)
    case = jittered(rng, n_images=10, n_labels=3)
    sharp = to_project(case, project, "bbox", run_name="sharp")
    project.finish_run(sharp, "complete", {"seconds_per_image": 0.02})  # as the prediction job records it
    blurry = [Obj(o.image, o.label, jitter(rng, o.box, 20), score=o.score) for o in case.pred if rng.random() < 0.6]
    add_run(blurry, project, "blurry")
    return project


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_has_the_coco_keys(two_runs: Project, capsys) -> None:
    code, out, _ = _run(capsys, "eval", str(two_runs.root), "--pred", "sharp", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"map", "map50", "map75", "per_class", "confusion_matrix"} <= doc.keys()
    assert 0 < doc["map"] <= doc["map50"] <= 1
    assert set(doc["per_class"]) == {"class0", "class1", "class2"}
    assert doc["confusion_matrix"]["background"]["background"] == 0


def test_compare_json_is_stable_and_ranks_runs(two_runs: Project, capsys, tmp_path) -> None:
    argv = ["compare", str(two_runs.root), "sharp", "blurry", "--json"]
    first = _run(capsys, *argv)
    second = _run(capsys, *argv)
    assert first[0] == 0 and first[1] == second[1]
    doc = json.loads(first[1])
    assert [r["name"] for r in doc["runs"]] == ["sharp", "blurry"]
    assert [r["speed_ms_per_image"] for r in doc["runs"]] == [20.0, None]
    assert doc["deltas"]["blurry"]["map"] == pytest.approx(doc["runs"][1]["map"] - doc["runs"][0]["map"], abs=1e-5)
    assert doc["deltas"]["blurry"]["map"] < 0  # jittering more and missing more costs AP
    worst = [row["disagreement"] for row in doc["worst_images"]]
    assert worst == sorted(worst, reverse=True) and worst[0] > 0


def test_compare_report_writes_markdown_with_plots(two_runs: Project, capsys, tmp_path) -> None:
    code, _, _ = _run(capsys, "compare", str(two_runs.root), "sharp", "blurry", "--report", str(tmp_path / "rep"))
    assert code == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    images = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(images) == 4  # PR curves, AP bars, one confusion matrix per run
    for name in images:
        assert (tmp_path / "rep" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| map |" in text and "sharp" in text and "blurry" in text


def _one_line_error(capsys, *argv: str) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("studio: error: ")
    return err


def test_unknown_run_is_one_clear_line(two_runs: Project, capsys) -> None:
    err = _one_line_error(capsys, "eval", str(two_runs.root), "--pred", "nope")
    assert "no run named 'nope'" in err and "sharp" in err


def test_run_without_predictions_is_one_clear_line(two_runs: Project, capsys) -> None:
    two_runs.create_run("test", name="empty")
    err = _one_line_error(capsys, "compare", str(two_runs.root), "sharp", "empty")
    assert "run 'empty' has no predictions" in err


def test_no_ground_truth_is_one_clear_line(project: Project, capsys) -> None:
    rng = np.random.default_rng(1)
    case = jittered(rng, n_images=3)
    case.gt, case.reviewed_empty = [], set()
    case.pred = case.pred[:5]
    to_project(case, project, "bbox")
    err = _one_line_error(capsys, "eval", str(project.root), "--pred", "model")
    assert "no ground truth" in err
    before = project.counts()
    assert project.counts() == before


def test_compare_needs_two_runs(two_runs: Project, capsys) -> None:
    assert "at least two different runs" in _one_line_error(capsys, "compare", str(two_runs.root), "sharp", "sharp")


def test_another_run_can_be_the_ground_truth(two_runs: Project, capsys) -> None:
    code, out, _ = _run(capsys, "eval", str(two_runs.root), "--pred", "blurry", "--gt", "sharp", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["gt"] == "sharp" and 0 < doc["map"] < 1


def test_eval_human_text_output(two_runs: Project, capsys) -> None:
    media = two_runs.list_media()[0]
    keypoint = Annotation(media_id=media.id, label_id=two_runs.labels()[0].id, shape=Points([(1, 1)]))
    two_runs.add_annotation(keypoint)  # no area: left out of matching, not an error
    code, out, _ = _run(capsys, "eval", str(two_runs.root), "--pred", "sharp")
    assert code == 0 and "mAP@[.5:.95]" in out and "class0" in out
