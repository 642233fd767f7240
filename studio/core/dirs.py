"""Studio's directories on this machine: the one place that decides where settings, data and caches go.

Each has an environment override (tests and portable installs use them) and otherwise follows the
platform's conventions through platformdirs (~/.config/studio, ~/.local/share/studio, ~/.cache/studio on
Linux). STUDIO_DATA_DIR alone moves everything but the settings, so one variable isolates a test run.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "studio"


def config_dir() -> Path:
    """Per-user settings (last project, theme): STUDIO_CONFIG_DIR, else the platform's config dir."""
    if override := os.environ.get("STUDIO_CONFIG_DIR"):
        return Path(override)
    import platformdirs  # imported when asked: `studio --help` stays fast

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Downloaded weights and the demo project: STUDIO_DATA_DIR, else the platform's data dir."""
    if override := os.environ.get("STUDIO_DATA_DIR"):
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Thumbnails and segmenter embeddings, safe to delete: STUDIO_CACHE_DIR, else STUDIO_DATA_DIR/cache,
    else the platform's cache dir."""
    if override := os.environ.get("STUDIO_CACHE_DIR"):
        return Path(override)
    if data := os.environ.get("STUDIO_DATA_DIR"):
        return Path(data) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
