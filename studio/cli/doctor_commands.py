"""`studio doctor`: what this installation has and why a model would run where it runs.

GPU setup is the first thing users of labelling tools get stuck on, so the device line says *why*: a CPU
build of torch, a CUDA build without a driver, or the GPU's name. Everything else a bug report needs is
here too: versions, plugins and their weights, Studio's folders and whether they are writable, and the
integrity of a project's database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "ultralytics", "segment-anything", "open_clip_torch", "supervision",
            "PySide6", "opencv-python", "numpy", "sqlalchemy", "pycocotools")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="versions, device, weights, folders and a project's health")
    p.add_argument("project", type=Path, nargs="?", help="also check this project's database")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doctor)


def versions() -> dict[str, str | None]:
    """Installed distribution versions, read from metadata (nothing is imported)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def device_report() -> dict[str, Any]:
    """The device `auto` picks, with the reason a GPU is or is not used."""
    try:
        import torch
    except ImportError as exc:
        return {"device": "cpu", "why": f"torch is not installed ({exc}); model plugins that need it are unavailable"}
    cuda_build = torch.version.cuda
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {"device": "cuda", "why": f"CUDA {cuda_build}: {', '.join(names)}", "cuda_build": cuda_build}
    if torch.backends.mps.is_available():
        return {"device": "mps", "why": "Apple Metal (MPS) is available", "cuda_build": cuda_build}
    if cuda_build is None:
        why = "this torch is a CPU-only build"
    else:
        why = f"this torch is built for CUDA {cuda_build}, but no NVIDIA GPU or driver was found"
    return {"device": "cpu", "why": why, "cuda_build": cuda_build}


def _writable(directory: Path) -> bool:
    """Whether Studio can create files in `directory` (made if missing), tested by writing one."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def folders() -> dict[str, dict[str, Any]]:
    from studio.io.thumbnail_cache import default_cache_dir
    from studio.models.embedding_cache import default_cache_dir as embedding_cache_dir
    from studio.models.weights import weights_dir

    places = {"weights": weights_dir(), "thumbnails": default_cache_dir(), "embeddings": embedding_cache_dir()}
    return {name: {"path": str(path), "writable": _writable(path)} for name, path in places.items()}


def project_report(root: Path) -> dict[str, Any]:
    """Open the project read-only-in-spirit (no migration of a newer file) and run SQLite's integrity check."""
    from sqlalchemy import text

    from studio.db.project import Project

    with Project.open(root) as project:
        counts = project.counts()
        with project.engine.connect() as connection:
            integrity = "ok"
            if connection.dialect.name == "sqlite":
                integrity = ", ".join(row[0] for row in connection.execute(text("PRAGMA integrity_check")))
    return {"path": str(root), "integrity": integrity, "counts": counts}


def cmd_doctor(args: argparse.Namespace) -> int:
    from studio import __version__
    from studio.models.registry import all_plugins, broken_plugins, weights_status

    report: dict[str, Any] = {
        "studio": __version__,
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "packages": versions(),
        "device": device_report(),
        "plugins": [{k: s[k] for k in ("id", "task", "ready")} for s in map(weights_status, all_plugins())],
        "broken_plugins": broken_plugins(),
        "folders": folders(),
        "offline": os.environ.get("STUDIO_OFFLINE", "") not in {"", "0"},
    }
    if args.project is not None:
        report["project"] = project_report(args.project)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"studio {report['studio']} on Python {report['python']} ({report['platform']})")
    print("packages: " + ", ".join(f"{name} {version or 'missing'}" for name, version in report["packages"].items()))
    print(f"device: {report['device']['device']} ({report['device']['why']})")
    ready = [p["id"] for p in report["plugins"] if p["ready"]]
    waiting = [p["id"] for p in report["plugins"] if not p["ready"]]
    print(f"models ready: {', '.join(ready) or 'none'}; need weights: {', '.join(waiting) or 'none'}")
    for name, error in report["broken_plugins"].items():
        print(f"broken plugin {name}: {error}")
    for name, place in report["folders"].items():
        print(f"{name} folder: {place['path']} ({'writable' if place['writable'] else 'NOT writable'})")
    if "project" in report:
        project = report["project"]
        print(f"project {project['path']}: integrity {project['integrity']}, {json.dumps(project['counts'])}")
    return 0
