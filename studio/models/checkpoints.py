"""Open PyTorch checkpoints without running code from them.

A checkpoint is a pickle, and unpickling can call any function the file names. Every checkpoint Studio
opens goes through `load_checkpoint`: torch's restricted unpickler (`weights_only=True`) with an explicit
allow-list of exact global names (`AllowList`), set up so that nothing else is allowed during the load.

- `classes` are rebuilt the way `torch.save` stores objects (`__new__`, then the saved attributes) and
  can never be *called* with the file's arguments: a pickle that REDUCEs `DetectionModel(cfg)` would
  otherwise run ultralytics' model parser (which `eval`s activation strings). Under the class's name the
  unpickler sees a stand-in whose call returns a bare instance without running `__init__`.
- `functions` are called with the file's arguments; each one must be harmless for any argument (data
  constructors such as `pathlib.PosixPath`, a `getattr` restricted to module methods).

A name outside the list is refused with one line naming it. The user can trust a file explicitly:
`STUDIO_TRUST_PICKLES=1` for every file, or `trust_checkpoint(path)` for one file (remembered by sha256 in
Studio's data dir; the GUI asks). A trusted file is unpickled in full, as its library would.

Libraries that open files themselves (ultralytics) are handed the object loaded here through
`handed_over`, so they never unpickle the file on their own.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import threading
import warnings
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from studio.models.weights import TRUST_ENV, WeightsError, is_truthy, sha256_of, weights_dir

TRUSTED_FILE = "trusted_checkpoints.json"
_LOAD_LOCK = threading.Lock()
"""torch keeps the allow-list in one process-wide set: loads take turns so each sees exactly its own list."""


class UntrustedCheckpointError(WeightsError):
    """The checkpoint names a global outside the allow-list; `trust_checkpoint(path)` would let it load."""

    def __init__(self, path: Path, global_name: str) -> None:
        self.path = path
        self.global_name = global_name
        super().__init__(
            f"{path} refers to {global_name}, which Studio does not load from a checkpoint (a pickle can run "
            f"code); if you trust where the file came from, set {TRUST_ENV}=1 or trust the file in the GUI"
        )


@dataclass(frozen=True)
class AllowList:
    """Exact global names a checkpoint may refer to (beyond torch's own tensor and container types)."""

    classes: Mapping[str, type] = field(default_factory=dict)
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def names(self) -> set[str]:
        return set(self.classes) | set(self.functions)

    def torch_entries(self, names: set[str]) -> list[Any]:
        """What `torch.serialization.add_safe_globals` gets for a checkpoint naming `names`: (object, name) pairs.

        Only the entries the file names: torch rebuilds its lookup from the whole allowed set at every
        global and object in the pickle, so registering hundreds of classes would slow every load.
        """
        entries: list[Any] = [(function, name) for name, function in self.functions.items() if name in names]
        for name, cls in self.classes.items():
            if name not in names:
                continue
            entries.append((_uncallable(cls), name))
            # BUILD checks the type of the rebuilt object: the real class must be listed too, under a name
            # with no dot, which no pickle can ask for (the unpickler looks globals up as "module.name")
            entries.append((cls, f"studio-rebuilt-{id(cls)}"))
        return entries


STATE_DICT = AllowList()
"""Plain state dicts (tensors in dicts and lists) need nothing beyond torch's own allow-list."""

_STANDINS: dict[type, type] = {}


def _uncallable(cls: type) -> type:
    """A stand-in for `cls`: the unpickler's NEWOBJ and REDUCE on it both give a bare `cls` instance.

    `__new__` returning an object that is not an instance of the stand-in makes Python skip `__init__`, so
    no constructor of `cls` ever runs with arguments from the file.
    """
    standin = _STANDINS.get(cls)
    if standin is None:

        def bare_instance(_standin: type, *_args: Any, **_kwargs: Any) -> Any:
            return object.__new__(cls)

        standin = type(f"Rebuilt{cls.__name__}", (), {"__new__": bare_instance, "__module__": __name__})
        _STANDINS[cls] = standin
    return standin


def _trust_store() -> Path:
    return weights_dir().parent / TRUSTED_FILE


def _trusted_digests() -> set[str]:
    try:
        return set(json.loads(_trust_store().read_text(encoding="utf-8")).get("sha256", []))
    except (OSError, ValueError, AttributeError):
        return set()


def trust_checkpoint(path: Path | str) -> str:
    """Remember that the user trusts this exact file (by content); returns its sha256."""
    digest = sha256_of(Path(path))
    store = _trust_store()
    store.parent.mkdir(parents=True, exist_ok=True)
    digests = sorted(_trusted_digests() | {digest})
    temporary = store.with_name(store.name + ".tmp")
    temporary.write_text(json.dumps({"sha256": digests}, indent=1), encoding="utf-8")
    os.replace(temporary, store)
    return digest


def is_trusted(path: Path | str) -> bool:
    """True when the user trusts every checkpoint (TRUST_ENV) or this file's content."""
    return is_truthy(TRUST_ENV) or sha256_of(Path(path)) in _trusted_digests()


_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_STACK_NEUTRAL_OPS = {"PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "MARK"}


def _pickle_globals(data: IO[bytes]) -> set[str]:
    """The globals one pickle names, read with pickletools (nothing is unpickled).

    STACK_GLOBAL (protocol 4) takes its module and name from the stack: the strings pushed (or fetched from
    the memo) just before it. A crafted stream could mislead this listing, but not the load: the restricted
    unpickler checks every global it meets on its own.
    """
    names: set[str] = set()
    pushed: list[str | None] = []
    memo: dict[int, str | None] = {}
    for op, arg, _position in pickletools.genops(data):
        if op.name in _STRING_OPS:
            pushed.append(arg if isinstance(arg, str) else None)
        elif op.name in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            # Python 2 names (__builtin__.set) as the unpickler maps them, like torch's own reader
            module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module), name))
            names.add(f"{module}.{name}")
            pushed.append(None)
        elif op.name == "STACK_GLOBAL":
            module, name = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            names.add(f"{module}.{name}" if module is not None and name is not None else "an unnamed global")
            pushed.append(None)
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            memo[int(arg) if arg is not None else len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif op.name not in _STACK_NEUTRAL_OPS:
            pushed.append(None)
    return names


def checkpoint_globals(path: Path) -> set[str]:
    """Every global the checkpoint's pickles name (torch's zip format, or the legacy sequence of pickles)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            records = [name for name in archive.namelist() if name.endswith(".pkl")]
            found: set[str] = set()
            for record in records:
                with archive.open(record) as data:
                    found |= _pickle_globals(io.BytesIO(data.read()))
            return found
    found = set()
    with path.open("rb") as data:
        for _ in range(5):  # magic number, protocol, system info, the object, storage keys; then raw storages
            found |= _pickle_globals(data)
    return found


def load_checkpoint(path: Path | str, allowed: AllowList = STATE_DICT) -> Any:
    """The unpickled checkpoint, on the CPU, having allowed only the globals in `allowed` (see the module doc).

    Raises UntrustedCheckpointError naming the first global outside the list (unless the user trusts the
    file), WeightsError for a missing or damaged file.
    """
    import pickle

    import torch
    from torch._weights_only_unpickler import _get_allowed_globals  # torch's own tensor and container types

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} not found")
    try:
        try:
            named = checkpoint_globals(path)
        except (ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as exc:
            raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({_first_line(exc)})") from None
        foreign = sorted(named - allowed.names() - set(_get_allowed_globals()))
        if foreign:
            raise UntrustedCheckpointError(path, foreign[0])
        with _LOAD_LOCK:
            saved = torch.serialization.get_safe_globals()
            torch.serialization.clear_safe_globals()  # globals other code registered are not ours to allow
            torch.serialization.add_safe_globals(allowed.torch_entries(named))
            try:
                with warnings.catch_warnings():  # torch warns about pickle protocols: the error says enough
                    warnings.simplefilter("ignore")
                    return torch.load(str(path), map_location="cpu", weights_only=True)
            finally:
                torch.serialization.clear_safe_globals()
                torch.serialization.add_safe_globals(saved)
    except UntrustedCheckpointError as exc:
        if is_trusted(path):
            return _load_trusted(path)
        raise exc from None
    except pickle.UnpicklingError as exc:
        # the restricted unpickler refused something the listing did not show (an object it cannot rebuild)
        if is_trusted(path):
            return _load_trusted(path)
        raise UntrustedCheckpointError(path, f"something Studio does not rebuild ({_first_line(exc)})") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError, AttributeError) as exc:
        # torch raises these for a truncated zip, a file that is no pickle, a damaged record
        raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({_first_line(exc)})") from None


def _load_trusted(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # a trusted file may still be damaged; torch raises many types
        raise WeightsError(f"{path} is not a valid PyTorch checkpoint ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


_HANDOVER_LOCK = threading.Lock()


@contextmanager
def handed_over(module: Any, attribute: str, replacement: Callable[..., Any]) -> Iterator[None]:
    """Replace the function a library loads files with (`module.attribute`) while the block runs.

    Plugins use it to give a library the object `load_checkpoint` loaded instead of letting it unpickle
    the file. A library version without that function is refused rather than left to open the file itself.
    """
    original = getattr(module, attribute, None)
    if not callable(original):
        raise WeightsError(
            f"this version of {module.__name__.split('.')[0]} loads checkpoints in a way Studio cannot check "
            f"({module.__name__}.{attribute} is gone); install the version Studio supports"
        )
    with _HANDOVER_LOCK:
        setattr(module, attribute, replacement)
        try:
            yield
        finally:
            setattr(module, attribute, original)
