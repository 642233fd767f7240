"""Weights manager: where checkpoints live, how they are downloaded and how they are opened safely.

Files live in the user data dir (platformdirs; `STUDIO_DATA_DIR` overrides it, tests use that). A download
streams into `<name>.part` with HTTP Range resume, is checked against its sha256 and only then renamed
into place, so a half-written or corrupt file is never mistaken for a good one. `STUDIO_OFFLINE=1` forbids
downloads altogether. Checkpoints are pickles, and a pickle can run code: `load_checkpoint` uses torch's
`weights_only=True`, and `check_checkpoint_globals` vets a full-model pickle (ultralytics .pt) before its
library unpickles it. `STUDIO_TRUST_PICKLES=1` is the documented opt-in for checkpoints a user trusts.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.models.protocols import PluginSpec, WeightsFile

OFFLINE_ENV = "STUDIO_OFFLINE"
TRUST_ENV = "STUDIO_TRUST_PICKLES"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0

ULTRALYTICS_CHECKPOINT_GLOBALS = (
    "ultralytics.", "torch.", "collections.", "numpy.", "_codecs.", "builtins.set", "builtins.slice",
    "types.SimpleNamespace", "pathlib.", "datetime.", "argparse.Namespace", "copyreg._reconstructor",
    "builtins.object", "builtins.dict", "builtins.list", "builtins.tuple", "builtins.getattr",
)
"""What an ultralytics checkpoint's pickle may name: the model's own classes and plain containers (checked by the
YOLO plugin before loading and by the trainer before its worker unpickles a base model)."""

DownloadProgress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None when the server does not say)."""


class WeightsError(StudioError):
    """A checkpoint is missing, cannot be downloaded, or is not a valid (or not a safe) file."""


def weights_dir() -> Path:
    """The folder downloaded checkpoints go to (created on demand)."""
    override = os.environ.get("STUDIO_DATA_DIR")
    if override:
        base = Path(override)
    else:
        import platformdirs

        base = Path(platformdirs.user_data_dir("studio", appauthor=False))
    return base / "weights"


def _is_truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def find_weights_file(spec: PluginSpec, name: str) -> WeightsFile | None:
    """The official weights entry of `spec` called `name`, if there is one."""
    return next((w for w in spec.weights if w.name == name), None)


def _local_hint(spec: PluginSpec) -> str:
    return f"download it by hand and pass it with --weights PATH (or pick the file in the model panel) for {spec.id}"


def resolve_weights(spec: PluginSpec, name_or_path: str | None, *, progress: DownloadProgress | None = None) -> Path:
    """The checkpoint file to load: a local path as is, an official name from the data dir (downloaded if absent).

    None means the plugin's first (default) weights file.
    """
    if name_or_path is None:
        if not spec.weights:
            raise WeightsError(f"{spec.id} needs a weights file; pass one with --weights PATH")
        name_or_path = spec.weights[0].name
    local = Path(name_or_path).expanduser()
    if local.is_file():
        return local
    official = find_weights_file(spec, name_or_path)
    if official is None:
        if local.parent != Path(".") or local.exists():
            raise WeightsError(f"weights file {name_or_path} not found (or not a file)")
        known = ", ".join(w.name for w in spec.weights) or "none"
        raise WeightsError(f"{name_or_path!r} is neither a file nor an official weights name of {spec.id} (known: {known})")
    target = weights_dir() / official.name
    if target.is_file():
        return target
    return download(official, target, spec=spec, progress=progress)


def download(
    weights: WeightsFile, target: Path, *, spec: PluginSpec, progress: DownloadProgress | None = None
) -> Path:
    """Fetch `weights.url` into `target`: resume a previous `.part`, check sha256, rename atomically."""
    if weights.url is None:
        raise WeightsError(f"{weights.name} has no download address; {_local_hint(spec)}")
    if _is_truthy(OFFLINE_ENV):
        raise WeightsError(f"{weights.name} is not downloaded and {OFFLINE_ENV} is set; {_local_hint(spec)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        _fetch(weights.url, part, expected_size=weights.size_bytes, progress=progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"could not download {weights.name} from {weights.url} ({reason}); {_local_hint(spec)}") from exc
    if weights.sha256 and sha256_of(part) != weights.sha256.lower():
        part.unlink(missing_ok=True)
        raise WeightsError(f"{weights.name} downloaded from {weights.url} is corrupt (sha256 mismatch); try again or {_local_hint(spec)}")
    os.replace(part, target)
    return target


def _fetch(url: str, part: Path, *, expected_size: int | None, progress: DownloadProgress | None) -> None:
    """Stream `url` into `part`, continuing where an interrupted download stopped when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        resumed = have > 0 and response.status == 206
        if not resumed:
            have = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else expected_size
        with part.open("ab" if resumed else "wb") as out:
            done = have
            if progress is not None:
                progress(done, total)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(path: Path | str) -> Any:
    """`torch.load` a state-dict checkpoint on the CPU with `weights_only=True` (no code runs while loading)."""
    import pickle

    import torch

    trusted = _is_truthy(TRUST_ENV)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trusted)
    except FileNotFoundError as exc:
        raise WeightsError(f"weights file {path} not found") from exc
    except pickle.UnpicklingError as exc:
        check_checkpoint_globals(path, allowed_prefixes=())  # names the foreign objects, or says "not valid"
        raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({exc})") from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({exc})") from exc


def check_checkpoint_globals(path: Path | str, *, allowed_prefixes: Iterable[str]) -> None:
    """Refuse a full-model pickle that names classes or functions outside `allowed_prefixes`.

    Libraries such as ultralytics unpickle whole models (weights_only=False), which would run anything the
    file names. Listing the globals first (without unpickling) lets Studio refuse e.g. `os.system` while
    accepting the model's own torch / ultralytics classes. Skipped when the user opted in with TRUST_ENV.
    """
    import torch

    source = Path(path)
    if not source.is_file():
        raise WeightsError(f"weights file {path} not found")
    if _is_truthy(TRUST_ENV):
        return
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(source))
    except Exception as exc:  # torch raises many types (zip, pickle, EOF) for a damaged file
        raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    prefixes = tuple(allowed_prefixes)
    unexpected = sorted(name for name in names if not name.startswith(prefixes))
    if unexpected:
        shown = ", ".join(unexpected[:5])
        raise WeightsError(
            f"{path} holds Python objects beyond plain tensors ({shown}) that could run code; refusing to load it. "
            f"If you trust its source, set {TRUST_ENV}=1"
        )
