"""Plugin discovery, the LRU model cache, device choice and `studio models`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from studio.cli.main import main
from studio.core.errors import NotFoundError, StudioError
from studio.models import registry
from studio.models.device import pick_device, use_half
from studio.models.protocols import PluginSpec


def test_shipped_detectors_are_discovered():
    ids = {spec.id for spec in registry.all_plugins(task="detect")}
    assert {"opencv-haar", "yolo", "rtdetr", "yolo-world", "yoloe"} <= ids
    haar = registry.get_plugin("opencv-haar")
    assert haar.needs_weights is False and haar.task == "detect"


def test_unknown_plugin_lists_the_known_ids():
    with pytest.raises(NotFoundError, match=r"no model plugin 'nope'.*opencv-haar"):
        registry.get_plugin("nope")


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(monkeypatch):
    good = EntryPoint("opencv_haar", "studio_plugins.opencv_haar:SPECS", registry.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "studio_plugins.does_not_exist:SPECS", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [good, broken])
    registry._discover.cache_clear()
    try:
        assert [s.id for s in registry.all_plugins()] == ["opencv-haar"]
        assert "No module named 'studio_plugins.does_not_exist'" in registry.broken_plugins()["broken"]
    finally:
        registry._discover.cache_clear()


def test_model_cache_evicts_the_least_recently_used():
    cache = registry.ModelCache(capacity=2)
    built: list[str] = []

    def build(name: str):
        return lambda: built.append(name) or name

    cache.get_or_load("a", build("a"))
    cache.get_or_load("b", build("b"))
    cache.get_or_load("a", build("a"))  # a is now the most recent
    cache.get_or_load("c", build("c"))  # evicts b
    assert built == ["a", "b", "c"]
    assert cache.keys() == ["a", "c"]
    cache.get_or_load("b", build("b"))
    assert built[-1] == "b" and cache.keys() == ["c", "b"]


def test_load_model_reuses_the_cached_model(monkeypatch):
    calls: list[dict] = []
    spec = PluginSpec(id="fake", family="t", task="detect", title="fake", load=lambda **kw: calls.append(kw) or object())
    monkeypatch.setattr(registry, "_discover", lambda: ({"fake": spec}, {}))
    monkeypatch.setattr(registry, "MODEL_CACHE", registry.ModelCache(2))
    first = registry.load_model("fake", device="cpu")
    assert registry.load_model("fake", device="cpu") is first
    assert calls == [{"weights": None, "device": "cpu"}]


def test_device_choice_on_a_cpu_machine():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert pick_device(None) in {"cpu", "mps"}
    assert pick_device("CPU") == "cpu"
    with pytest.raises(StudioError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(StudioError, match="unknown device 'tpu'"):
        pick_device("tpu")
    assert use_half("cuda:0") and not use_half("cpu")


def test_studio_models_json_lists_plugins_and_weights(capsys):
    assert main(["models", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    plugins = {p["id"]: p for p in document["plugins"]}
    assert plugins["opencv-haar"]["ready"] is True
    yolo = plugins["yolo"]
    assert any(w["name"] == "yolo11n.pt" and w["url"].endswith("yolo11n.pt") for w in yolo["weights"])
    assert all(w["downloaded"] is False for w in yolo["weights"])  # the test data dir is empty


def test_studio_help_imports_no_model_library():
    code = (
        "import sys\n"
        "from studio.cli.main import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = sorted(m for m in ('torch', 'ultralytics', 'cv2', 'open_clip', 'PySide6') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == ""


def test_auto_device_respects_what_a_plugin_supports(monkeypatch):
    spec = PluginSpec(id="cpu-only", family="t", task="detect", title="t", load=lambda **_: None, devices=("cpu",))
    monkeypatch.setattr(registry, "pick_device", lambda requested: "cuda" if requested in (None, "cuda") else "cpu")
    assert registry.device_for(spec, None) == "cpu" and registry.device_for(spec, "auto") == "cpu"  # best GPU unsupported
    with pytest.raises(StudioError, match="cpu-only runs on cpu, not on cuda"):
        registry.device_for(spec, "cuda")  # an explicit request is not silently changed
