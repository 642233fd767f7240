"""Hostile input that the fuzz corpus (tests/fuzz) cannot express as one command line: file names that
are not UTF-8, folders that cannot be listed, paths longer than the system allows, library warnings,
and the legitimate layouts the safety checks must keep working."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pytest
from conftest import write_image

from studio.cli.main import main
from studio.core.errors import FormatError, InvalidShapeError, MediaError
from studio.core.shapes import Mask
from studio.db.project import Project
from studio.io import safe_files
from studio.io.formats.transfer import export_dataset, import_dataset
from studio.io.media import add_paths

BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
"""


def test_billion_laughs_yaml_fails_in_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text(BILLION_LAUGHS + "names: [x]\ntrain: images\n")
    assert path.stat().st_size < 400
    start = time.perf_counter()
    with pytest.raises(FormatError, match="aliases"):
        safe_files.load_yaml(path)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("counts", ["!!!!", "o", "0", "Z1Z1Z1", "ooooooooo0"])
def test_mask_constructor_refuses_counts_pycocotools_would_misread(counts: str) -> None:
    with pytest.raises(InvalidShapeError, match="RLE"):
        Mask((12, 16), counts)


def test_non_utf8_file_name_is_added_and_exported_losslessly(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    raw_name = b"caf\xe9-\xff.png"  # Latin-1 bytes: not UTF-8
    write_image(folder / "plain.png")
    os.rename(folder / "plain.png", os.path.join(os.fsencode(folder), raw_name))
    report = add_paths(project, [folder])
    assert len(report.added) == 1
    media = report.added[0]
    assert os.fsencode(project.resolve(media)) == os.path.join(os.fsencode(folder), raw_name)
    with Project.open(project.root) as reopened:  # the stored path survives the database
        assert reopened.resolve(reopened.list_media()[0]) == project.resolve(media)
    exported = export_dataset(project, "coco", tmp_path / "out")
    assert exported.images == 1 and any(path.name.endswith(".png") for path in exported.files[1:])


def test_unreadable_sub_folder_is_reported_not_skipped(project: Project, image_folder: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith(os.sep + "b"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(MediaError, match="b: folder not read \\(Permission denied\\)"):
        add_paths(project, [image_folder])
    assert project.counts()["media"] == 0
    report = add_paths(project, [image_folder], skip_bad=True)
    assert len(report.added) == 3 and any("folder not read" in line for line in report.failed)


@pytest.mark.parametrize("fmt", ["labelme", "voc", "yolo"])
def test_importer_reports_a_sub_folder_it_cannot_list(project: Project, tmp_path: Path, fmt: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "dataset"
    (root / "private").mkdir(parents=True)
    (root / "classes.txt").write_text("cat\n")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith(os.sep + "private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(FormatError, match="private: folder not read \\(Permission denied\\)"):
        import_dataset(project, fmt, root)


def test_over_long_path_is_reported(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "deep"
    base.mkdir()
    descriptor = os.open(base, os.O_RDONLY)
    for _ in range(20):  # 20 x 250 characters: past PATH_MAX (4096), built relative to each folder
        os.mkdir("d" * 250, dir_fd=descriptor)
        inner = os.open("d" * 250, os.O_RDONLY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = inner
    os.close(descriptor)
    code = main(["add", str(project.root), str(base)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "path too long" in err[0]


def test_library_warning_is_one_line(project: Project, image_folder: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.io.media as media

    real_probe = media.probe

    def noisy_probe(path: Path) -> object:
        warnings.warn("a library complains\nover several lines", UserWarning, stacklevel=1)
        return real_probe(path)

    monkeypatch.setattr(media, "probe", noisy_probe)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["add", str(project.root), str(image_folder / "a" / "img0.jpg")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["studio: warning: a library complains\\nover several lines"]


def test_roboflow_dotdot_split_inside_the_dataset_still_imports(project: Project, tmp_path: Path) -> None:
    root = tmp_path / "roboflow"
    write_image(root / "train" / "images" / "a.jpg")
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../train/images\nnc: 1\nnames: ['cat']\n")
    report = import_dataset(project, "yolo", root / "data.yaml")
    assert (report.images, report.annotations) == (1, 1)


def test_symlink_inside_the_dataset_to_a_file_outside_is_not_read(project: Project, tmp_path: Path) -> None:
    write_image(tmp_path / "private" / "secret.png")
    root = tmp_path / "dataset"
    root.mkdir()
    os.symlink(tmp_path / "private" / "secret.png", root / "a.png")
    document = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
                "categories": [{"id": 1, "name": "cat"}], "annotations": []}
    (root / "annotations.json").write_text(json.dumps(document))
    with pytest.raises(FormatError, match="not a file inside the dataset folder"):
        import_dataset(project, "coco", root / "annotations.json")
    assert project.counts()["media"] == 0
