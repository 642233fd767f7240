"""The real `studio` command in a subprocess: new, add, info, and bad input that must change nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_image

from studio.cli.project_commands import FORMAT_NAMES, VIDEO_FORMAT_NAMES


def studio(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def info(project: Path) -> dict[str, int]:
    result = studio("info", project, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("studio: error:")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


FILLED = {"media": 3, "annotations": 0, "labels": 0, "runs": 0, "predictions": 0, "answers": 0, "embeddings": 0, "tracks": 0}
"""What `filled_project` holds; no test may change it (each CLI call costs ~1 s, so it is shared)."""


@pytest.fixture(scope="module")
def filled_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with 3 images added through the CLI."""
    base = tmp_path_factory.mktemp("cli")
    for i in range(3):
        write_image(base / "images" / "sub" / f"img{i}.png", seed=i)
    project = base / "proj"
    created = studio("new", project)
    assert created.returncode == 0, created.stderr
    added = studio("add", project, base / "images")
    assert added.returncode == 0, added.stderr
    assert "added 3 media" in added.stdout
    return project


def test_info_json_has_exact_integer_counts(filled_project: Path) -> None:
    counts = info(filled_project)
    assert counts == FILLED
    assert all(type(value) is int for value in counts.values())


def test_adding_the_same_folder_again_adds_nothing(filled_project: Path) -> None:
    result = studio("add", filled_project, filled_project.parent / "images")
    assert result.returncode == 0
    assert "added 0 media (3 already in the project)" in result.stdout


def test_new_on_an_existing_project_is_refused(filled_project: Path) -> None:
    assert_one_line_error(studio("new", filled_project), "already holds a project")


def test_missing_project_is_one_clear_error(tmp_path: Path) -> None:
    assert_one_line_error(studio("info", tmp_path / "nope"), "not a Studio project")
    assert not (tmp_path / "nope").exists()


def _truncated_video(path: Path) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), i * 20, dtype=np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


@pytest.mark.parametrize("problem", ["missing file", "corrupt image", "truncated video"])
def test_bad_media_changes_nothing(filled_project: Path, tmp_path: Path, problem: str) -> None:
    good = write_image(tmp_path / "good.jpg")
    if problem == "missing file":
        bad = tmp_path / "missing.jpg"
    elif problem == "corrupt image":
        bad = tmp_path / "corrupt.jpg"
        bad.write_bytes(good.read_bytes()[:200])
    else:
        bad = _truncated_video(tmp_path / "clip.mp4")  # FFmpeg's own complaints must not reach stderr
    assert_one_line_error(studio("add", filled_project, good, bad), bad.name)
    assert info(filled_project) == FILLED  # not even the good file was added


def test_skip_bad_reports_and_adds_the_rest(tmp_path: Path) -> None:
    project = tmp_path / "p"
    assert studio("new", project).returncode == 0
    good = write_image(tmp_path / "good.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = studio("add", project, good, tmp_path / "corrupt.jpg", "--skip-bad")
    assert result.returncode == 0
    assert "added 1 media" in result.stdout
    assert "corrupt.jpg" in result.stderr and "Traceback" not in result.stderr


def test_unknown_format_is_one_clear_error(filled_project: Path, tmp_path: Path) -> None:
    assert_one_line_error(studio("import", filled_project, tmp_path, "--format", "pascal"), "unknown format 'pascal'")
    assert info(filled_project) == FILLED


def test_help_lists_every_registered_format() -> None:
    from studio.io.formats import FORMATS
    from studio.io.formats.video_tracks import VIDEO_FORMATS

    assert tuple(FORMATS) == FORMAT_NAMES
    assert tuple(VIDEO_FORMATS) == VIDEO_FORMAT_NAMES


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "studio", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "usage: studio" in result.stdout
    rows = [line.removeprefix("import time:").split("|") for line in result.stderr.splitlines()]
    rows = [(self_us.strip(), name.strip()) for self_us, _cumulative, name in rows if self_us.strip().isdigit()]
    imported = {name for _, name in rows}
    for heavy in ("torch", "cv2", "sqlalchemy", "numpy", "PySide6", "ultralytics", "alembic"):
        assert heavy not in imported, f"`studio --help` imports {heavy}"
    assert sum(int(self_us) for self_us, _ in rows) < 500_000  # microseconds: imports take well under 0.5 s
