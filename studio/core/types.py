"""Domain types: what a project holds, independent of how it is stored or shown.

Rows become these at the database boundary (studio.db); the GUI, CLI, jobs and formats only ever see
these. They are frozen: an edit is `dataclasses.replace(annotation, shape=...)` handed to the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from studio.core.errors import StudioError
from studio.core.shapes import BBox, Box, Shape

MediaKind = Literal["image", "video"]
MediaStatus = Literal["ok", "missing", "changed"]
ReviewState = Literal["todo", "in_progress", "done", "rejected"]
RunStatus = Literal["running", "complete", "cancelled", "failed", "interrupted"]
"""interrupted: the process running it ended without finishing it (killed, crashed, machine restarted)."""
AnswerStatus = Literal["complete", "cancelled"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"})

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A qualitative palette (Tableau 10 then its light variants): distinct on photos, readable on dark UI.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2",
)


def default_color(index: int) -> str:
    """Colour for the index-th label of a project, cycling through PALETTE."""
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What probing a file on disk tells: enough to add it to a project."""

    path: str
    kind: MediaKind
    width: int
    height: int
    size_bytes: int
    mtime_ns: int
    frame_count: int = 1
    fps: float | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """An image, or a whole video (its frames are addressed by `frame` on annotations).

    `path` is as stored: relative to the project directory when inside it, absolute otherwise.
    """

    id: int
    path: str
    kind: MediaKind
    width: int
    height: int
    size_bytes: int
    mtime_ns: int
    frame_count: int = 1
    fps: float | None = None
    status: MediaStatus = "ok"
    review_state: ReviewState = "todo"
    caption: str | None = None
    labelled: bool = False
    """Its ground truth is complete, empty or not (a dataset file listed it): evaluation counts it."""

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), numpy's order, as geometry functions take it."""
        return (self.height, self.width)


def check_label_name(name: str) -> None:
    """StudioError unless `name` can be a label's name: non-empty text, one line, valid UTF-8 (a
    dataset file can carry NUL, newlines or unpaired surrogates, which would break every listing)."""
    if not isinstance(name, str) or not name.strip():
        raise StudioError("a label needs a non-empty name")
    if _CONTROL.search(name):
        raise StudioError(f"label name {name!r:.80} holds control characters (newline, NUL, ...)")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise StudioError(f"label name {name.encode('utf-8', 'backslashreplace').decode()!r:.80} is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class KeypointSchema:
    """What the points of a keypoint label are: their names in order, and the bones between them as
    pairs of 1-based point numbers (COCO's `skeleton`)."""

    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.names or not all(isinstance(n, str) for n in self.names):
            raise StudioError("keypoint names must be a non-empty list of strings")
        if any(not (1 <= i <= len(self.names) and 1 <= j <= len(self.names)) for i, j in self.skeleton):
            raise StudioError(f"a skeleton bone names a keypoint outside 1..{len(self.names)}")

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "skeleton": [list(bone) for bone in self.skeleton]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeypointSchema:
        return cls(tuple(data["names"]), tuple((int(i), int(j)) for i, j in data.get("skeleton", [])))


@dataclass(frozen=True, slots=True)
class Label:
    id: int
    name: str
    color: str
    keypoints: KeypointSchema | None = None

    def __post_init__(self) -> None:
        check_label_name(self.name)
        if not _COLOR.match(self.color):
            raise StudioError(f"label colour must look like #rrggbb, got {self.color!r}")


@dataclass(frozen=True)
class Annotation:
    """One labelled shape on one image or video frame.

    `run_id` None means a person made it (ground truth); otherwise it is a prediction of that model
    run and usually carries a `score`. `frame` is 0 for images.
    """

    media_id: int
    label_id: int
    shape: Shape
    frame: int = 0
    run_id: int | None = None
    score: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    track_id: int | None = None
    bbox: BBox | None = None
    """The box (x, y, w, h) stored with the shape: derived from it, unless a dataset file stated its own
    (COCO's `bbox`, which COCO's evaluation uses). None: derive it. Re-derived when the shape changes."""
    area: float | None = None
    """The area stored with the shape, like `bbox` (COCO's `area` decides small/medium/large)."""
    id: int | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_human(self) -> bool:
        return self.run_id is None


@dataclass(frozen=True, slots=True)
class FileId:
    """What a number in a dataset file meant: an image (`media_id`, `frame`) or a category (`label_id`).

    `file` names the dataset file (its absolute path): numbers are scoped to the file that gave them,
    since two files (Roboflow's train and valid splits) number their images alike. None in `media_id` or
    `label_id`: the image or label was deleted since; the number still means it, never another one.
    """

    format: str
    file: str
    kind: Literal["image", "category"]
    number: int
    media_id: int | None = None
    frame: int = 0
    label_id: int | None = None


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One execution of a model over some media. Its predictions are annotations with its run_id."""

    id: int
    name: str
    plugin: str
    weights: str | None
    params: dict[str, Any]
    device: str | None
    status: RunStatus
    created_at: datetime
    finished_at: datetime | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """A question asked of a vision-language model about an image, a video frame or a region, and its answer.

    `region` is the box asked about (None: the whole image); `annotation_id` the stored annotation it came
    from, if any. Follow-up questions share a `conversation`. `backend` is the plugin id, `model` the model
    id, folder or server model name; `params` the generation settings (temperature, seed, max tokens, region
    view, server address). `seconds` is the whole answer, `first_token_seconds` the wait for its first piece.
    A "cancelled" answer holds what had streamed when the user stopped it.
    """

    media_id: int
    question: str
    answer: str
    backend: str
    model: str
    conversation: str
    seconds: float
    frame: int = 0
    region: Box | None = None
    annotation_id: int | None = None
    run_id: int | None = None
    status: AnswerStatus = "complete"
    params: dict[str, Any] = field(default_factory=dict)
    first_token_seconds: float | None = None
    id: int | None = None
    created_at: datetime | None = None


Split = Literal["train", "val"]
TrainTask = Literal["detect", "segment"]


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A model trained on the project: its weights (relative to the project directory), what it was
    trained from and how well it did. `plugin` ("yolo", "rtdetr") runs it with `weights`.

    `split` holds the fraction, seed and the media ids of each side; `history` one dict per epoch
    (losses, mAP); `metrics` the final figures; `validation_run_id` the run of the model on the val images.
    """

    id: int
    name: str
    task: TrainTask
    plugin: str
    base: str
    status: RunStatus
    weights: str | None
    sha256: str | None
    params: dict[str, Any]
    split: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    validation_run_id: int | None
    created_at: datetime
    finished_at: datetime | None = None
