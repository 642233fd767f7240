"""`studio demo`: creates the demo project, reopens it untouched, renders a screenshot."""

from __future__ import annotations

from PIL import Image

from studio.app.main import main
from studio.db import Project

pytest_plugins = ("gui_helpers",)  # isolated settings


def test_demo_no_gui_creates_the_project_and_keeps_edits_on_rerun(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", str(target), "--no-gui"]) == 0
    with Project.open(target) as project:
        counts = project.counts()
        kinds = {media.kind for media in project.list_media()}
        assert counts["media"] >= 5 and counts["annotations"] > 0 and kinds == {"image", "video"}
        first = project.annotations()[0]
        project.delete_annotations([first.id])
    assert "demo project" in capsys.readouterr().out

    assert main(["demo", str(target), "--no-gui"]) == 0  # reopened as it is, not refilled
    with Project.open(target) as project:
        assert project.counts()["annotations"] == counts["annotations"] - 1


def test_demo_screenshot_writes_a_png_of_the_window(tmp_path, qapp):
    shot = tmp_path / "shot.png"
    assert main(["demo", str(tmp_path / "demo"), "--screenshot", str(shot)]) == 0
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.width >= 800 and image.height >= 500
        colours = image.convert("RGB").resize((64, 64)).getcolors(64 * 64)
        assert colours is not None and len(colours) > 50  # a photograph is on it, not a blank window


def test_gui_on_a_missing_project_fails_with_one_line(tmp_path, capsys):
    assert main(["gui", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("studio: error:") and "not a Studio project" in err and "\n" not in err


def test_studio_alone_opens_the_last_project_else_the_demo(tmp_path, monkeypatch):
    from studio.app import gui_commands
    from studio.session import app_settings

    opened: list = []

    def fake_gui(project, _screenshot):  # record which project the window would show
        opened.append(project.root)
        project.close()
        return 0

    monkeypatch.setattr(gui_commands, "_run_gui", fake_gui)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    assert main([]) == 0
    assert opened[-1] == (tmp_path / "data" / "demo").resolve()

    Project.create(tmp_path / "mine").close()
    app_settings.update(last_project=str(tmp_path / "mine"))
    assert main([]) == 0
    assert opened[-1] == (tmp_path / "mine").resolve()
