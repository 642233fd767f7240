"""Embedding models as Studio uses them: which vectors belong together, and loading one by plugin id.

Vectors of different models (or of one architecture with different weights) live in different spaces and
must never be compared. A space is named "<plugin id>:<weights>", the weights being the official file
name, or the base name of a local file or folder the user gave.
"""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import StudioError
from studio.models.protocols import Embedder
from studio.models.registry import get_plugin, load_model


def space_id(plugin_id: str, weights: str | None) -> str:
    """The name of the embedding space of this model and weights (stored with every vector)."""
    spec = get_plugin(plugin_id)
    if weights is None:
        chosen = spec.weights[0].name if spec.weights else "default"
    else:
        chosen = Path(weights).expanduser().name or weights
    return f"{plugin_id}:{chosen}"


def load_embedder(plugin_id: str, *, weights: str | None = None, device: str | None = None) -> Embedder:
    """The loaded (cached) embedding model; a plugin of another task is refused in one line."""
    spec = get_plugin(plugin_id)
    if spec.task != "embed":
        raise StudioError(f"{plugin_id} is a {spec.task} model, not an embedding model (see `studio models`)")
    return load_model(plugin_id, weights=weights, device=device)
