"""Search that means something: a tiny CLIP trained here on coloured shapes with captions ("a red circle")
finds held-out images by text through `studio search`, and tags them zero-shot through `studio tag` far
better than chance.

Training takes a minute or two of CPU, so the model folder is kept in pytest's cache directory between runs
(keyed by the recipe and the open_clip and torch versions); a fresh checkout trains once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from clip_helpers import CLASSES, train_shapes_clip, write_shapes

from studio.cli.main import main
from studio.io.media import add_paths

RECIPE = "shapes-clip-v1"


@pytest.fixture(scope="session")
def shapes_clip(request, tmp_path_factory) -> Path:
    import open_clip
    import torch

    key = f"studio-clip-{RECIPE}-{open_clip.__version__}-{torch.__version__}"
    store = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    cache = Path(store.mkdir(key)) if store is not None else tmp_path_factory.mktemp(key)
    folder = cache / "shapes-clip"
    if not (folder / "open_clip_pytorch_model.bin").is_file():
        trained = train_shapes_clip(tmp_path_factory.mktemp("train-clip") / "shapes-clip")
        shutil.copytree(trained, folder, dirs_exist_ok=True)
    return folder


@pytest.mark.slow
def test_text_search_and_zero_shot_tagging_with_a_trained_clip(shapes_clip, project, capsys):
    truth = write_shapes(project.root / "held-out", 5, seed=99)  # 60 images the model never saw
    add_paths(project, [project.root / "held-out"])
    assert main(["embed", str(project.root), "--model", "clip-local", "--weights", str(shapes_clip)]) == 0
    capsys.readouterr()

    precision = []
    for name in CLASSES:
        assert main(["search", str(project.root), f"a {name}", "--k", "5", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert len(hits) == 5
        precision.append(np.mean([truth[Path(h["media"]).name] == name for h in hits]))
    assert np.mean(precision) >= 0.8, f"text precision@5 {np.mean(precision):.2f}: {precision}"

    for media in project.list_media():  # what a person said each image shows: the accuracy's reference
        project.set_tags(media.id, [truth[media.name]])
    assert main(["tag", str(project.root), "--model", "clip-local", "--weights", str(shapes_clip),
                 "--classes", ",".join(CLASSES), "--run", "zero-shot"]) == 0
    stats = project.find_run("zero-shot").stats
    assert stats["evaluated"] == 60 and stats["chance"] == pytest.approx(1 / 12, abs=1e-3)
    assert stats["accuracy"] >= 0.5, stats  # chance is 0.083
    assert "zero-shot accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_zero_shot_relabelling_of_boxes_is_a_run_accepted_like_detections(shapes_clip, project, capsys):
    from studio.core.shapes import Box
    from studio.core.types import Annotation
    from studio.jobs.accept import accept_predictions

    truth = write_shapes(project.root / "held-out", 2, seed=7)
    add_paths(project, [project.root / "held-out"])
    unsure = project.ensure_label("red circle")  # what a hurried labeller called everything
    boxes = [project.add_annotation(Annotation(m.id, unsure.id, Box(0, 0, 48, 48))) for m in project.list_media()]
    assert main(["tag", str(project.root), "--model", "clip-local", "--weights", str(shapes_clip), "--regions",
                 "--classes", ",".join(CLASSES), "--run", "relabel"]) == 0
    run = project.find_run("relabel")
    assert run.stats["predictions"] == 24 and run.stats["evaluated"] == 24  # every box's label is a class
    relabelled = project.annotations(source=run.id)
    labels = {label.id: label.name for label in project.labels()}
    right = [labels[a.label_id] == truth[project.get_media(a.media_id).name] for a in relabelled]
    assert np.mean(right) >= 0.6, right
    assert {a.attributes["relabelled_from"] for a in relabelled} == {b.id for b in boxes}
    accepted = accept_predictions(project, run.id, min_score=0.0)
    assert len(accepted) == 24 and all(a.run_id is None for a in accepted)
