"""`studio new | add | import | export | info`: create projects, add media, move datasets in and out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMAT_NAMES = ("coco", "yolo", "voc", "labelme", "cvat")
"""For --help only (the format registry imports OpenCV); a test keeps it equal to studio.io.formats.FORMATS."""
FORMAT_HELP = f"dataset format: {', '.join(FORMAT_NAMES)}"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("new", help="create a project directory (PROJECT/studio.db)")
    p.add_argument("project", type=Path)
    p.set_defaults(handler=cmd_new)

    p = subparsers.add_parser("add", help="add image files, folders (recursive) and video files")
    p.add_argument("project", type=Path)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files and report them")
    p.set_defaults(handler=cmd_add)

    p = subparsers.add_parser("import", help="import annotations in a dataset format")
    p.add_argument("project", type=Path)
    p.add_argument("path", type=Path, metavar="PATH")
    p.add_argument("--format", "-f", required=True, metavar="FORMAT", help=FORMAT_HELP)
    p.add_argument("--run", metavar="NAME", help="store the annotations (with scores) as a model run")
    p.add_argument("--skip-bad", action="store_true", help="skip bad items and report them")
    p.add_argument("--gt-file", type=Path, metavar="GT.json",
                   help="the ground-truth file whose image ids a COCO results file uses (when several fit)")
    p.set_defaults(handler=cmd_import)

    p = subparsers.add_parser("export", help="export annotations as a dataset")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, metavar="OUT")
    p.add_argument("--format", "-f", required=True, metavar="FORMAT", help=FORMAT_HELP)
    p.add_argument("--source", default="human", metavar="human|RUN", help="human annotations or a run's predictions")
    p.add_argument("--labels", metavar="A,B", help="only these labels (comma-separated)")
    p.add_argument("--no-images", action="store_true", help="write annotations only, do not link/copy images")
    p.set_defaults(handler=cmd_export)

    p = subparsers.add_parser("info", help="counts of media, annotations, labels, runs, predictions")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_info)


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_new(args: argparse.Namespace) -> int:
    from studio.db import Project

    Project.create(args.project).close()
    print(f"created project {args.project}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.io.media import add_paths

    with Project.open(args.project) as project:
        report = add_paths(project, args.paths, skip_bad=args.skip_bad)
    for problem in report.failed:
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"added {len(report.added)} media ({report.already_present} already in the project)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.io import formats
    from studio.io.formats.transfer import import_dataset

    formats.reader(args.format)  # an unknown format is refused in one line before the project is opened
    with Project.open(args.project) as project:
        report = import_dataset(
            project, args.format, args.path, run_name=args.run, skip_bad=args.skip_bad, gt_file=args.gt_file
        )
    for problem in report.skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    target = f"run {report.run!r}" if report.run else "human annotations"
    print(
        f"imported {report.annotations} annotations on {report.images} images as {target} "
        f"({report.images_added} images added, {len(report.labels_created)} new labels)"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.io import formats
    from studio.io.formats.transfer import export_dataset

    formats.writer(args.format)  # an unknown format is refused in one line before the project is opened
    labels = [name.strip() for name in args.labels.split(",")] if args.labels else None
    with Project.open(args.project) as project:
        report = export_dataset(
            project, args.format, args.out, source=args.source, labels=labels, copy_images=not args.no_images
        )
    print(f"exported {report.annotations} annotations on {report.images} images to {args.out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from studio.db import Project

    with Project.open(args.project) as project:
        counts = project.counts()
    if args.json:
        _print_json(counts)
    else:
        for key, value in counts.items():
            print(f"{key:12} {value}")
    return 0
