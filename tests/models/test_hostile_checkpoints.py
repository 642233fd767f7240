"""No code runs from a weights file, through any loader.

A corpus of crafted checkpoints, each of which would create a marker file if it were ever unpickled in
full, is opened through every path Studio has: the plugin load functions, `studio predict --model yolo`
and `studio segment --model mobile-sam | sam-b | sam-vit-b`. Each must end in one clear error line and
leave no marker. The pickles are written opcode by opcode, so they name exactly the globals an attacker
would: reducers under allowed module names (`ultralytics.nn.tasks.os.system`), getattr chains, eval, a
constructor of an allowed class that evals, in pickle protocols 2 and 4, in the zip and the legacy
torch formats, with odd suffixes, shaped as full models and as state dicts.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.models.checkpoints import UntrustedCheckpointError, load_checkpoint, trust_checkpoint
from studio.models.weights import TRUST_ENV, WeightsError
from tests.conftest import write_image

# ---- a tiny pickle assembler ----------------------------------------------------------------------------


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _global(module: str, name: str, protocol: int) -> bytes:
    if protocol >= 4:
        return _text(module) + _text(name) + b"\x93"  # STACK_GLOBAL
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


def _call(function: bytes, *args: bytes) -> bytes:
    return function + b"(" + b"".join(args) + b"tR"  # MARK args TUPLE REDUCE


def _dict(**items: bytes) -> bytes:
    return b"}" + b"".join(_text(key) + value + b"s" for key, value in items.items())  # EMPTY_DICT SETITEM


def _list(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"  # EMPTY_LIST MARK items APPENDS


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def _payloads(marker: Path, protocol: int) -> dict[str, bytes]:
    """Objects that create `marker` when unpickled by a full unpickler."""
    touch = _text(f"touch {marker}")
    g = lambda module, name: _global(module, name, protocol)  # noqa: E731
    getattr_ = g("builtins", "getattr")
    init_globals = _call(getattr_, _call(getattr_, g("ultralytics.nn.tasks", "DetectionModel"), _text("__init__")), _text("__globals__"))
    torch_module = _call(_call(getattr_, init_globals, _text("get")), _text("torch"))
    os_module = _call(getattr_, torch_module, _text("os"))
    layer = _list(_int(-1), _int(1), _text("Conv"), _list(_int(16), _int(3), _int(2)))
    evil_config = _dict(nc=_int(1), activation=_text(f"__import__('os').system('touch {marker}')"),
                        backbone=_list(layer), head=_list())
    return {
        "posix.system": _call(g("posix", "system"), touch),
        "os.system": _call(g("os", "system"), touch),
        "under-ultralytics-prefix": _call(g("ultralytics.nn.tasks", "torch.os.system"), touch),
        "under-torch-prefix": _call(g("torch", "os.system"), touch),
        "builtins.eval": _call(g("builtins", "eval"), _text(f"open({str(marker)!r}, 'w')")),
        "getattr-chain": _call(_call(getattr_, os_module, _text("system")), touch),
        "allowed-class-constructor": _call(g("ultralytics.nn.tasks", "DetectionModel"), evil_config),
    }


def _pickle(body: bytes, protocol: int, shape: str) -> bytes:
    wrapped = _dict(model=body, train_args=b"}") if shape == "model" else _dict(**{"image_encoder.weight": body})
    return bytes([0x80, protocol]) + wrapped + b"."


def _write_zip(path: Path, data: bytes) -> None:
    """torch's zip layout (archive/data.pkl, version, byteorder) with `data` as the pickle."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")


def _write_legacy(path: Path, data: bytes) -> None:
    """torch's pre-1.6 layout: magic number, protocol version, system info, the object, storage keys."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION

    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                                                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    out.write(data)
    pickle.dump([], out, protocol=2)
    path.write_bytes(out.getvalue())


class _Reducer:
    """What an attacker gets from plain `torch.save`: an object whose __reduce__ calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        import os

        return os.system, (self.command,)


SUFFIXES = (".pt", ".PT", ".Pth", ".bin", ".ckpt")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[Path], Path]:
    """(hostile files, the marker any of them would create)."""
    import torch

    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "MARKER"
    files: list[Path] = []
    n = 0
    for protocol in (2, 4):
        for name, body in _payloads(marker, protocol).items():
            for shape in ("model", "state"):
                for writer in (_write_zip, _write_legacy):
                    suffix = SUFFIXES[n % len(SUFFIXES)]
                    n += 1
                    path = folder / f"{name}__p{protocol}-{shape}-{writer.__name__[7:]}-{n}{suffix}"
                    writer(path, _pickle(body, protocol, shape))
                    files.append(path)
        for legacy in (False, True):
            path = folder / f"torch-save__p{protocol}-{'legacy' if legacy else 'zip'}.PT"
            torch.save({"model": _Reducer(f"touch {marker}"), "w": torch.ones(2)}, path, pickle_protocol=protocol,
                       _use_new_zipfile_serialization=not legacy)
            files.append(path)
    return files, marker


def test_the_corpus_really_runs_code_when_unpickled_in_full(corpus, tmp_path):
    """The control: each kind of file does create the marker under a full unpickler (so the tests below mean something)."""
    import torch

    files, marker = corpus
    ran = set()
    for path in files:
        if "allowed-class-constructor" in path.name:
            continue  # needs ultralytics' parser; checked through the yolo loader's control below
        with contextlib.suppress(Exception):  # a payload may fail after running: only the marker matters
            torch.load(path, map_location="cpu", weights_only=False)
        if marker.exists():
            ran.add(path.name[: path.name.index("__") + 4])
            marker.unlink()
    # a dotted name resolves through attributes from pickle protocol 4 on
    assert ran == {f"{kind}__p{protocol}" for kind in ("posix.system", "os.system", "builtins.eval", "getattr-chain", "torch-save")
                   for protocol in (2, 4)} | {"under-ultralytics-prefix__p4", "under-torch-prefix__p4"}


def test_an_allowed_class_called_with_the_files_arguments_would_run_code(corpus):
    """ultralytics' DetectionModel(cfg) evals the activation string: the reason classes are never called."""
    import torch

    files, marker = corpus
    path = next(p for p in files if "allowed-class-constructor__p2-model-zip" in p.name)
    from studio_plugins.ultralytics_detect import _ultralytics

    _ultralytics()
    torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()
    marker.unlink()


def _loaders() -> dict[str, Callable[[str], object]]:
    from studio_plugins import segment_anything_sam, ultralytics_detect, ultralytics_sam

    sam_by_id = {spec.id: spec for spec in ultralytics_sam.SPECS}
    return {
        "yolo": lambda w: ultralytics_detect.SPECS[0].load(weights=w, device="cpu"),
        "rtdetr": lambda w: ultralytics_detect.SPECS[1].load(weights=w, device="cpu"),
        "mobile-sam": lambda w: sam_by_id["mobile-sam"].load(weights=w, device="cpu"),
        "sam2.1-t": lambda w: sam_by_id["sam2.1-t"].load(weights=w, device="cpu"),
        "sam-vit-b": lambda w: segment_anything_sam.SPECS[0].load(weights=w, device="cpu"),
        "load_checkpoint": load_checkpoint,
    }


def test_no_plugin_loader_runs_code_from_any_hostile_file(corpus, tmp_path):
    files, marker = corpus
    for loader_name, load in _loaders().items():
        for path in files:
            weights = path
            if loader_name == "sam2.1-t":  # SAM 2.1 files must say so in their name
                weights = tmp_path / f"sam2.1-{path.name}"
                weights.write_bytes(path.read_bytes())
            with pytest.raises(WeightsError) as caught:
                load(str(weights))
            assert not marker.exists(), f"{loader_name} ran code from {path.name}"
            message = str(caught.value)
            assert "\n" not in message and str(weights) in message, message


@pytest.mark.parametrize("refused", ["posix.system", "torch.os.system", "ultralytics.nn.tasks.torch.os.system", "builtins.eval"])
def test_the_refusal_names_the_global(corpus, refused):
    files, _ = corpus
    kind = {"posix.system": "posix.system", "torch.os.system": "under-torch-prefix",
            "ultralytics.nn.tasks.torch.os.system": "under-ultralytics-prefix", "builtins.eval": "builtins.eval"}[refused]
    path = next(p for p in files if p.name.startswith(f"{kind}__p4-model-zip"))
    with pytest.raises(UntrustedCheckpointError, match=rf"refers to {refused}, .* set {TRUST_ENV}=1"):
        load_checkpoint(path)


@pytest.mark.slow
def test_no_cli_command_runs_code_from_a_hostile_file(corpus, tmp_path, capsys):
    files, marker = corpus
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    image = write_image(tmp_path / "a.png", 32, 32)
    assert main(["add", str(project), str(image)]) == 0
    commands = [
        ["predict", str(project), "--model", "yolo", "--device", "cpu", "--weights"],
        ["segment", str(project), "a.png", "--point", "5,5", "--model", "mobile-sam", "--device", "cpu", "--weights"],
        ["segment", str(project), "a.png", "--point", "5,5", "--model", "sam-b", "--device", "cpu", "--weights"],
        ["segment", str(project), "a.png", "--point", "5,5", "--model", "sam-vit-b", "--device", "cpu", "--weights"],
    ]
    capsys.readouterr()
    for command in commands:
        for path in files:
            assert main([*command, str(path)]) == 1
            assert not marker.exists(), f"{command[0]} {command[4]} ran code from {path.name}"
            err = capsys.readouterr().err
            assert err.startswith("studio: error: ") and err.count("\n") == 1, err


def test_a_real_subprocess_refuses_a_hostile_yolo_file(corpus, tmp_path):
    import subprocess
    import sys

    files, marker = corpus
    project = tmp_path / "p"
    assert main(["new", str(project)]) == 0
    assert main(["add", str(project), str(write_image(tmp_path / "a.png", 32, 32))]) == 0
    path = next(p for p in files if p.name.startswith("under-ultralytics-prefix__p4-model-legacy"))
    done = subprocess.run([sys.executable, "-m", "studio", "predict", str(project), "--model", "yolo", "--weights", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and not marker.exists()
    assert done.stderr.count("\n") == 1 and "ultralytics.nn.tasks.torch.os.system" in done.stderr, done.stderr


# ---- the real checkpoints still load, and trust is explicit -----------------------------------------------


@pytest.mark.slow
def test_saved_ultralytics_models_load_and_predict_like_ultralytics_itself(tmp_path):
    """Checkpoints as ultralytics saves them (pickled model objects) load through the allow-list unchanged."""
    import numpy as np
    import torch
    from studio_plugins import ultralytics_detect as ud

    ultralytics = ud._ultralytics()
    image = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for config, spec in (("yolo11n-seg.yaml", ud.SPECS[0]), ("rtdetr-l.yaml", ud.SPECS[1])):
        model_class = ultralytics.RTDETR if "rtdetr" in config else ultralytics.YOLO
        saved = tmp_path / f"{config}.PT"  # any case of the suffix
        original = model_class(config)
        original.save(saved)
        studio = spec.load(weights=str(saved), device="cpu", imgsz=64)
        ours, theirs = studio.model.model.state_dict(), original.model.state_dict()
        assert ours.keys() == theirs.keys()
        # ultralytics saves weights in half precision
        assert all(torch.equal(ours[key].half(), theirs[key].half()) for key in theirs if theirs[key].is_floating_point())
        if "seg" in config:  # and it predicts as ultralytics' own load of the file does
            found = studio.detect([image], conf=0.0)[0]
            direct = model_class(str(saved)).predict(image, conf=0.0, verbose=False, device="cpu", imgsz=64)[0]
            assert len(found) == len(direct.boxes) > 0
            np.testing.assert_allclose(sorted(d.score for d in found), sorted(direct.boxes.conf.numpy()), rtol=1e-4)


def test_trust_is_explicit_per_file_or_by_environment(tmp_path, monkeypatch):
    import fractions

    import torch

    foreign = tmp_path / "foreign.pth"
    torch.save({"w": torch.ones(2), "ratio": fractions.Fraction(1, 3)}, foreign)
    with pytest.raises(UntrustedCheckpointError, match="fractions.Fraction") as caught:
        load_checkpoint(foreign)
    assert caught.value.global_name == "fractions.Fraction" and caught.value.path == foreign
    monkeypatch.setenv(TRUST_ENV, "1")
    assert load_checkpoint(foreign)["ratio"] == fractions.Fraction(1, 3)
    monkeypatch.delenv(TRUST_ENV)

    from studio.models import trust_checkpoint as exported

    assert exported is trust_checkpoint
    trust_checkpoint(foreign)
    assert load_checkpoint(foreign)["ratio"] == fractions.Fraction(1, 3)
    torch.save({"w": torch.ones(2), "ratio": fractions.Fraction(1, 4)}, foreign)  # other content, same name
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(foreign)


def test_damaged_and_plain_files(tmp_path):
    import torch

    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert load_checkpoint(good)["w"].sum().item() == 2
    for content in (b"", b"\x00not a checkpoint" * 10, good.read_bytes()[:100]):
        bad = tmp_path / "bad.pt"
        bad.write_bytes(content)
        with pytest.raises(WeightsError, match="not a valid PyTorch checkpoint"):
            load_checkpoint(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
