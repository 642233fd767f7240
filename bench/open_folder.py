"""Time to first paint of a big image folder: Studio's media browser against labelme.

Generates N small JPEGs (2,000 by default, 10,000 with --full), then, each in a fresh process with
Qt offscreen and imports done before the clock starts:

- studio new: create a project, add the folder (studio.io.media.add_paths, the call `studio add` and
  the window's "Add folder" make), build a MediaBrowser and show it until its list paints all N rows;
- studio reopen: open that project again and show the browser until it paints (the daily case);
- studio window: the main window's File > Add folder on a new project (add_paths on a worker thread,
  storing and listing batch by batch; the first 100 files show at once): what a person sees;
- labelme: MainWindow(file_or_dir=folder) and show it until its file list paints with N items.

labelme needs its own environment (it uses PyQt5):
    python3 -m venv /tmp/labelme-venv && /tmp/labelme-venv/bin/pip install labelme
and is found through --labelme-python (default: /tmp/labelme-venv/bin/python when it exists).
The last line is ratio = labelme time / studio window time to first paint (higher is better).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_LABELME_PYTHON = Path("/tmp/labelme-venv/bin/python")


def make_folder(folder: Path, count: int) -> None:
    """`count` 64x48 JPEGs with distinct colours, in sub-folders of 1,000 as cameras write them."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"dcim{i // 1000:03d}" / f"img_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.empty((48, 64, 3), np.uint8)
        pixels[:] = rng.integers(0, 255, 3, dtype=np.uint8)
        cv2.imwrite(str(path), pixels)


class _PaintWatch:
    """Records when a widget paints while `ready()` holds (an event filter; Qt binding passed in)."""

    def __init__(self, qt_core: object, widget: object, ready: object) -> None:
        self.painted_at: float | None = None
        watch = self

        class Filter(qt_core.QObject):  # type: ignore[name-defined,misc]
            def eventFilter(self, _obj: object, event: object) -> bool:
                if event.type() == qt_core.QEvent.Paint and watch.painted_at is None and ready():
                    watch.painted_at = time.perf_counter()
                return False

        self._filter = Filter()
        widget.installEventFilter(self._filter)


def _wait_paint(app: object, watch: _PaintWatch, timeout: float = 120.0) -> float:
    deadline = time.perf_counter() + timeout
    while watch.painted_at is None:
        if time.perf_counter() > deadline:
            raise TimeoutError("the list never painted")
        app.processEvents()
    return watch.painted_at


def studio_child(folder: Path, project_dir: Path, *, reopen: bool) -> dict[str, float]:
    from PySide6 import QtCore
    from PySide6.QtWidgets import QApplication

    from studio.db import Project
    from studio.io.media import add_paths
    from studio.io.thumbnail_cache import ThumbnailCache
    from studio.ui.media_browser import MediaBrowser
    from studio.ui.thumbnails import ThumbnailLoader

    app = QApplication([])
    cache = ThumbnailCache(project_dir.parent / "thumbnails")
    start = time.perf_counter()
    if reopen:
        project = Project.open(project_dir)
        added_at = start
    else:
        project = Project.create(project_dir)
        add_paths(project, [folder])
        added_at = time.perf_counter()
    browser = MediaBrowser(thumbnails=ThumbnailLoader(cache))
    browser.resize(420, 900)
    watch = _PaintWatch(QtCore, browser.view.viewport(), lambda: browser.model.rowCount() > 0)
    browser.set_project(project)
    browser.show()
    painted = _wait_paint(app, watch)
    rows = browser.model.rowCount()
    browser.thumbnails.wait_idle(10_000)
    project.close()
    return {"add_s": added_at - start, "first_paint_s": painted - start, "rows": rows}


def studio_window_child(folder: Path, project_dir: Path) -> dict[str, float]:
    """The window's own flow: a new project, the main window, File > Add folder (MainWindow.add_paths:
    a worker thread stores the files batch by batch and the browser lists each batch as it lands)."""
    from PySide6 import QtCore
    from PySide6.QtWidgets import QApplication

    from studio.db import Project
    from studio.ui.main_window import MainWindow

    app = QApplication([])
    start = time.perf_counter()
    project = Project.create(project_dir)
    window = MainWindow(project)
    browser = window.browser
    watch = _PaintWatch(QtCore, browser.view.viewport(), lambda: browser.model.rowCount() > 0)
    window.show()
    job = window.add_paths([folder])
    finished: list[float] = []
    job.done.connect(lambda _report: finished.append(time.perf_counter()))
    painted = _wait_paint(app, watch)
    while not finished:
        app.processEvents()
    rows = browser.model.rowCount()
    window.close()
    project.close()
    return {"first_paint_s": painted - start, "all_listed_s": finished[0] - start, "rows": rows}


def labelme_child(folder: Path) -> dict[str, float]:
    from labelme.app import MainWindow
    from PyQt5 import QtCore, QtWidgets

    app = QtWidgets.QApplication([])
    start = time.perf_counter()
    window = MainWindow(file_or_dir=str(folder))
    file_list = window._docks.file_list
    watch = _PaintWatch(QtCore, file_list.viewport(), lambda: file_list.count() > 0)
    window.show()
    painted = _wait_paint(app, watch)
    return {"first_paint_s": painted - start, "rows": file_list.count()}


def run_child(python: Path | str, *args: str, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run([str(python), __file__, "--child", *args], capture_output=True, text=True, env=env,
                            timeout=600, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="10,000 images instead of 2,000")
    parser.add_argument("--count", type=int, help="number of images (overrides --full)")
    parser.add_argument("--labelme-python", type=Path,
                        default=DEFAULT_LABELME_PYTHON if DEFAULT_LABELME_PYTHON.exists() else None,
                        help="python of an environment with labelme installed")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        if kind == "labelme":
            figures = labelme_child(Path(paths[0]))
        elif kind == "studio-window":
            figures = studio_window_child(Path(paths[0]), Path(paths[1]))
        else:
            figures = studio_child(Path(paths[0]), Path(paths[1]), reopen=kind == "studio-reopen")
        print(json.dumps(figures))
        return

    count = args.count or (10_000 if args.full else 2_000)
    with tempfile.TemporaryDirectory(prefix="studio-open-folder-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(root / "home"),
               "STUDIO_CACHE_DIR": str(root / "cache"), "STUDIO_DATA_DIR": str(root / "data")}
        (root / "home").mkdir()
        folder = root / "images"
        generated = time.perf_counter()
        make_folder(folder, count)
        print(f"generated {count:,} JPEGs of 64x48 in {time.perf_counter() - generated:.1f} s")

        new = run_child(sys.executable, "studio-new", str(folder), str(root / "project"), env=env)
        reopen = run_child(sys.executable, "studio-reopen", str(folder), str(root / "project"), env=env)
        assert new["rows"] == reopen["rows"] == count, (new, reopen)
        print(f"studio add then paint (the CLI's add):  {new['first_paint_s']:.3f} s "
              f"(add_paths {new['add_s']:.3f} s, browser {new['first_paint_s'] - new['add_s']:.3f} s)")
        print(f"studio reopen project + first paint:    {reopen['first_paint_s']:.3f} s")
        window = run_child(sys.executable, "studio-window", str(folder), str(root / "window"), env=env)
        assert window["rows"] == count, window
        print(f"studio window, Add folder: first paint  {window['first_paint_s']:.3f} s "
              f"(all {count:,} listed at {window['all_listed_s']:.3f} s)")

        if args.labelme_python is None or not Path(args.labelme_python).exists():
            print("labelme comparison skipped: no labelme environment; create one with\n"
                  "  python3 -m venv /tmp/labelme-venv && /tmp/labelme-venv/bin/pip install labelme\n"
                  "and pass --labelme-python /tmp/labelme-venv/bin/python")
            print("ratio=nan")
            return
        labelme = run_child(args.labelme_python, "labelme", str(folder), env=env)
        assert labelme["rows"] == count, labelme
        print(f"labelme open folder + first paint:      {labelme['first_paint_s']:.3f} s")
        print(f"reopen ratio (labelme / studio reopen): {labelme['first_paint_s'] / reopen['first_paint_s']:.1f}")
        print(f"ratio={labelme['first_paint_s'] / window['first_paint_s']:.2f}")


if __name__ == "__main__":
    main()
