"""`studio models | predict | accept`: list model plugins, run a detector over a project, accept predictions.

Handlers import the model stack lazily: `studio --help` must not pay for torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _names(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list model plugins (and a project's trained models), whether they are ready")
    p.add_argument("project", type=Path, nargs="?", help="also list the models trained on this project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = subparsers.add_parser("predict", help="run a detector over a project's media; stores a new model run")
    p.add_argument("project", type=Path)
    p.add_argument("--model", required=True, metavar="ID",
                   help="plugin id, or the name of a model trained on the project (see `studio models PROJECT`)")
    p.add_argument("--weights", metavar="PATH|NAME", help="a local weights file, an official name or a model .yaml")
    p.add_argument("--run", metavar="NAME", help="name of the new run (default: <model>-<n>)")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--conf", type=float, default=0.25, help="minimum confidence (default 0.25)")
    p.add_argument("--iou", type=float, default=0.7, help="IoU of non-maximum suppression (default 0.7)")
    p.add_argument("--classes", metavar="A,B", help="only these classes; the text prompt of open-vocabulary models")
    p.add_argument("--media", type=int, nargs="+", metavar="ID", help="only these media ids (default: all)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="videos: every N-th frame (default 1)")
    p.add_argument("--frames", metavar="A:B", help="videos: frames A up to (not including) B")
    p.add_argument("--batch", type=int, default=8, metavar="N", help="images per model call (default 8)")
    p.set_defaults(handler=cmd_predict)

    p = subparsers.add_parser("accept", help="copy a run's predictions into the human annotations")
    p.add_argument("project", type=Path)
    p.add_argument("--run", required=True, metavar="NAME")
    p.add_argument("--min-score", type=float, metavar="S", help="only predictions scoring at least S")
    p.add_argument("--classes", metavar="A,B", help="only these classes")
    p.set_defaults(handler=cmd_accept)


def cmd_models(args: argparse.Namespace) -> int:
    from studio.models.registry import all_plugins, broken_plugins, trained_model_status, weights_status

    statuses = [weights_status(spec) for spec in all_plugins()]
    if args.project is not None:
        from studio.db import Project

        with Project.open(args.project) as project:
            statuses += [trained_model_status(m, project.root / (m.weights or m.name)) for m in project.trained_models()]
    broken = broken_plugins()
    if args.json:
        json.dump({"plugins": statuses, "broken": broken}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for s in statuses:
        ready = "ready" if s["ready"] else "needs weights"
        print(f"{s['id']:18} {s['task']:8} {s['family']:17} {ready:14} {s['title']}")
    for name, error in broken.items():
        print(f"{name:18} BROKEN   {error}", file=sys.stderr)
    return 0


def _print_progress(done: int, total: int, eta: float | None) -> None:
    from studio.jobs.runner import format_eta

    end = "\n" if done >= total else ""
    print(f"\r{done}/{total} images, {format_eta(eta)} left", end=end, file=sys.stderr, flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.jobs.predict import parse_frame_range, run_detection

    frame_range = parse_frame_range(args.frames) if args.frames else None
    with Project.open(args.project) as project:
        run = run_detection(
            project, args.model, weights=args.weights, device=args.device, media_ids=args.media,
            every_n=args.every, frame_range=frame_range, conf=args.conf, iou=args.iou,
            classes=_names(args.classes), run_name=args.run, batch_size=args.batch,
            progress=_print_progress if sys.stderr.isatty() else None,
        )
    stats: dict[str, Any] = run.stats
    per_image = stats.get("seconds_per_image")
    speed = f", {per_image:.3f} s/image" if per_image else ""
    print(
        f"run {run.name!r} (id {run.id}) {run.status}: {stats.get('predictions', 0)} predictions on "
        f"{stats.get('items', 0)} images{speed} on {run.device}"
    )
    return 0 if run.status == "complete" else 1


def cmd_accept(args: argparse.Namespace) -> int:
    from studio.core.errors import NotFoundError
    from studio.db import Project
    from studio.jobs.accept import accept_predictions

    with Project.open(args.project) as project:
        run = project.find_run(args.run)
        if run.params.get("kind") == "ask":  # a batch of answers: they become captions, tags or box changes
            from studio.jobs.ask import accept_answers

            changed = accept_answers(project, run.id).changed
            print(f"accepted the answers of run {run.name!r}: {changed} {run.params['target']} changes")
            return 0
        label_ids = None
        if args.classes:
            labels = {label.name: label.id for label in project.labels()}
            unknown = [name for name in _names(args.classes) or [] if name not in labels]
            if unknown:
                raise NotFoundError(f"no label {', '.join(unknown)} (labels: {', '.join(labels) or 'none'})")
            label_ids = [labels[name] for name in _names(args.classes) or []]
        accepted = accept_predictions(project, run.id, min_score=args.min_score, label_ids=label_ids)
    print(f"accepted {len(accepted)} predictions of run {run.name!r} into the human annotations")
    return 0
