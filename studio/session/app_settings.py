"""Per-user settings that outlive a project: the last project opened and the theme.

A small JSON file rather than QSettings, so the Qt-free CLI can read "the last project" and tests can
isolate it with STUDIO_CONFIG_DIR. Per-project state (last image, view, recent labels) lives in the
project itself (Project.set_setting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core import dirs


def config_path() -> Path:
    return dirs.config_dir() / "settings.json"


def load() -> dict[str, Any]:
    """The settings, or {} if there are none yet or the file is damaged (settings are never vital)."""
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update(**values: Any) -> None:
    """Change some settings; a read-only config folder only costs the convenience, so it is ignored."""
    path = config_path()
    data = load() | values
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    except OSError:
        pass


def last_project() -> Path | None:
    """The project opened last, if it still exists."""
    raw = load().get("last_project")
    if isinstance(raw, str) and (Path(raw) / "studio.db").is_file():
        return Path(raw)
    return None
