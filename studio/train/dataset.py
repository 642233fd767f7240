"""The training set, built straight from the project's human annotations, and its stored train/val split.

The split is by media, so the frames of one video never fall on both sides, and it is stored in the
project: later trainings validate on the same images and their metrics can be compared. Media added since
are drawn with the same seed so that the val share stays near the asked fraction; changing the fraction or
the seed draws the whole split again.

The files are written by the YOLO exporter itself (`studio.io.formats.yolo`), into a folder the caller
owns (a temporary one), so the user never writes a data.yaml.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.types import Media, Split
from studio.db.project import Project
from studio.io import formats
from studio.io.formats.transfer import build_dataset
from studio.io.formats.yolo import DATA_YAML

SPLIT_SETTING = "train.split"
DEFAULT_FRACTION = 0.8
DEFAULT_SEED = 0


@dataclass(frozen=True)
class SplitChoice:
    """The share of media that trains (the rest validates) and the seed that drew the sides."""

    fraction: float = DEFAULT_FRACTION
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise StudioError(f"--split is the share of images that train, between 0 and 1 (got {self.fraction})")


@dataclass
class TrainingSet:
    folder: Path
    data_yaml: Path
    labels: list[str]
    train_media: list[int]
    val_media: list[int]
    images: dict[str, int] = field(default_factory=dict)
    """Images written per side: {"train": n, "val": n}."""
    redrawn: bool = False
    """True when the stored split was drawn again (new fraction or seed)."""

    def split_record(self, choice: SplitChoice) -> dict[str, object]:
        """What a trained model keeps of its split: enough to tell whether two models are comparable."""
        return {"fraction": choice.fraction, "seed": choice.seed, "train": self.train_media, "val": self.val_media}


def stored_choice(project: Project) -> SplitChoice | None:
    stored = project.get_setting(SPLIT_SETTING)
    return SplitChoice(float(stored["fraction"]), int(stored["seed"])) if stored else None


def assign_split(project: Project, media_ids: Sequence[int], choice: SplitChoice) -> tuple[dict[int, Split], bool]:
    """The side of each of `media_ids`, keeping stored sides (unless the choice changed) and storing new ones.

    Returns the sides and whether the whole split was drawn again.
    """
    redraw = stored_choice(project) not in (None, choice)
    known = {} if redraw else {m: s for m, s in project.split().items() if m in set(media_ids)}
    new = sorted(set(media_ids) - set(known))
    random.Random(choice.seed).shuffle(new)
    want_val = round(len(media_ids) * (1 - choice.fraction))
    if len(media_ids) >= 2:
        want_val = min(max(want_val, 1), len(media_ids) - 1)  # both sides hold at least one media
    have_val = sum(side == "val" for side in known.values())
    take = min(max(want_val - have_val, 0), len(new))
    sides: dict[int, Split] = {**known, **{m: "val" for m in new[:take]}, **{m: "train" for m in new[take:]}}
    project.set_split({m: sides[m] for m in new} if not redraw else sides, replace_all=redraw)
    project.set_setting(SPLIT_SETTING, {"fraction": choice.fraction, "seed": choice.seed})
    return sides, redraw


def build_training_set(
    project: Project, folder: Path, *, choice: SplitChoice, labels: Sequence[str] | None = None, segments: bool = False
) -> TrainingSet:
    """Write the project's labelled images (and annotated video frames) as a YOLO dataset in `folder`.

    An image counts as labelled when it holds a human annotation of the chosen labels, or when it is
    reviewed "done" (an empty image, a true negative). Unknown labels and a project with nothing to learn
    from are StudioErrors raised before anything is written.
    """
    dataset = build_dataset(project, source="human", labels=labels)
    media: dict[int, Media] = {m.id: m for m in project.list_media()}
    dataset.images = [
        image for image in dataset.images
        if image.annotations or (image.frame is None and media[image.media_id].review_state == "done")
    ]
    if not any(image.annotations for image in dataset.images):
        chosen = f" with the labels {', '.join(labels)}" if labels else ""
        raise StudioError(f"no human annotations{chosen} to train on; label some images first")
    if segments and not any(a.shape.kind in ("polygon", "mask") for i in dataset.images for a in i.annotations):
        raise StudioError("--task segment needs polygons or masks; the annotations are boxes only")
    media_ids = sorted({image.media_id for image in dataset.images if image.media_id is not None})
    if len(media_ids) < 2:
        raise StudioError("training needs at least two labelled images (one trains, one validates)")
    sides, redrawn = assign_split(project, media_ids, choice)
    for image in dataset.images:
        image.split = sides[image.media_id]  # type: ignore[index]
    formats.writer("yolo")(dataset, folder, copy_images=True)
    counts = {side: sum(image.split == side for image in dataset.images) for side in ("train", "val")}
    return TrainingSet(
        folder=folder, data_yaml=folder / DATA_YAML, labels=list(dataset.labels),
        train_media=[m for m in media_ids if sides[m] == "train"], val_media=[m for m in media_ids if sides[m] == "val"],
        images=counts, redrawn=redrawn,
    )
