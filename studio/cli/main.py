"""The `studio` command. Each group of sub-commands lives in its own module with a `register(subparsers)`.

Errors a user can fix (StudioError) print one line on stderr and exit 1; argparse usage errors exit 2.
Command modules import heavy libraries inside their handlers, so `studio --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from studio import __version__

COMMAND_MODULES = [
    "studio.cli.project_commands",
    "studio.cli.model_commands",
    "studio.cli.train_commands",
    "studio.cli.eval_commands",
    "studio.cli.segment_commands",
    "studio.cli.gui_commands",
    "studio.cli.doctor_commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Label images and video with the help of models, compare models, export datasets.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def fail(message: str, code: int = 1) -> int:
    print(f"studio: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `studio` alone opens the labelling window
        from studio.cli.gui_commands import cmd_start

        args.handler = cmd_start
    from studio.core.errors import StudioError

    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe surfaces here rather than at interpreter exit
        return status
    except BrokenPipeError:  # `studio models | head`: the reader left; say nothing, as cat and ls do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's own final flush cannot fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by a closed pipe
    except StudioError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("STUDIO_DEBUG"):
            raise
        return fail(f"internal error: {type(exc).__name__}: {exc} (set STUDIO_DEBUG=1 for details)")
