"""`studio` (no command), `studio demo` and `studio gui`: open the labelling window.

The CLI layer may not import Qt (import-linter contract), and `studio --help` must stay fast, so the
GUI package is loaded by name with importlib only when a window is really wanted.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="create (or reopen) the demo project from bundled samples and open it")
    p.add_argument("directory", type=Path, nargs="?", metavar="DIR", help="where to put it (default: user data dir)")
    p.add_argument("--no-gui", action="store_true", help="only create the project")
    p.add_argument("--screenshot", type=Path, metavar="FILE", help="render the loaded window to a PNG and exit")
    p.set_defaults(handler=cmd_demo)

    p = subparsers.add_parser("gui", help="open the labelling window on a project")
    p.add_argument("project", type=Path)
    p.add_argument("--screenshot", type=Path, metavar="FILE", help="render the loaded window to a PNG and exit")
    p.set_defaults(handler=cmd_gui)


def _run_gui(project: object, screenshot: Path | None) -> int:
    app = importlib.import_module("studio.ui.app")  # by name: see the module docstring
    code = int(app.run(project, screenshot=screenshot))
    if screenshot is not None:
        print(f"wrote {screenshot}")
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    from studio.demo import create_demo

    project = create_demo(args.directory)
    if args.no_gui:
        counts = project.counts()
        project.close()
        print(f"demo project {project.root}: {counts['media']} media, {counts['annotations']} annotations")
        return 0
    return _run_gui(project, args.screenshot)


def cmd_gui(args: argparse.Namespace) -> int:
    from studio.db import Project

    return _run_gui(Project.open(args.project), args.screenshot)


def cmd_start(_args: argparse.Namespace) -> int:
    """`studio` alone: the last project opened, else the demo project."""
    from studio.db import Project
    from studio.demo import create_demo

    settings = importlib.import_module("studio.session.app_settings")  # Qt-free, but in the GUI package
    last = settings.last_project()
    project = Project.open(last) if last is not None else create_demo()
    return _run_gui(project, None)
