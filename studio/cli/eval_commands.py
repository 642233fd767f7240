"""`studio eval | compare`: COCO metrics of a run, and several runs side by side with a shareable report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.eval.compare import Comparison
    from studio.eval.evaluate import EvalResult


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="COCO metrics of a run against ground truth")
    p.add_argument("project", type=Path)
    p.add_argument("--pred", required=True, metavar="RUN", help="the run whose predictions are evaluated")
    _common_options(p)
    p.set_defaults(handler=cmd_eval)

    p = subparsers.add_parser("compare", help="compare runs: metrics, deltas, the images where they disagree")
    p.add_argument("project", type=Path)
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more runs")
    _common_options(p)
    p.add_argument("--report", type=Path, metavar="DIR", help="write a Markdown report with plots (PNG) to DIR")
    p.add_argument("--worst", type=int, default=20, metavar="N", help="how many disputed images to list")
    p.set_defaults(handler=cmd_compare)


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", default="human", metavar="human|RUN", help="ground truth: human annotations or a run")
    p.add_argument("--iou-type", default="bbox", choices=("bbox", "segm"), help="match boxes or masks")
    p.add_argument("--conf", type=float, default=0.25, help="score threshold for error counts and confusion")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _fmt(value: float | None) -> str:
    return "  -  " if value is None or value < 0 else f"{value:.3f}"


def _print_result(result: EvalResult) -> None:
    m = result.metrics
    print(f"{result.pred_name} vs {result.gt_name} ({result.data.iou_type}, {len(result.data.images)} images)")
    print(f"  mAP@[.5:.95] {_fmt(m['map'])}   AP50 {_fmt(m['map50'])}   AP75 {_fmt(m['map75'])}")
    print(f"  AP small/medium/large {_fmt(m['map_small'])} / {_fmt(m['map_medium'])} / {_fmt(m['map_large'])}")
    print(f"  AR@1/10/100 {_fmt(m['mar_1'])} / {_fmt(m['mar_10'])} / {_fmt(m['mar_100'])}")
    width = max(len(name) for name in result.per_class)
    print(f"  {'class':<{width}}     AP   AP50     gt   pred")
    for name, c in result.per_class.items():
        print(f"  {name:<{width}}  {_fmt(c['ap'])}  {_fmt(c['ap50'])}  {c['gt']:5d}  {c['pred']:5d}")


def cmd_eval(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.eval import evaluate, resolve_source

    with Project.open(args.project) as project:
        result = evaluate(
            project, pred=resolve_source(project, args.pred), gt=resolve_source(project, args.gt),
            iou_type=args.iou_type, conf=args.conf,
        )
        if args.json:
            _print_json(result.to_json())
        else:
            _print_result(result)
    return 0


def _print_comparison(comparison: Comparison, worst: int) -> None:
    from studio.eval.compare import HEADLINE

    names = comparison.run_names
    width = max(12, *(len(n) for n in names))
    print(f"{'':<10}" + "".join(f"{n:>{width + 2}}" for n in names))
    for metric in HEADLINE:
        print(f"{metric:<10}" + "".join(f"{_fmt(r.metrics[metric]):>{width + 2}}" for r in comparison.results))
    speeds = [r.speed_ms_per_image for r in comparison.results]
    print(f"{'ms/image':<10}" + "".join(f"{'-' if s is None else f'{s:.1f}':>{width + 2}}" for s in speeds))
    for name, deltas in comparison.deltas().items():
        shown = [f"{m} {deltas[m]:+.3f}" for m in ("map", "map50") if deltas[m] is not None]
        print(f"{name} - {names[0]}: " + (", ".join(shown) or "no metric defined"))
    rows = comparison.worst(worst)
    if rows:
        print("images where the runs disagree most:")
    for row in rows:
        print(f"  {row.name} (media {row.media_id}): disagreement {row.disagreement:.2f}, false positives "
              f"{row.false_positives}, misses {row.misses}, class conflicts {row.class_conflicts}")


def cmd_compare(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.eval import resolve_source
    from studio.eval.compare import compare_runs

    with Project.open(args.project) as project:
        comparison = compare_runs(
            project, [resolve_source(project, run) for run in args.runs], gt=resolve_source(project, args.gt),
            iou_type=args.iou_type, conf=args.conf,
        )
        report = None
        if args.report is not None:
            from studio.eval.report import write_report

            report = write_report(comparison, args.report)
    if args.json:
        _print_json(comparison.to_json(worst=args.worst))
    else:
        _print_comparison(comparison, args.worst)
    if report is not None:
        print(f"report written to {report}", file=sys.stderr if args.json else sys.stdout)
    return 0
