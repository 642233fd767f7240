"""What every background job shares: progress with an ETA, and cooperative cancel.

Jobs are plain functions that take a `progress(done, total, eta_seconds)` callback and a `cancel()` check;
the CLI prints the progress, the GUI runs the same function on a worker thread and shows a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[int, int, float | None], None]
"""Called with (items done, items in all, seconds left or None while unknown)."""
CancelCheck = Callable[[], bool]
"""Returns True once the user asked to stop; jobs check it between batches."""


def never_cancelled() -> bool:
    return False


class ProgressMeter:
    """Turns (done, total) into an ETA from the average pace so far and forwards it to the callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.callback = callback
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        if self.callback is None:
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - done) if done else None
        self.callback(done, self.total, eta)


def format_eta(seconds: float | None) -> str:
    """'1:05' style remaining time, '?' while unknown."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
