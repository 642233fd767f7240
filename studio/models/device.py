"""Which device a model runs on. torch is imported only when a model is actually loaded."""

from __future__ import annotations

from studio.core.errors import StudioError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(requested: str | None = None) -> str:
    """The device to use: the requested one if it exists here, else the best available (cuda > mps > cpu).

    "cuda:1" style indices are kept. Asking for a device this machine lacks is an error rather than a
    silent fall back to the CPU, so a user never waits ten times longer than expected without knowing.
    """
    import torch

    wanted = (requested or "auto").strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if wanted == "cpu":
        return "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StudioError(f"device {requested!r} asked for, but no CUDA GPU is available here; use --device cpu")
        return wanted
    if wanted == "mps":
        if not torch.backends.mps.is_available():
            raise StudioError("device 'mps' asked for, but Apple's Metal backend is not available here; use --device cpu")
        return "mps"
    raise StudioError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def use_half(device: str) -> bool:
    """Half precision only on CUDA: it roughly doubles throughput there, and is slow or unsupported elsewhere."""
    return device.startswith("cuda")


def free_device_memory() -> None:
    """Give cached GPU memory back after a model was dropped (no-op when torch was never imported)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
