"""Reading files that came from strangers: only regular files, only inside the dataset, bounded.

Datasets are downloaded from model zoos, Roboflow Universe, Kaggle and issue attachments, so every
reader treats its input as hostile: a path in a dataset file may climb out of the dataset folder, a
"file" may be a FIFO that blocks `open()` forever, a YAML file may expand aliases into gigabytes, and a
JSON document may nest deeper than any parser's stack. The helpers here turn each of these into one
`FormatError` (or the error type a caller passes) before any damage, and are the only way format readers
open their files.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Collection
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml

from studio.core.errors import FormatError, StudioError

MAX_DATASET_FILE_BYTES = 4 << 30
"""Largest annotation file read (COCO's biggest official file is under 0.5 GB)."""
MAX_YAML_BYTES = 1 << 20
"""Largest YAML file read: a data.yaml lists class names and folders, a few KB."""
MAX_NESTING = 64
"""Deepest nesting of lists and objects accepted in JSON and YAML. Real datasets nest under 10 levels;
deeper documents exhaust parsers and encoders (orjson stops at 255) further down the line."""


# ---- where a dataset's files may be -------------------------------------------------------------------


def inside(root: Path | None, name: str) -> Path | None:
    """The path `name` (relative, posix or Windows separators) denotes under `root`, or None when it lies
    outside: absolute, a drive, climbing out with '..', or empty. Lexical only, so it costs nothing for
    names that then match project media; `real_file_inside` checks symlinks before a file is read."""
    if root is None or not isinstance(name, str):
        return None
    text = name.replace("\\", "/")
    if not text or "\x00" in text or text.startswith("/") or PureWindowsPath(name).drive:
        return None
    candidate = os.path.normpath(os.path.join(root, text))
    base = os.path.normpath(root)
    if candidate != base and not candidate.startswith(os.path.join(base, "")):
        return None
    return Path(candidate)


def really_inside(root: Path, path: Path) -> bool:
    """Whether `path`'s real location (symlinks followed) is inside `root`'s real location: a dataset
    cannot reach /home/you/.ssh through a link it ships."""
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return real == real_root or real.startswith(os.path.join(real_root, ""))


def real_file_inside(root: Path, path: Path) -> bool:
    """Whether `path` is a regular file that really lies inside `root` (see really_inside)."""
    return really_inside(root, path) and is_regular(Path(os.path.realpath(path)))


def is_regular(path: Path) -> bool:
    """A regular file (not a FIFO, socket, device or folder); False when it cannot be seen."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False


def files_under(folder: Path, suffixes: Collection[str], *, any_case: bool = False) -> list[Path]:
    """Files under `folder` (recursively, sorted) whose names end in one of `suffixes`. A sub-folder that
    cannot be listed (no permission, a path too long for the system) is a FormatError, where
    Path.rglob would skip it silently. Symlinked folders are not followed: they could lead out of the
    dataset, or round in a loop."""

    def refuse(exc: OSError) -> None:
        name = str(exc.filename)
        if len(name) > 160:
            name = f"{name[:60]}…{name[-60:]}"
        reason = "path too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or "cannot list")
        raise FormatError(f"{name}: folder not read ({reason})")

    endings = tuple(suffix.lower() for suffix in suffixes) if any_case else tuple(suffixes)
    found = []
    for directory, _folders, names in os.walk(folder, onerror=refuse):
        found.extend(Path(directory, name) for name in names if (name.lower() if any_case else name).endswith(endings))
    return sorted(found)


# ---- reading ---------------------------------------------------------------------------------------


def read_bytes(path: Path, *, limit: int = MAX_DATASET_FILE_BYTES, error: type[StudioError] = FormatError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; `error` (one line) otherwise.

    Opened non-blocking and checked with fstat on the open descriptor, so a FIFO or a device named
    `x.json` is refused at once instead of blocking, and a file swapped between check and open is caught.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:
        raise error(f"{_name(path)}: cannot read ({_reason(exc)})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{_name(path)}: not a regular file")
        if info.st_size > limit:
            raise error(f"{_name(path)}: {info.st_size:,} bytes is more than the {limit:,} Studio reads")
        chunks = []
        remaining = limit + 1
        while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 24))):
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise error(f"{_name(path)}: cannot read ({_reason(exc)})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while being read
        raise error(f"{_name(path)}: more than the {limit:,} bytes Studio reads")
    return data


def read_text(path: Path, *, limit: int = MAX_DATASET_FILE_BYTES) -> str:
    """A regular UTF-8 text file (a BOM is dropped); FormatError otherwise."""
    try:
        return read_bytes(path, limit=limit).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{_name(path)}: not UTF-8 text (byte {exc.start})") from None


def load_json(path: Path) -> Any:
    """A JSON document from a regular file: FormatError for malformed JSON, NaN or Infinity (not JSON,
    or a number too large for a float), integers of thousands of digits, and nesting deeper than the
    parser's stack. (The values a dataset stores, like attributes, are bounded further by
    `check_storable`; walking a whole 50 MB document for its depth would double the time to read it.)"""
    data = read_bytes(path)
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{_name(path)}: not valid JSON (truncated or malformed) at line {exc.lineno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{_name(path)}: not UTF-8 JSON (byte {exc.start})") from None
    except RecursionError:
        raise FormatError(f"{_name(path)}: nested too deeply") from None
    except _ConstantError as exc:
        raise FormatError(f"{_name(path)}: {exc.args[0]} is not a JSON number") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise FormatError(f"{_name(path)}: a number is too long ({str(exc)[:60]})") from None


def check_storable(value: Any, where: str) -> None:
    """FormatError unless a value read from a dataset (attributes, a name, an id) can be stored and
    written out again: nesting at most MAX_NESTING deep, integers within 64 bits (SQLite and orjson hold
    no more), finite floats, text without lone surrogates (not UTF-8) and keys that are text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if not -(2**63) <= item < 2**63:
                raise FormatError(f"{where}: a number is larger than 64 bits hold")
        elif isinstance(item, float):
            if item - item != 0:
                raise FormatError(f"{where}: a number is not finite")
        elif isinstance(item, str):
            if not _is_utf8(item):
                raise FormatError(f"{where}: text holds an unpaired surrogate (\\ud800-\\udfff), not UTF-8")
        elif isinstance(item, (dict, list)):
            if depth > MAX_NESTING:
                raise FormatError(f"{where}: nested deeper than {MAX_NESTING} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        else:
            raise FormatError(f"{where}: {type(item).__name__} values cannot be stored")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _ConstantError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _ConstantError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0:  # 1e400 reads as infinity
        raise _ConstantError(text[:40])
    return value


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (a few hundred bytes of nested aliases expand
    into gigabytes: "billion laughs") and with bounded nesting. A data.yaml never needs either."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&name, *name) are not allowed", event.start_mark)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(path: Path) -> Any:
    """A small YAML document from a regular file, without aliases; FormatError (one line, no excerpt of
    the file) otherwise."""
    text = read_text(path, limit=MAX_YAML_BYTES)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise FormatError(f"{_name(path)}: not readable YAML{line}: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise FormatError(f"{_name(path)}: not readable YAML: {type(exc).__name__}") from None
    finally:
        loader.dispose()


def _name(path: Path) -> str:
    return Path(path).name or str(path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "invalid file name" if isinstance(exc, ValueError) else type(exc).__name__
