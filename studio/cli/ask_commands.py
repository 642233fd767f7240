"""`studio ask`: ask a vision-language model about an image or a box, ask every image, find objects, or check a
server. The answer prints as it streams; every answer is stored in the project."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.cli.project_commands import print_json

if TYPE_CHECKING:
    from studio.jobs.ask import Backend
    from studio.models.protocols import AskParams

DESCRIPTION = """\
One question: studio ask PROJECT MEDIA "question" [--box X,Y,W,H | --annotation ID] [--model M | --server URL --server-model NAME]
Every image:  studio ask PROJECT --all "question" [--choices a,b] [--to caption|tags] [--label L --to attribute:NAME|label]
Find objects: studio ask PROJECT --find "helmet" --server URL --server-model qwen2.5-vl
Check server: studio ask --check-server URL --server-model NAME
Answers of a batch are proposals: `studio accept PROJECT --run NAME` writes them into captions, tags or boxes.
The API key of a server comes from $STUDIO_API_KEY (or --api-key-env VAR) or the system keyring, never the project."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ask", help="ask a vision-language model about an image or a region (local or on a server)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("project", type=Path, nargs="?")
    p.add_argument("media", nargs="?", help="media id, or its path (as stored or on disk)")
    p.add_argument("question", nargs="?")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--all", metavar="QUESTION", help="ask every image (or every box of --label) as a run")
    what.add_argument("--find", metavar="WHAT", help="find every WHAT with a grounding model: boxes in a run")
    what.add_argument("--check-server", metavar="URL", help="check that a server's model sees images, then exit")
    region = p.add_mutually_exclusive_group()
    region.add_argument("--box", metavar="X,Y,W,H", help="ask about this box (pixels, top-left corner and size)")
    region.add_argument("--annotation", type=int, metavar="ID", help="ask about this annotation's box")
    p.add_argument("--frame", type=int, default=0, help="video frame (0 for images)")
    p.add_argument("--view", choices=("crop", "draw"), default="crop",
                   help="a region is shown cropped with context (default) or drawn on the whole image")
    p.add_argument("--context", type=float, default=0.25, help="crop padding per side, fraction of the box (0.25)")
    p.add_argument("--new", action="store_true", help="start a new conversation instead of following up")
    model = p.add_argument_group("model (a local one by default)")
    model.add_argument("--model", "-m", metavar="M", help="Hugging Face model id, local model folder, or an ask plugin id")
    model.add_argument("--device", metavar="D", help="local model: auto, cpu, cuda, cuda:N or mps")
    model.add_argument("--server", metavar="URL", help="OpenAI-compatible server, e.g. http://localhost:11434/v1")
    model.add_argument("--server-model", metavar="NAME", help="the model name the server knows")
    model.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the key (STUDIO_API_KEY)")
    model.add_argument("--no-stream", action="store_true", help="ask the server for the whole answer at once")
    model.add_argument("--timeout", type=float, default=60.0, metavar="S", help="server read timeout (60 s)")
    model.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests in flight for a server batch")
    gen = p.add_argument_group("generation")
    gen.add_argument("--temperature", type=float, default=0.0, help="0: the same answer every time (default)")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--max-tokens", type=int, default=256)
    batch = p.add_argument_group("--all and --find")
    batch.add_argument("--choices", metavar="A,B", help="allowed answers (yes,no; one of the labels)")
    batch.add_argument("--to", default="caption", metavar="TARGET",
                       help="where accepted answers go: caption, tags, attribute:NAME or label (default: caption)")
    batch.add_argument("--label", metavar="L", help="ask about every box of this label instead of every image")
    batch.add_argument("--run", metavar="NAME", help="name of the new run")
    batch.add_argument("--no-check", action="store_true", help="skip the preflight check of a server")
    batch.add_argument("--accept", action="store_true", help="accept the answers at once")
    batch.add_argument("--box-format", default="auto", metavar="F",
                       help="--find: auto, qwen2.5-vl, qwen3-vl, florence-2 or paligemma")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_ask)


def _backend(args: argparse.Namespace) -> Backend:
    from studio.core.errors import StudioError
    from studio.jobs.ask import local_backend, server_backend
    from studio.models.registry import all_plugins

    server = args.check_server or args.server
    if server:
        if args.model:
            raise StudioError("ask a local --model or a --server, not both")
        if not args.server_model:
            raise StudioError("name the server's model with --server-model (e.g. llava, qwen2.5vl:7b)")
        options: dict[str, Any] = {"stream": not args.no_stream, "read_timeout": args.timeout}
        if args.api_key_env:
            options["api_key_env"] = args.api_key_env
        return server_backend(server, args.server_model, concurrency=args.concurrency, **options)
    if args.model in {spec.id for spec in all_plugins("ask")}:
        return local_backend(None, plugin=args.model, device=args.device)
    return local_backend(args.model, device=args.device)


def _params(args: argparse.Namespace) -> AskParams:
    from studio.models.protocols import AskParams

    return AskParams(temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens,
                     region_view=args.view, context=args.context)


def cmd_ask(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError

    if args.check_server:
        return _check_server(args)
    if args.project is None:
        raise StudioError("name the project (studio ask PROJECT MEDIA QUESTION, or --all / --find)")
    if args.all or args.find:
        if args.media is not None:
            raise StudioError("--all and --find ask every image: give no MEDIA or QUESTION")
        return _batch(args) if args.all else _find(args)
    if args.media is None or args.question is None:
        raise StudioError("give the MEDIA and the QUESTION (or --all QUESTION)")
    return _ask_one(args)


def _check_server(args: argparse.Namespace) -> int:
    from studio.jobs.ask import preflight

    result = preflight(_backend(args))
    if args.json:
        print_json({"ok": True, "colour": result.colour, "answer": result.answer, "seconds": result.seconds})
    else:
        print(f"ok: shown a plain {result.colour} image, {args.server_model} answered {result.answer!r} "
              f"in {result.seconds:.2f} s")
    return 0


def _ask_one(args: argparse.Namespace) -> int:
    from studio.cli.segment_commands import comma_numbers, find_media_arg
    from studio.core.shapes import Box
    from studio.db import Project
    from studio.jobs.ask import ask_question

    params = _params(args)
    box = None
    if args.box:
        x, y, w, h = comma_numbers(args.box, "--box", (4,))
        box = Box(x, y, x + w, y + h)
    with Project.open(args.project) as project:
        media = find_media_arg(project, args.media)
        backend = _backend(args)

        def show(piece: str) -> None:
            print(piece, end="", flush=True)

        answer = ask_question(
            project, media.id, args.question, backend=backend, frame=args.frame, box=box,
            annotation_id=args.annotation, params=params, follow_up=not args.new,
            on_token=None if args.json else show,
        )
    if args.json:
        print_json({"answer": answer.answer, "model": answer.model, "backend": answer.backend,
                     "seconds": answer.seconds, "first_token_seconds": answer.first_token_seconds,
                     "id": answer.id, "conversation": answer.conversation})
    else:
        print()
    return 0


def _progress(done: int, total: int, eta: float | None) -> None:
    from studio.jobs.runner import format_eta

    end = "\n" if done >= total else ""
    print(f"\r{done}/{total} answered, {format_eta(eta)} left", end=end, file=sys.stderr, flush=True)


def _batch(args: argparse.Namespace) -> int:
    from studio.db import Project
    from studio.jobs.ask import accept_answers, ask_batch

    target, _, attribute = args.to.partition(":")
    choices = [c.strip() for c in args.choices.split(",") if c.strip()] if args.choices else None
    with Project.open(args.project) as project:
        run = ask_batch(
            project, args.all, backend=_backend(args), target=target, choices=choices,  # type: ignore[arg-type]
            label=args.label, attribute=attribute or None, params=_params(args), run_name=args.run,
            check=not args.no_check, progress=_progress if sys.stderr.isatty() else None,
        )
        accepted = accept_answers(project, run.id) if args.accept and run.status == "complete" else None
    if args.json:
        print_json({"run": run.name, "id": run.id, "status": run.status, "stats": run.stats,
                     "accepted": None if accepted is None else accepted.changed})
    else:
        stats = run.stats
        matched = f", {stats['matched']} matched a choice" if choices else ""
        print(f"run {run.name!r} (id {run.id}) {run.status}: {stats['items']}/{stats['items_planned']} answered"
              f"{matched}, {stats['seconds_per_item']:.3f} s each")
        if accepted is not None:
            print(f"accepted: {accepted.changed} changed ({target})")
        elif run.status == "complete":
            print(f"accept them with: studio accept {args.project} --run {run.name}")
    return 0 if run.status == "complete" else 1


def _find(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.db import Project
    from studio.jobs.ask import find_objects
    from studio.models.vqa import BOX_FORMATS

    if args.box_format not in BOX_FORMATS:
        raise StudioError(f"--box-format must be one of {', '.join(BOX_FORMATS)}, got {args.box_format!r}")
    with Project.open(args.project) as project:
        run = find_objects(project, args.find, backend=_backend(args), box_format=args.box_format,
                           params=_params(args), run_name=args.run)
    if args.json:
        print_json({"run": run.name, "id": run.id, "status": run.status, "stats": run.stats})
    else:
        print(f"run {run.name!r} (id {run.id}) {run.status}: {run.stats['predictions']} boxes on {run.stats['items']} images")
    return 0 if run.status == "complete" else 1
