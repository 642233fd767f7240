"""Plugin discovery and the model cache.

Plugins are found through the `studio.plugins` entry-point group: plugins/ ships with Studio and any
installed package can add its own. An entry point names a module attribute holding a `PluginSpec` (or a
sequence of them). Plugin modules import no heavy library at top level, so listing plugins is cheap; a
plugin that fails to import is reported by `broken_plugins()` instead of breaking every other plugin.

`load_model` calls `spec.load(weights=..., device=...)` with the weights string exactly as the user gave it
(None: the plugin's default) and a device from `pick_device`; a plugin that needs a file resolves it with
`studio.models.weights.resolve_weights(spec, weights)`. Models are kept in a small LRU cache so switching
images does not reload them, while switching between many models does not exhaust GPU memory.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from studio.core.errors import NotFoundError, StudioError
from studio.core.types import TrainedModel
from studio.models.device import free_device_memory, pick_device
from studio.models.protocols import PluginSpec, Task
from studio.models.weights import weights_dir

ENTRY_POINT_GROUP = "studio.plugins"
CACHE_SIZE_ENV = "STUDIO_MODEL_CACHE_SIZE"
DEFAULT_CACHE_SIZE = 2


@cache
def _discover() -> tuple[dict[str, PluginSpec], dict[str, str]]:
    """Import every plugin module once: (specs by id, error message by broken entry-point name)."""
    specs: dict[str, PluginSpec] = {}
    broken: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # any import-time failure of a third-party plugin must not be fatal
            broken[point.name] = f"{type(exc).__name__}: {exc}"
            continue
        candidates = loaded if isinstance(loaded, Sequence) else [loaded]
        for spec in candidates:
            if not isinstance(spec, PluginSpec):
                broken[point.name] = f"{point.value} is not a PluginSpec (got {type(spec).__name__})"
            elif spec.id in specs:
                broken[point.name] = f"plugin id {spec.id!r} is already used by another plugin"
            else:
                specs[spec.id] = spec
    return specs, broken


def all_plugins(task: Task | None = None) -> list[PluginSpec]:
    """Every plugin that imported fine (only those for `task` when given), sorted by id."""
    specs = _discover()[0].values()
    return sorted((s for s in specs if task is None or s.task == task), key=lambda s: s.id)


def broken_plugins() -> dict[str, str]:
    """Entry points that failed to load, with why: shown by `studio models` and the model panel."""
    return dict(_discover()[1])


def get_plugin(plugin_id: str) -> PluginSpec:
    specs = _discover()[0]
    if plugin_id not in specs:
        raise NotFoundError(f"no model plugin {plugin_id!r} (plugins: {', '.join(sorted(specs)) or 'none'})")
    return specs[plugin_id]


class ModelCache:
    """Least-recently-used cache of loaded models; evicting one frees its (GPU) memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._models: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()

    def get_or_load(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The cached model for `key`, or `build()`'s result, cached (evicting the least recently used)."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            model = build()
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
                free_device_memory()
            return model

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
        free_device_memory()


MODEL_CACHE = ModelCache(int(os.environ.get(CACHE_SIZE_ENV, DEFAULT_CACHE_SIZE)))


def device_for(spec: PluginSpec, requested: str | None) -> str:
    """The device `spec` runs on: "auto" (or None) picks the best one the plugin supports; an explicit
    request the plugin cannot honour is an error. A CPU-only plugin (Haar, GrabCut) never imports torch to ask."""
    if spec.devices == ("cpu",) and (requested or "auto").strip().lower() in {"auto", "cpu"}:
        return "cpu"
    if requested is None or requested.strip().lower() == "auto":
        best = pick_device(None)
        return best if not spec.devices or best.split(":")[0] in spec.devices else spec.devices[0]
    chosen = pick_device(requested)
    if spec.devices and chosen.split(":")[0] not in spec.devices:
        raise StudioError(f"{spec.id} runs on {', '.join(spec.devices)}, not on {chosen}")
    return chosen


def load_model(plugin_id: str, *, weights: str | None = None, device: str | None = None) -> Any:
    """The plugin's model object (Detector, Segmenter, ...) for these weights on this device, cached."""
    spec = get_plugin(plugin_id)
    chosen = device_for(spec, device)
    return MODEL_CACHE.get_or_load(
        (plugin_id, weights, chosen), lambda: spec.load(weights=weights, device=chosen)
    )


def weights_status(spec: PluginSpec) -> dict[str, Any]:
    """What `studio models --json` prints for a plugin: metadata and which weights files are present."""
    folder = weights_dir()
    files = []
    for w in spec.weights:
        path = folder / w.name
        files.append(
            {
                "name": w.name,
                "url": w.url,
                "sha256": w.sha256,
                "size_bytes": w.size_bytes,
                "description": w.description,
                "downloaded": path.is_file(),
                "path": str(path),
            }
        )
    return {
        "id": spec.id,
        "family": spec.family,
        "task": spec.task,
        "title": spec.title,
        "devices": list(spec.devices),
        "needs_weights": spec.needs_weights,
        "ready": not spec.needs_weights or any(f["downloaded"] for f in files),
        "weights": files,
        "options": {k: v for k, v in spec.options.items() if isinstance(v, str | int | float | bool | list | tuple)},
    }


def trained_model_status(model: TrainedModel, weights: Path) -> dict[str, Any]:
    """What `studio models PROJECT --json` prints for a model trained on the project: the same fields as a
    plugin's, plus the plugin that runs it, its training status and metrics."""
    spec = get_plugin(model.plugin)
    return {
        "id": model.name,
        "family": "project",
        "task": model.task,
        "title": f"trained from {model.base} ({model.status})",
        "devices": list(spec.devices),
        "needs_weights": True,
        "ready": model.weights is not None and weights.is_file(),
        "weights": [{"name": weights.name, "path": str(weights), "sha256": model.sha256, "downloaded": weights.is_file()}],
        "options": {},
        "plugin": model.plugin,
        "status": model.status,
        "metrics": model.metrics,
    }


__all__ = [
    "ENTRY_POINT_GROUP",
    "MODEL_CACHE",
    "ModelCache",
    "all_plugins",
    "broken_plugins",
    "device_for",
    "get_plugin",
    "load_model",
    "trained_model_status",
    "weights_status",
]
