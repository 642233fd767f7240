"""The training worker: ultralytics' trainer in a child process, speaking to its parent through a queue.

A process, not a thread: training holds the GIL and the GPU for minutes, a crash in a native library must
not take the window down, and the process starts with `spawn` so that it shares no Qt or CUDA state with
the parent. Everything passed in and out is plain data (dicts of numbers and strings).

Events put on the queue: {"kind": "batch", "epoch", "epochs", "batch", "batches"} (at most a few per
second), {"kind": "epoch", "epoch", "epochs", "values": {loss and metric name: value}}, and finally
{"kind": "done", "save_dir", "best", "last", "resume", "metrics", "stopped"} or {"kind": "error", "message"}.
Setting the `stop` event makes the trainer stop after the current batch (ultralytics checks
`trainer.stop` between batches), validate, and save its checkpoints as usual.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

BATCH_EVENT_SECONDS = 0.25
"""At most one batch event per this many seconds: progress, not a flood through the pipe."""
RESUME_FILE = "resume.pt"
"""A copy of last.pt taken at each save, with the optimizer state that the final strip removes."""


def _plain(values: dict[str, Any]) -> dict[str, float]:
    return {str(k): round(float(v), 6) for k, v in values.items() if isinstance(v, int | float) or hasattr(v, "item")}


def train(config: dict[str, Any], events: Any, stop: Any) -> None:
    """Run one training (config: see `studio.train.detector.worker_config`); report through `events`."""
    try:
        _train(config, events, stop)
    except BaseException as exc:  # everything goes back to the parent as one message
        events.put({"kind": "error", "message": f"{type(exc).__name__}: {exc}"})


def _train(config: dict[str, Any], events: Any, stop: Any) -> None:
    from studio.models.offline import configure_ultralytics

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which asks for a clean stop
    sys.stdout = sys.stderr  # the parent's stdout may carry JSON; ultralytics' logs go to stderr
    os.environ.setdefault("YOLO_VERBOSE", "False")  # progress comes through the queue, not progress bars
    configure_ultralytics()
    import ultralytics

    model_class = getattr(ultralytics, config["model_class"])
    model = model_class(config["resume"] or config["model"])
    last_batch_event = 0.0

    def on_batch_end(trainer: Any) -> None:
        nonlocal last_batch_event
        if stop.is_set():
            trainer.stop = True
        now = time.monotonic()
        if now - last_batch_event >= BATCH_EVENT_SECONDS:
            last_batch_event = now
            batches = len(trainer.train_loader)
            batch = int(getattr(trainer, "_studio_batch", 0)) % batches + 1
            events.put({"kind": "batch", "epoch": trainer.epoch + 1, "epochs": trainer.epochs,
                        "batch": batch, "batches": batches})
        trainer._studio_batch = int(getattr(trainer, "_studio_batch", 0)) + 1

    def on_epoch_start(trainer: Any) -> None:
        trainer._studio_batch = 0
        trainer._studio_in_epoch = True

    def on_fit_epoch_end(trainer: Any) -> None:
        if not getattr(trainer, "_studio_in_epoch", False):
            return  # the final validation of best.pt: its figures come with the "done" event
        trainer._studio_in_epoch = False
        values = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **(trainer.metrics or {})}
        events.put({"kind": "epoch", "epoch": trainer.epoch + 1, "epochs": trainer.epochs, "values": _plain(values)})

    def on_model_save(trainer: Any) -> None:
        shutil.copyfile(trainer.last, Path(trainer.wdir) / RESUME_FILE)

    model.add_callback("on_train_batch_end", on_batch_end)
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    model.add_callback("on_model_save", on_model_save)
    if config["resume"]:
        arguments = {"resume": config["resume"], "data": config["data"], "device": config["device"]}
    else:
        arguments = {
            "data": config["data"], "epochs": config["epochs"], "imgsz": config["imgsz"], "batch": config["batch"],
            "device": config["device"], "seed": config["seed"], "project": config["project"], "name": config["name"],
            "exist_ok": True, "workers": config["workers"], "plots": False, "verbose": False,
            **config["overrides"],
        }
    model.train(**arguments)
    trainer = model.trainer
    events.put({
        "kind": "done", "save_dir": str(trainer.save_dir), "best": str(trainer.best), "last": str(trainer.last),
        "resume": str(Path(trainer.wdir) / RESUME_FILE), "metrics": _plain(trainer.metrics or {}),
        "stopped": bool(stop.is_set()),
    })
