"""The `studio` command. Each group of sub-commands lives in its own module with a `register(subparsers)`.

Errors a user can fix (StudioError) print one line on stderr and exit 1; argparse usage errors exit 2.
Command modules import heavy libraries inside their handlers, so `studio --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from studio import __version__

COMMAND_MODULES = [
    "studio.cli.project_commands",
    "studio.cli.model_commands",
    "studio.cli.train_commands",
    "studio.cli.eval_commands",
    "studio.cli.segment_commands",
    "studio.cli.ask_commands",
    "studio.cli.search_commands",
    "studio.cli.doctor_commands",
]
"""The data commands; studio.app.main adds the GUI ones (`studio`, `demo`, `gui`)."""


def build_parser(command_modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Label images and video with the help of models, compare models, export datasets.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules:
        importlib.import_module(name).register(subparsers)
    return parser


def fail(message: str, code: int = 1) -> int:
    print(f"studio: error: {one_line(message)}", file=sys.stderr)
    return code


def one_line(message: str, limit: int = 600) -> str:
    """A message as one printable line: newlines, NUL and other control characters (a file or label name
    can hold them) and unpaired surrogates (non-UTF-8 file names) shown escaped, and long text cut."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def environment_error(exc: BaseException) -> str | None:
    """One line for failures of the machine rather than of Studio (a full disk, a read-only folder, a
    damaged or locked database), without the SQL and parameters SQLAlchemy puts in its message; None
    for a bug."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or type(exc).__name__}" if exc.strerror else None
    orig = getattr(exc, "orig", None)
    if "sqlalchemy" in type(exc).__module__ and orig is not None:
        return f"the project database failed: {orig}"
    return None


def _warning_line(message: Warning | str, category: type[Warning], *_args: object, **_kwargs: object) -> None:
    """Library warnings (Pillow, torch, ultralytics) as one `studio: warning:` line instead of the two
    or more lines, with a source excerpt, that Python prints."""
    print(f"studio: warning: {one_line(str(message), 300)}", file=sys.stderr)

class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled like Ctrl+C, so a job stops between batches and records where it got."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _stop_like_ctrl_c_on_termination() -> None:
    """`kill`, a closed terminal or a service manager stopping Studio: the same clean stop as Ctrl+C."""
    import signal

    for name in ("SIGTERM", "SIGHUP"):  # SIGHUP does not exist on Windows
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)


def main(
    argv: Sequence[str] | None = None,
    *,
    command_modules: Sequence[str] = COMMAND_MODULES,
    default_handler: Callable[[argparse.Namespace], int] | None = None,
) -> int:
    """Run one command; with none given, `default_handler` (the application opens the window), else help."""
    parser = build_parser(command_modules)
    args = parser.parse_args(argv)
    if args.command is None:
        if default_handler is None:
            parser.print_help()
            return 0
        args.handler = default_handler
    if not os.environ.get("STUDIO_DEBUG"):
        warnings.showwarning = _warning_line
    from studio.core.errors import StudioError

    if getattr(args.handler, "__module__", "") != "studio.app.gui_commands":  # Qt has its own event loop
        _stop_like_ctrl_c_on_termination()
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
    except Terminated as exc:
        import signal

        return fail(f"interrupted ({signal.Signals(exc.signum).name})", 128 + exc.signum)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("STUDIO_DEBUG"):
            raise
        explained = environment_error(exc)
        if explained is not None:
            return fail(explained)
        return fail(f"internal error: {type(exc).__name__}: {str(exc)[:200]} (set STUDIO_DEBUG=1 for details)")
