"""Runs hostile cases through `studio.cli.main.main` in ONE process under a memory limit, and writes one
JSON result per case. Run by test_fuzz.py as a subprocess, so that an abort (heap corruption in a C
library), a hang or a memory bomb shows up as a failed case instead of taking pytest down.

    python worker.py CASES.json PROJECT RESULTS.jsonl [--hypothesis N]
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import resource
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 3 << 30
"""Address space the whole worker may use (numpy, OpenCV and Pillow loaded): a bomb fails inside it."""
CASE_SECONDS = 20
"""A case still running after this long is a hang (a FIFO opened for reading blocks forever)."""


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang()


def dump(project: Path) -> dict[str, Any]:
    """Everything a user could notice in the project: rows of every table (raw SQLite, so a damaged row
    cannot stop the dump) and the files in its folder."""
    connection = sqlite3.connect(f"file:{project / 'studio.db'}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type='table'")]
        rows = {t: sorted(map(repr, connection.execute(f'select * from "{t}"'))) for t in tables}
    finally:
        connection.close()
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if not p.name.startswith("studio.db"))
    return {"rows": rows, "files": files}


def _operational_error(message: str) -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT INTO media (path) VALUES (?)", ("/private/user/path.png",), sqlite3.OperationalError(message))


def install_fault(name: str | None, project: Path) -> contextlib.ExitStack:
    """Simulate a fault of the machine for one case: the returned stack undoes it."""
    from unittest import mock

    stack = contextlib.ExitStack()
    if name in ("disk-full", "read-only"):
        message = "database or disk is full" if name == "disk-full" else "attempt to write a readonly database"
        stack.enter_context(mock.patch("studio.db.project.Project.add_media", side_effect=_operational_error(message)))
    elif name == "no-space":
        error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "annotations.json")
        stack.enter_context(mock.patch("pathlib.Path.write_bytes", side_effect=error))
    elif name == "damaged-geometry":
        import numpy as np

        from studio.core.geometry import encode_mask
        from studio.core.types import Annotation
        from studio.db import Project

        with Project.open(project) as opened:
            media = opened.list_media()[0]
            label = opened.ensure_label("damaged")
            mask = encode_mask(np.ones((media.height, media.width), bool))
            opened.add_annotations([Annotation(media_id=media.id, frame=0, label_id=label.id, shape=mask)])
        connection = sqlite3.connect(project / "studio.db")
        with connection:
            connection.execute("update annotations set geometry = json_set(geometry, '$.counts', '!!!!')")
        connection.close()
    return stack


def run_case(case: dict[str, Any], project: Path) -> dict[str, Any]:
    from studio.cli.main import main

    fault = install_fault(case.get("setup"), project)
    before = dump(project)
    stdout, stderr = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    signal.alarm(CASE_SECONDS)
    try:
        with fault, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(case["argv"])
    except Hang:
        code = "hang"
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:  # any escape is what this suite looks for
        code = f"escaped {type(exc).__name__}"
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    after = dump(project)
    media_paths = [row for row in after["rows"].get("media", [])]
    return {
        "name": case["name"],
        "code": code,
        "stderr": stderr.getvalue(),
        "stdout": stdout.getvalue(),
        "seconds": round(seconds, 3),
        "unchanged": before == after,
        "outside_media": bool(case.get("outside")) and any(case["outside"] in row for row in media_paths),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    cases_file, project, results_file = (Path(arg) for arg in sys.argv[1:4])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.loads(cases_file.read_text())
    with results_file.open("w") as out:
        for case in cases:
            out.write(json.dumps({"started": case["name"]}) + "\n")
            out.flush()  # an abort leaves the name of the case that caused it
            out.write(json.dumps(run_case(case, project)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
