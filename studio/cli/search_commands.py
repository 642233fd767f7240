"""`studio embed | search | tag | duplicates`: CLIP embeddings of a project, and what they make possible."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "clip-vit-b-32"


def _model_arguments(p: argparse.ArgumentParser, *, default: str | None) -> None:
    shown = f" (default: {default})" if default else " (default: the model the project was embedded with)"
    p.add_argument("--model", default=default, metavar="ID", help=f"embedding plugin id, see `studio models`{shown}")
    p.add_argument("--weights", metavar="PATH|NAME", help="official weights name, a local checkpoint or a model folder")
    p.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:N or mps (default: auto)")


def _filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", metavar="NAME", help="only media with a human annotation of this label")
    p.add_argument("--tag", metavar="TAG", help="only media with this tag")
    p.add_argument("--review", metavar="STATE", help="only media in this review state (todo, done, ...)")
    p.add_argument("--run", dest="in_run", metavar="NAME", help="only media on which this run predicted something")
    p.add_argument("--unannotated", action="store_true", help="only media without human annotations")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="store CLIP embeddings of the images (and boxes) for search and tagging")
    p.add_argument("project", type=Path)
    _model_arguments(p, default=DEFAULT_MODEL)
    p.add_argument("--regions", action="store_true", help="embed the crops of human annotations instead of images")
    p.add_argument("--every", type=int, default=30, metavar="N", help="videos: every N-th frame (default 30)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="images per model call (default 32)")
    p.set_defaults(handler=cmd_embed)

    p = subparsers.add_parser("search", help="find images by text, by an image, or like a media item or a box")
    p.add_argument("project", type=Path)
    p.add_argument("text", nargs="?", help="what to look for, e.g. \"a red umbrella\"")
    p.add_argument("--text", dest="text_option", metavar="T", help=argparse.SUPPRESS)
    p.add_argument("--image", type=Path, metavar="FILE", help="find images like this file")
    p.add_argument("--like", metavar="MEDIA", help="find images like this media item (name or id; NAME@FRAME for video)")
    p.add_argument("--like-box", type=int, metavar="ANNOTATION", help="find images like this annotation's crop")
    p.add_argument("--regions", action="store_true", help="search annotation crops instead of images")
    p.add_argument("--k", "--top", dest="k", type=int, default=50, help="number of results (default 50)")
    p.add_argument("--json", action="store_true")
    _model_arguments(p, default=None)
    _filter_arguments(p)
    p.set_defaults(handler=cmd_search)

    p = subparsers.add_parser("tag", help="zero-shot: tag images (or relabel boxes) from a list of class names")
    p.add_argument("project", type=Path)
    p.add_argument("--classes", required=True, metavar="A,B,C", help="class names, comma-separated")
    _model_arguments(p, default=DEFAULT_MODEL)
    p.add_argument("--regions", action="store_true", help="relabel the human boxes instead of tagging images")
    p.add_argument("--run", metavar="NAME", help="name of the new run (default: <model>-<n>)")
    p.add_argument("--min-score", type=float, metavar="S", help="also tag every other class scoring at least S")
    p.add_argument("--accept", action="store_true", help="add the tags to the human tags at once")
    p.set_defaults(handler=cmd_tag)

    p = subparsers.add_parser("duplicates", help="near-duplicate images, train/val leaks and uniqueness")
    p.add_argument("project", type=Path)
    p.add_argument("--threshold", type=float, default=0.95, help="cosine similarity of duplicates (default 0.95)")
    p.add_argument("--splits", default="train,val,test", metavar="A,B", help="tags naming dataset splits")
    p.add_argument("--json", action="store_true")
    _model_arguments(p, default=None)
    p.set_defaults(handler=cmd_duplicates)


def _print_progress(done: int, total: int, eta: float | None) -> None:
    from studio.jobs.runner import format_eta

    end = "\n" if done >= total else ""
    print(f"\r{done}/{total} embedded, {format_eta(eta)} left", end=end, file=sys.stderr, flush=True)


def _embed(project: Any, args: argparse.Namespace, *, regions: bool) -> Any:
    from studio.jobs.embed import embed_project

    report = embed_project(
        project, args.model, weights=args.weights, device=args.device, regions=regions,
        every_n=getattr(args, "every", 30), batch_size=getattr(args, "batch", 32),
        progress=_print_progress if sys.stderr.isatty() else None,
    )
    for problem in report.failed:
        print(f"skipped: {problem}", file=sys.stderr)
    return report


def cmd_embed(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.db import Project

    with Project.open(args.project) as project:
        report = _embed(project, args, regions=args.regions)
    what = "regions" if args.regions else "images"
    if report.failed and not report.embedded and not report.unchanged:
        raise StudioError(f"no {what} could be embedded ({len(report.failed)} unreadable)")
    print(f"embedded {report.embedded} {what} with {report.model} ({report.unchanged} unchanged, "
          f"{len(report.failed)} skipped){' - cancelled' if report.cancelled else ''}")
    return 1 if report.cancelled else 0


def _media_filter(project: Any, args: argparse.Namespace) -> Any:
    from studio.core.errors import NotFoundError
    from studio.search.query import MediaFilter

    label_id = None
    if args.label:
        label = project.find_label(args.label)
        if label is None:
            raise NotFoundError(f"no label {args.label!r}")
        label_id = label.id
    run_id = project.find_run(args.in_run).id if args.in_run else None
    return MediaFilter(label_id=label_id, review_state=args.review, unannotated=args.unannotated, tag=args.tag,
                       run_id=run_id)


def _find_media(project: Any, text: str) -> tuple[int, int]:
    """(media id, frame) of "name", "name@frame" or an id."""
    from studio.core.errors import NotFoundError

    name, _, frame = text.rpartition("@") if "@" in text else (text, "", "0")
    media = project.find_media(name)
    if media is None and name.isdigit():
        media = project.get_media(int(name))
    if media is None:
        matches = [m for m in project.list_media(name_contains=name) if m.name == name]
        media = matches[0] if len(matches) == 1 else None
    if media is None:
        raise NotFoundError(f"no media {name!r} in the project")
    if not frame.isdigit():
        raise NotFoundError(f"frame must be a number in {text!r}")
    return media.id, int(frame)


def cmd_search(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.db import Project
    from studio.db.embeddings import NO_ANNOTATION
    from studio.models.embedders import load_embedder
    from studio.search import query as q

    text = args.text if args.text is not None else args.text_option
    asked = [x for x in (text, args.image, args.like, args.like_box) if x is not None]
    if len(asked) != 1:
        raise StudioError("search needs exactly one of: TEXT, --image FILE, --like MEDIA, --like-box ANNOTATION")
    with Project.open(args.project) as project:
        space = q.resolve_space(project, args.model, args.weights)
        q.require_embeddings(project, space.model, regions=args.regions)
        if args.like is not None:
            vector = q.stored_query(project, space.model, (*_find_media(project, args.like), NO_ANNOTATION))
        elif args.like_box is not None:
            box = project.get_annotation(args.like_box)
            vector = q.stored_query(project, space.model, (box.media_id, box.frame, box.id or 0))
        else:
            embedder = load_embedder(space.plugin_id, weights=space.weights, device=args.device)
            vector = q.text_query(embedder, text) if text is not None else q.image_query(embedder, args.image)
        embeddings = q.EmbeddingSet(project, space.model, regions=args.regions)
        hits = embeddings.search(vector, args.k, media_ids=_media_filter(project, args).media_ids(project))
        names = {h.media_id: project.get_media(h.media_id).path for h in hits}
    rows = []
    for hit in hits:
        row: dict[str, Any] = {"media": names[hit.media_id], "frame": hit.frame, "score": round(hit.score, 6)}
        if hit.annotation_id is not None:
            row["annotation"] = hit.annotation_id
        rows.append(row)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for row in rows:
            where = f"@{row['frame']}" if row["frame"] else ""
            box = f"  box {row['annotation']}" if "annotation" in row else ""
            print(f"{row['score']:.4f}  {row['media']}{where}{box}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.jobs.accept import accept_tags
    from studio.models.embedders import load_embedder
    from studio.search.query import EmbeddingSet, resolve_space
    from studio.search.zeroshot import class_names, relabel_regions, tag_images

    classes = class_names(args.classes)
    with Project.open(args.project) as project:
        _embed(project, args, regions=args.regions)  # incremental: only what is new or changed
        space = resolve_space(project, args.model, args.weights)
        embedder = load_embedder(space.plugin_id, weights=space.weights, device=args.device)
        embeddings = EmbeddingSet(project, space.model, regions=args.regions)
        common = {"plugin_id": space.plugin_id, "weights": space.weights, "run_name": args.run}
        if args.regions:
            run = relabel_regions(project, embedder, embeddings, classes, **common)
            done = f"relabelled {run.stats['predictions']} boxes"
        else:
            run = tag_images(project, embedder, embeddings, classes, min_score=args.min_score, **common)
            done = f"tagged {run.stats['tagged']} images"
        accepted = accept_tags(project, run.id) if args.accept and not args.regions else None
    stats = run.stats
    accuracy = (f"; zero-shot accuracy {stats['accuracy']:.3f} on {stats['evaluated']} labelled "
                f"(chance {stats['chance']:.3f})" if stats.get("accuracy") is not None else "")
    print(f"run {run.name!r} (id {run.id}): {done}{accuracy}")
    if accepted is not None:
        print(f"accepted {accepted} tags into the human tags")
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.db import Project
    from studio.search.duplicates import find_duplicates
    from studio.search.query import EmbeddingSet, require_embeddings, resolve_space

    if not 0.0 < args.threshold <= 1.0:
        raise StudioError(f"--threshold must lie in (0, 1], got {args.threshold}")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    with Project.open(args.project) as project:
        space = resolve_space(project, args.model, args.weights)
        require_embeddings(project, space.model)
        report = find_duplicates(project, EmbeddingSet(project, space.model), threshold=args.threshold, splits=splits)
        paths = {m.id: m.path for m in project.list_media()}

    def items(group: Any) -> list[dict[str, Any]]:
        return [{"media": paths[m], "frame": f} for m, f in group.items]

    if args.json:
        document = {
            "threshold": args.threshold,
            "groups": [{"items": items(g), "similarity": g.similarity} for g in report.groups],
            "leaks": [{"items": items(g), "similarity": g.similarity} for g in report.leaks],
            "uniqueness": [{"media": paths[m], "frame": f, "score": round(s, 6)}
                           for (m, f), s in sorted(report.uniqueness.items(), key=lambda kv: kv[1])],
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for group in report.groups:
        leak = "  LEAK across splits" if group in report.leaks else ""
        print(f"{len(group.items)} near-duplicates (similarity >= {group.similarity:.3f}){leak}")
        for item in items(group):
            print(f"    {item['media']}" + (f"@{item['frame']}" if item["frame"] else ""))
    print(f"{len(report.groups)} groups, {len(report.leaks)} across splits ({', '.join(splits)})")
    return 0
