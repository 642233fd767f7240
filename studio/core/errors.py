"""Errors a user can act on. The CLI prints their message as one line; the GUI shows it in a dialog."""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error caused by input or environment rather than by a bug in Studio."""


class InvalidShapeError(StudioError, ValueError):
    """A shape's coordinates are malformed (NaN, negative size, too few points, ...)."""


class ProjectError(StudioError):
    """A project cannot be created or opened (missing, not a project, newer schema, ...)."""


class MediaError(StudioError):
    """A media file is missing, unreadable, corrupt or of an unsupported type."""


class FormatError(StudioError):
    """A dataset file is malformed, truncated or inconsistent."""


class NotFoundError(StudioError, KeyError):
    """A named thing (run, label, media, model) does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; users should not see the quotes
        return str(self.args[0]) if self.args else ""


class CancelledError(StudioError):
    """A job was cancelled by the user; what it wrote before stopping is kept and marked partial."""
