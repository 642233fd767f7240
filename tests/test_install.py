"""Studio as installed, not as checked out: the wheel, the plugin package's name, the CLI's manners.

The wheel test builds a real wheel, installs it (not editable) into a fresh environment and runs the demo
from another folder, so that a file read from the checkout instead of the package fails here first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from studio.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ultralytics", "segment_anything", "open_clip", "transformers")


def _run_python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd,
                         env=env, check=True)
    return out.stdout.strip()


def test_built_in_plugins_have_a_unique_import_name():
    values = [point.value for point in entry_points(group="studio.plugins")]
    assert values, "no built-in plugin is registered"
    assert all(value.startswith("studio_plugins.") and value.endswith(":SPECS") for value in values), values


def test_a_plugins_folder_on_the_path_does_not_shadow_the_built_in_plugins(tmp_path):
    shadow = tmp_path / "plugins"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the wrong plugins package was imported')\n")
    (shadow / "opencv_haar.py").write_text("raise ImportError('the wrong plugins package was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = ("from studio.models.registry import all_plugins, broken_plugins; "
            "print(sorted(s.id for s in all_plugins()), broken_plugins())")
    out = _run_python(code, cwd=tmp_path, env=env)
    assert "'opencv-haar'" in out and "'grabcut'" in out and out.endswith("{}"), out


def test_listing_models_imports_no_model_library():
    code = ("import sys, io, contextlib; from studio.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['models', '--json'])\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert _run_python(code) == "[]"


def test_cpu_only_plugins_detect_without_torch(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.full((64, 64, 3), 128, np.uint8))
    code = ("import sys; from studio.cli.main import main\n"
            f"assert main(['new', {str(tmp_path / 'p')!r}]) == 0\n"
            f"assert main(['add', {str(tmp_path / 'p')!r}, {str(tmp_path / 'a.png')!r}]) == 0\n"
            f"assert main(['predict', {str(tmp_path / 'p')!r}, '--model', 'opencv-haar']) == 0\n"
            "from studio.models.registry import get_plugin\n"
            "get_plugin('grabcut').load().encode(__import__('numpy').zeros((8, 8, 3), 'uint8'))\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert _run_python(code, cwd=tmp_path).splitlines()[-1] == "[]"


def test_a_closed_pipe_ends_the_cli_quietly():
    reader = subprocess.Popen([sys.executable, "-m", "studio", "doctor"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    reader.stdout.close()  # like `studio doctor | head -0`: nobody reads what it prints
    _, err = reader.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()


def test_doctor_reports_device_folders_and_project_health(project, capsys):
    assert main(["doctor", str(project.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"]["device"] in {"cpu", "cuda", "mps"} and report["device"]["why"]
    assert report["packages"]["torch"]
    assert all(place["writable"] for place in report["folders"].values())
    assert report["project"]["integrity"] == "ok"
    assert {p["id"] for p in report["plugins"]} >= {"opencv-haar", "grabcut"}


def test_version_flag(capsys):
    from studio import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"studio {__version__}"


@pytest.mark.slow
def test_the_wheel_runs_the_demo_outside_the_checkout(tmp_path):
    """Build the wheel, install it alone into a new environment, run the demo from an unrelated folder."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    source.mkdir()
    for part in ("pyproject.toml", "setup.py", "README.md", "studio", "plugins", "resources"):  # a copy: the
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy  # build leaves egg-info behind
        copy(ROOT / part, source / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(source)], check=True, timeout=300, capture_output=True)
    from studio import __version__

    (wheel,) = wheels.glob(f"studio-{__version__}-*.whl")

    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = Path(_run_python("import sysconfig; print(sysconfig.get_paths()['purelib'])",
                               env={**os.environ, "PYTHONPATH": ""}).replace(sys.prefix, str(env_dir)))
    # the dependencies come from this environment's site-packages, listed in a .pth: that folder's own .pth
    # files (this checkout's editable hook among them) are not run, so only the wheel provides `studio`
    dependencies = [p for p in sys.path if p.endswith("site-packages")]
    purelib.mkdir(parents=True, exist_ok=True)
    (purelib / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, timeout=300, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"QT_QPA_PLATFORM": "offscreen"}
    where = subprocess.run([python, "-c", "import studio, studio_plugins, studio_resources; "
                            "print(studio.__file__, studio_plugins.__file__, studio_resources.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where and where.count(str(env_dir)) == 3, where

    studio = env_dir / "bin" / "studio"
    demo = subprocess.run([studio, "demo", str(tmp_path / "demo"), "--no-gui"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    info = subprocess.run([studio, "info", str(tmp_path / "demo"), "--json"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(info.stdout)["media"] == 7
    shot = tmp_path / "shot.png"
    screenshot = subprocess.run([studio, "demo", str(tmp_path / "demo"), "--screenshot", str(shot)], cwd=elsewhere,
                                env=env, capture_output=True, text=True, timeout=180)
    assert screenshot.returncode == 0, screenshot.stderr
    assert shot.stat().st_size > 10_000
