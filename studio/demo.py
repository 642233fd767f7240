"""The demo project: bundled sample photographs and a short video, a few labels and example shapes.

Qt-free so that `studio demo --no-gui`, tests and scripts can make it without a display. The media are
copied into the project folder (they are tiny) so the project stays valid if Studio is moved.
"""

from __future__ import annotations

import math
import os
import shutil
from importlib import resources
from pathlib import Path

from studio.core.shapes import Box, Points, Polygon
from studio.core.types import Annotation
from studio.db.project import DB_NAME, Project

LABELS = ("person", "cat", "cup", "coin", "rocket", "shape")

# Example human annotations, so a first look shows what labelled images look like. Coordinates are in
# the pixels of the bundled files (see resources/LICENSES.md).
_EXAMPLES: dict[str, list[tuple[str, Box | Polygon | Points]]] = {
    "astronaut.jpg": [("person", Box(30, 15, 512, 512))],
    "chelsea.jpg": [
        ("cat", Polygon([[(60, 60), (170, 20), (300, 40), (420, 150), (440, 300), (40, 300), (20, 180)]])),
    ],
    "coffee.jpg": [("cup", Box(170, 20, 560, 340))],
    "camera.jpg": [("person", Box(130, 40, 360, 470)), ("person", Points([(250, 95)]))],
}


def _video_examples() -> list[tuple[int, Box]]:
    """Boxes around the red circle of shapes.mp4 on a few keyframes (it moves along a known path)."""
    boxes = []
    for frame in (0, 15, 30, 45):
        cx, cy = 30 + 4 * frame, 120 + int(40 * math.sin(frame / 6))
        boxes.append((frame, Box(cx - 23, cy - 23, cx + 23, cy + 23)))
    return boxes


def default_demo_dir() -> Path:
    """Where `studio demo` puts the project when no folder is given (STUDIO_DATA_DIR in tests)."""
    base = os.environ.get("STUDIO_DATA_DIR")
    if base:
        return Path(base) / "demo"
    import platformdirs

    return Path(platformdirs.user_data_dir("studio")) / "demo"


def create_demo(directory: Path | str | None = None) -> Project:
    """Open the demo project in `directory`, creating and filling it first if it does not exist yet.

    An existing demo is reopened as it is, so a person's labelling there is never overwritten.
    """
    from studio.io.media import add_paths

    root = Path(directory) if directory is not None else default_demo_dir()
    if (root / DB_NAME).is_file():
        return Project.open(root)
    media_dir = root / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    demo_media = resources.files("studio_resources") / "demo"
    for source in sorted(demo_media.iterdir(), key=lambda entry: entry.name):
        with resources.as_file(source) as path:  # a real file even when installed zipped
            shutil.copy2(path, media_dir / source.name)
    project = Project.create(root)
    try:
        with project.transaction():
            add_paths(project, [media_dir])
            labels = {name: project.ensure_label(name) for name in LABELS}
            media_by_name = {media.name: media for media in project.list_media()}
            project.add_annotations(
                Annotation(media_id=media_by_name[name].id, label_id=labels[label].id, shape=shape, created_by="demo")
                for name, shapes in _EXAMPLES.items()
                for label, shape in shapes
            )
            project.add_annotations(
                Annotation(
                    media_id=media_by_name["shapes.mp4"].id, frame=frame, label_id=labels["shape"].id, shape=box,
                    created_by="demo",
                )
                for frame, box in _video_examples()
            )
    except BaseException:
        project.close()
        raise
    return project
