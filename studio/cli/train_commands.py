"""`studio train | export-model`: train a detector on the project's annotations; export a trained model.

Handlers import the training stack lazily: `studio --help` must not pay for torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.db import Project
    from studio.train.detector import TrainProgress, TrainResult

WORST_SHOWN = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a detector on the project's annotations; registers a new model")
    p.add_argument("project", type=Path)
    p.add_argument("--task", choices=("detect", "segment"), default="detect")
    p.add_argument("--model", default="yolo11n.pt", metavar="BASE",
                   help="weights to start from (yolo11n.pt) or a model .yaml from scratch (yolo11n.yaml, rtdetr-l.yaml)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=640, metavar="S", help="training image size (default 640)")
    p.add_argument("--batch", type=int, default=16, metavar="N", help="images per batch (default 16)")
    p.add_argument("--split", type=float, metavar="F",
                   help="share of media that trains, the rest validates (default: the stored split, else 0.8)")
    p.add_argument("--seed", type=int, help="seed of the split and of training (default: the stored one, else 0)")
    p.add_argument("--labels", metavar="A,B", help="train on these labels only (default: all)")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--name", help="name of the new model (default: <base>-<n>)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="data loading processes (default 2)")
    p.add_argument("--resume", metavar="NAME", help="continue the cancelled training NAME instead of starting one")
    p.add_argument("--no-validate", action="store_true", help="skip the validation run and the comparison")
    p.add_argument("--json", action="store_true", help='print {"model", "weights", "metrics"} as JSON')
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser("export-model", help="export a trained model (ONNX) and check it against PyTorch")
    p.add_argument("project", type=Path)
    p.add_argument("model", metavar="NAME", help="a model trained on the project (see `studio models PROJECT`)")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", type=Path, help="where to write the file (default: beside the weights)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_export_model)


def _print_progress(event: TrainProgress) -> None:
    if event.values is None:
        if sys.stderr.isatty():
            print(f"\repoch {event.epoch}/{event.epochs} batch {event.batch}/{event.batches}", end="",
                  file=sys.stderr, flush=True)
        return
    shown = {k.split("/")[-1]: v for k, v in event.values.items() if k.startswith(("train/", "metrics/mAP"))}
    figures = " ".join(f"{k} {v:.4g}" for k, v in shown.items())
    print(f"\repoch {event.epoch}/{event.epochs} {figures}", file=sys.stderr, flush=True)


def _print_result(project: Project, result: TrainResult) -> None:
    model = result.model
    metrics = " ".join(f"{k} {v:.4f}" for k, v in model.metrics.items() if isinstance(v, float))
    print(f"model {model.name!r} {model.status}: {project.root / (model.weights or '')}")
    print(f"  {metrics}")
    if result.validation_run is not None:
        print(f"  validation run {result.validation_run.name!r} on {len(model.split.get('val', []))} media")
    if result.comparison is None or result.previous is None:
        return
    delta = result.comparison.deltas()[result.comparison.run_names[1]]
    change = delta["map"]
    print(f"  against {result.previous.name!r}: mAP {'+' if (change or 0) >= 0 else ''}{change if change is None else f'{change:.4f}'}")
    worst = result.comparison.worst(WORST_SHOWN)
    if worst:
        print("  worst images (false positives / misses, previous -> new):")
    for row in worst:
        before, after = row.errors
        print(f"    {row.name}: {before.false_positives}/{before.misses} -> {after.false_positives}/{after.misses}")


def cmd_train(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.train.detector import TrainOptions, resume_training, train_model

    progress = None if args.json else _print_progress
    with Project.open(args.project) as project:
        if args.resume:
            result = resume_training(project, args.resume, progress=progress, validate=not args.no_validate)
        else:
            labels = tuple(n.strip() for n in args.labels.split(",") if n.strip()) if args.labels else None
            options = TrainOptions(
                task=args.task, model=args.model, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                split=args.split, seed=args.seed, labels=labels, device=args.device, name=args.name,
                workers=args.workers,
            )
            result = train_model(project, options, progress=progress, validate=not args.no_validate)
        if args.json:
            json.dump(result.to_json(project), sys.stdout)
            sys.stdout.write("\n")
        else:
            _print_result(project, result)
    return 0 if result.model.status == "complete" else 1


def cmd_export_model(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.train.export import export_onnx

    with Project.open(args.project) as project:
        report = export_onnx(project, args.model, out=args.out)
    if args.json:
        json.dump(report.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{report.path} ({report.size_bytes / 1e6:.1f} MB)")
        print(f"parity on {report.images} validation images: max |box diff| {report.max_box_diff:.2e} px, "
              f"max |score diff| {report.max_score_diff:.2e} ({'ok' if report.ok else 'ABOVE ' + str(report.tolerance)})")
    return 0 if report.ok else 1
