"""`studio` (no command), `studio demo` and `studio gui`: open the labelling window.

Part of the application layer (above studio.ui and studio.cli): the GUI is imported inside the
handlers, so `studio --help` stays fast and never loads Qt.
"""

from __future__ import annotations

import argparse
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
    from studio.ui.app import run

    code = int(run(project, screenshot=screenshot))
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
    from studio.session.app_settings import last_project

    last = last_project()
    project = Project.open(last) if last is not None else create_demo()
    return _run_gui(project, None)
