"""End to end with a model that really works: a tiny YOLO trained here on white squares on dark noise is run
through `studio predict` and must find the squares of new images (recall > 0.8 at IoU 0.5).

Training takes ~45 s of CPU, so the weights are kept in pytest's cache directory between runs (keyed by the
recipe and the ultralytics version); a fresh checkout trains once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from squares import FAST_RECIPE, IMAGE_SIZE, square_images, tiny_yolo_config

from studio.cli.main import main
from studio.core.geometry import iou
from studio.io.media import add_paths

RECIPE = "squares-v1"
EPOCHS = 60


def _train(work: Path) -> Path:
    """Train a 1-class YOLO11 scaled down to 1/8 of the nano width (it learns squares in ~60 short epochs)."""
    from studio_plugins.ultralytics_detect import _ultralytics

    ultralytics = _ultralytics()
    truth = square_images(work / "train" / "images", 48, seed=0)
    (work / "train" / "labels").mkdir()
    for name, boxes in truth.items():
        lines = [
            f"0 {(b.x1 + b.x2) / 2 / IMAGE_SIZE} {(b.y1 + b.y2) / 2 / IMAGE_SIZE} "
            f"{b.width / IMAGE_SIZE} {b.height / IMAGE_SIZE}"
            for b in boxes
        ]
        (work / "train" / "labels" / name.replace(".png", ".txt")).write_text("\n".join(lines))
    (work / "data.yaml").write_text(f"path: {work}\ntrain: train/images\nval: train/images\nnames:\n  0: square\n")
    model = ultralytics.YOLO(str(tiny_yolo_config(work / "yolo11t.yaml")))
    model.train(
        data=str(work / "data.yaml"), epochs=EPOCHS, imgsz=IMAGE_SIZE, batch=16, workers=0, device="cpu",
        seed=0, plots=False, val=False, verbose=False, project=str(work / "runs"), name="squares", exist_ok=True,
        **FAST_RECIPE,
    )
    return work / "runs" / "squares" / "weights" / "last.pt"


@pytest.fixture(scope="session")
def square_detector(request, tmp_path_factory) -> Path:
    import ultralytics

    key = f"studio-yolo-{RECIPE}-{ultralytics.__version__}"
    store = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    cache = Path(store.mkdir(key)) if store is not None else tmp_path_factory.mktemp(key)
    weights = cache / "squares.pt"
    if not weights.is_file():
        trained = _train(tmp_path_factory.mktemp("train-squares"))
        shutil.copy(trained, weights)
    return weights


@pytest.mark.slow
def test_studio_predict_finds_the_squares(square_detector, project, tmp_path, capsys):
    truth = square_images(tmp_path / "new", 10, seed=123)
    media = add_paths(project, [tmp_path / "new"]).added
    assert len(media) == 10
    code = main(["predict", str(project.root), "--model", "yolo", "--weights", str(square_detector),
                 "--run", "squares", "--conf", "0.25", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    run = project.find_run("squares")
    assert run.status == "complete" and run.stats["items"] == 10
    found = total = 0
    for m in media:
        predicted = [a.shape for a in project.annotations(m.id, source=run.id)]
        for box in truth[m.name]:
            total += 1
            found += any(iou(box, p) >= 0.5 for p in predicted)
    assert found / total > 0.8, f"recall {found}/{total}"
    assert {label.name for label in project.labels()} == {"square"}
