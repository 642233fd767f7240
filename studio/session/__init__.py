"""The labelling session below the window: evented state and editing rules, no Qt (see model.py)."""

from studio.session.model import Session

__all__ = ["Session"]
