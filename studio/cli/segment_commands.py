"""`studio segment` (one image from clicks and/or a box, or every box at once) and `studio noc` (the meter)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.core.shapes import Box
    from studio.core.types import Media
    from studio.db import Project


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment",
        help="segment an object from clicks and/or a box, or turn every box into a mask (--all-boxes)",
        description="One image: `studio segment PROJECT MEDIA --point X,Y[,1|0] ... [--box X1,Y1,X2,Y2] --model ID`. "
        "Batch: `studio segment PROJECT --all-boxes [--source human|RUN] --model ID` stores the masks as a new run.",
    )
    p.add_argument("project", type=Path)
    p.add_argument("media", nargs="?", help="media id, or its path (as stored or on disk)")
    p.add_argument("--model", "-m", required=True, metavar="ID", help="a segment plugin, e.g. grabcut, sam-vit-b")
    p.add_argument("--weights", metavar="PATH_OR_NAME", help="checkpoint file or official weights name")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,1|0]", help="click; 1 positive (default), 0 negative")
    p.add_argument("--box", metavar="X1,Y1,X2,Y2", help="box prompt in pixels")
    p.add_argument("--frame", type=int, default=0, help="video frame (0 for images)")
    p.add_argument("--save", action="store_true", help="store the best mask as a human annotation")
    p.add_argument("--label", default="object", metavar="NAME", help="label of the saved annotation (default: object)")
    p.add_argument("--polygon", type=float, metavar="TOLERANCE", help="save as a polygon simplified by TOLERANCE px")
    p.add_argument("--out", type=Path, metavar="PNG", help="also write the best mask as a black/white image")
    p.add_argument("--all-boxes", action="store_true", help="segment every box of --source into a new run")
    p.add_argument("--source", default="human", metavar="human|RUN", help="boxes to segment with --all-boxes")
    p.add_argument("--run", metavar="NAME", help="name of the run --all-boxes creates")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_segment)

    p = subparsers.add_parser(
        "noc", help="clicks per object: replay simulated clicks against the human masks (NoC@85/90, mIoU@1..5)"
    )
    p.add_argument("project", type=Path)
    p.add_argument("--model", "-m", action="append", required=True, metavar="ID", help="repeat to compare segmenters")
    p.add_argument("--weights", metavar="PATH_OR_NAME", help="checkpoint (applies to every --model)")
    p.add_argument("--device", metavar="D")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--limit", type=int, metavar="N", help="measure only the first N objects")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_noc)


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def comma_numbers(text: str, what: str, counts: tuple[int, ...]) -> list[float]:
    from studio.core.errors import StudioError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        raise StudioError(f"{what} must be {' or '.join(str(c) for c in counts)} comma-separated numbers, got {text!r}")
    return values


def _parse_point(text: str) -> tuple[tuple[float, float], int]:
    from studio.core.errors import StudioError

    values = comma_numbers(text, "--point", (2, 3))
    label = int(values[2]) if len(values) == 3 else 1
    if len(values) == 3 and values[2] not in (0.0, 1.0):
        raise StudioError(f"the third value of --point must be 1 (positive) or 0 (negative), got {text!r}")
    return (values[0], values[1]), label


def _parse_box(text: str) -> Box:
    from studio.core.shapes import Box

    return Box(*comma_numbers(text, "--box", (4,)))


def find_media_arg(project: Project, ref: str) -> Media:
    from studio.core.errors import NotFoundError

    if ref.isdigit():
        return project.get_media(int(ref))
    media = project.find_media(ref)
    if media is not None:
        return media
    same_name = [m for m in project.list_media(name_contains=Path(ref).name) if m.name == Path(ref).name]
    if len(same_name) == 1:
        return same_name[0]
    hint = "several media have that name; give its id or full path" if same_name else "give its id or its path"
    raise NotFoundError(f"no media {ref!r} in the project ({hint})")


def _segmenter(args: argparse.Namespace, model_id: str) -> Any:
    from studio.core.errors import StudioError
    from studio.models.registry import get_plugin, load_model

    spec = get_plugin(model_id)
    if spec.task != "segment":
        raise StudioError(f"{model_id} is a {spec.task} model, not a segmenter")
    if spec.devices == ("cpu",) and not spec.needs_weights and args.device is None and args.weights is None:
        return spec.load(weights=None, device="cpu")  # GrabCut: skip load_model's device probe (imports torch)
    return load_model(model_id, weights=args.weights, device=args.device)


def cmd_segment(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError

    if args.all_boxes:
        if args.media or args.point or args.box:
            raise StudioError("--all-boxes segments every box: give no MEDIA, --point or --box with it")
        return _segment_all_boxes(args)
    if not args.media:
        raise StudioError("give the MEDIA to segment (or --all-boxes)")
    if not args.point and not args.box:
        raise StudioError("give at least one --point or a --box")
    return _segment_one(args)


def _segment_one(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.core.geometry import encode_mask, mask_to_polygon
    from studio.core.types import Annotation
    from studio.db import Project
    from studio.io.media import read_media
    from studio.jobs.segment import segment_image
    from studio.models.embedding_cache import EmbeddingCache

    clicks = [_parse_point(text) for text in args.point]
    box = _parse_box(args.box) if args.box else None
    with Project.open(args.project) as project:
        media = find_media_arg(project, args.media)
        image = read_media(project, media, args.frame)
        segmenter = _segmenter(args, args.model)
        candidates = segment_image(
            segmenter, image, model_id=args.model, points=[p for p, _ in clicks], point_labels=[lab for _, lab in clicks],
            box=box, cache=EmbeddingCache(),
        )
        best = next((c for c in candidates if c.mask.any()), None)
        if best is None:
            raise StudioError("the segmenter found no object for these prompts; try another click or a box")
        saved = None
        if args.save:
            shape = encode_mask(best.mask) if args.polygon is None else mask_to_polygon(best.mask, tolerance=args.polygon)
            if shape is None:
                raise StudioError("the mask is too small to outline as a polygon; save it as a mask (no --polygon)")
            label = project.ensure_label(args.label)
            saved = project.add_annotation(
                Annotation(media.id, label.id, shape, frame=args.frame, created_by=f"segment:{args.model}")
            )
    if args.out is not None:
        import cv2

        if not cv2.imwrite(str(args.out), best.mask.astype("uint8") * 255):
            raise StudioError(f"cannot write {args.out} (folder missing, or not an image file name)")
    rows = [_describe(c.mask, c.score) for c in candidates]
    if args.json:
        _print_json({"media": media.id, "candidates": rows, "saved_annotation": None if saved is None else saved.id})
        return 0
    for i, row in enumerate(rows):
        print(f"candidate {i}: score {row['score']:.3f}  area {row['area']} px  bbox {row['bbox']}")
    if saved is not None:
        print(f"saved annotation {saved.id} ({saved.shape.kind}, label {args.label!r}) on media {media.id}")
    return 0


def _describe(mask: Any, score: float) -> dict[str, Any]:
    from studio.core.geometry import encode_mask

    shape = encode_mask(mask)
    return {
        "score": round(float(score), 4),
        "area": int(mask.sum()),
        "bbox": [round(v, 1) for v in shape.bbox()],
        "rle": shape.rle | {"counts": shape.counts},
    }


def _segment_all_boxes(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.jobs.segment import segment_all_boxes
    from studio.models.embedding_cache import EmbeddingCache

    with Project.open(args.project) as project:
        source: Any = "human" if args.source == "human" else project.find_run(args.source).id
        segmenter = _segmenter(args, args.model)
        report = segment_all_boxes(
            project, segmenter, model_id=args.model, source=source, run_name=args.run, weights=args.weights,
            cache=EmbeddingCache(), progress=_progress_line,
        )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        _print_json({"run": report.run.name, "boxes": report.boxes, "masks": report.masks})
    else:
        print(f"segmented {report.boxes} boxes into {report.masks} masks in run {report.run.name!r}")
    return 0


def _progress_line(done: int, total: int) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{done}/{total}")
        sys.stderr.flush()


def cmd_noc(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.eval.noc import format_table, measure
    from studio.models.embedding_cache import EmbeddingCache

    reports = []
    cache = EmbeddingCache()
    with Project.open(args.project) as project:
        for model_id in args.model:
            segmenter = _segmenter(args, model_id)
            reports.append(
                measure(
                    project, segmenter, model_id=model_id, max_clicks=args.max_clicks, limit=args.limit, cache=cache,
                    progress=_progress_line,
                )
            )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        _print_json({"models": [r.to_json() for r in reports]})
    else:
        print(format_table(reports))
    return 0
