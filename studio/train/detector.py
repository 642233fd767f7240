"""Train an ultralytics detector or segmenter on the project, register it as a model of the project, validate
it and compare it with the previous best.

The dataset is written from the project's human annotations with its stored split (studio.train.dataset)
into a temporary folder; training runs in a spawned worker process (studio.train.worker) whose per-epoch
losses and mAP are stored as they come, so a crash keeps the history. Cancel stops within one batch; the
worker still saves its checkpoint, so a cancelled model is usable and can be resumed. Weights stay under
PROJECT/models/NAME/, with their sha256 in the project. Then the new model predicts on the validation images
(a model run), which is evaluated on those images and compared with the previous best model's run there.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import queue
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.types import ModelRun, TrainedModel, TrainTask
from studio.db.project import Project
from studio.eval.compare import Comparison, compare_runs
from studio.eval.evaluate import evaluate
from studio.jobs.predict import run_detection
from studio.jobs.runner import CancelCheck, never_cancelled
from studio.models.registry import all_plugins, device_for, get_plugin
from studio.models.weights import resolve_weights, sha256_of
from studio.train import worker
from studio.train.dataset import SPLIT_SETTING, SplitChoice, TrainingSet, build_training_set, stored_choice

MODELS_DIR = "models"
"""Folder of the project directory that holds trained models, one sub-folder per model."""
VALIDATION_CONF = 0.01
"""Score threshold of the validation run: low, as mAP needs the whole precision-recall curve."""
POLL_SECONDS = 0.1
"""How often the parent looks at the cancel check while waiting for the worker."""


@dataclass(frozen=True)
class TrainOptions:
    """What `studio train` and the Train dock ask for. `overrides` go to ultralytics' trainer as they are
    (advanced settings such as optimizer or augmentation; tests use them to train tiny models fast)."""

    task: TrainTask = "detect"
    model: str = "yolo11n.pt"
    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    split: float | None = None
    seed: int | None = None
    labels: tuple[str, ...] | None = None
    device: str | None = None
    name: str | None = None
    workers: int = 2
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainProgress:
    """One report of the worker: a batch (values None) or the end of an epoch (losses and metrics)."""

    epoch: int
    epochs: int
    batch: int = 0
    batches: int = 0
    values: dict[str, float] | None = None


@dataclass
class TrainResult:
    model: TrainedModel
    validation_run: ModelRun | None = None
    previous: TrainedModel | None = None
    comparison: Comparison | None = None

    def to_json(self, project: Project) -> dict[str, Any]:
        """What `studio train --json` prints."""
        weights = str(project.root / self.model.weights) if self.model.weights else None
        return {"model": self.model.name, "weights": weights, "status": self.model.status, "metrics": self.model.metrics}


@dataclass(frozen=True)
class BaseModel:
    """The model a training starts from: which plugin runs the result and what ultralytics loads."""

    plugin: str
    model_class: str
    location: str


def _ultralytics_configs() -> Path | None:
    """ultralytics' bundled model configs, found without importing it (the import takes seconds)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"


def _known_config(name: str) -> bool:
    folder = _ultralytics_configs()
    if folder is None:
        return False
    # ultralytics reads yolo11n.yaml as yolo11.yaml at scale n (see its yaml_model_load)
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem) + Path(name).suffix
    return any(folder.rglob(name)) or any(folder.rglob(unified))


def resolve_base(model: str, task: TrainTask) -> BaseModel:
    """Check the base model before anything is written: its family fits the task, the file or config exists."""
    if task not in ("detect", "segment"):
        raise StudioError(f"--task is detect or segment, not {task!r}")
    name = Path(model).name.lower()
    rtdetr = name.startswith("rtdetr")
    segmenter = "-seg" in name
    if rtdetr and task == "segment":
        raise StudioError("RT-DETR detects boxes only; use a YOLO -seg model (e.g. yolo11n-seg.pt) for --task segment")
    if task == "segment" and not segmenter:
        raise StudioError(f"{model} is a detection model; use its -seg variant (e.g. yolo11n-seg.pt) for --task segment")
    if task == "detect" and segmenter:
        raise StudioError(f"{model} is a segmentation model; pass --task segment, or a detection model")
    plugin = "rtdetr" if rtdetr else "yolo"
    if name.endswith((".yaml", ".yml")):
        local = Path(model).expanduser()
        if local.is_file():
            return BaseModel(plugin, "RTDETR" if rtdetr else "YOLO", str(local.resolve()))
        if not _known_config(name):
            raise StudioError(f"{model} is neither a model config file nor one of ultralytics' (e.g. yolo11n.yaml)")
        return BaseModel(plugin, "RTDETR" if rtdetr else "YOLO", model)
    if not name.endswith(".pt"):
        raise StudioError(f"--model takes a .pt weights file or name, or a model .yaml; got {model!r}")
    path = resolve_weights(get_plugin(plugin), model)
    # the worker's ultralytics unpickles the file whole: the plugin's restricted loader vets it first
    get_plugin(plugin).load(weights=str(path), device="cpu")
    return BaseModel(plugin, "RTDETR" if rtdetr else "YOLO", str(path))


def _unique_name(project: Project, wanted: str | None, base: str) -> str:
    taken = {m.name for m in project.trained_models()} | {spec.id for spec in all_plugins()}
    if wanted is not None:
        if wanted in taken:
            raise StudioError(f"the model name {wanted!r} is taken (by a trained model or a plugin); choose another")
        return wanted
    stem = Path(base).stem
    n = 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def _final_metrics(values: dict[str, float]) -> dict[str, float]:
    """ultralytics' metric names to short ones: (B) boxes, (M) masks."""
    short = {"precision": "precision", "recall": "recall", "mAP50": "map50", "mAP50-95": "map"}
    result = {}
    for key, value in values.items():
        match = re.fullmatch(r"metrics/(.+)\((B|M)\)", key)
        if match and match.group(1) in short:
            result[short[match.group(1)] + ("" if match.group(2) == "B" else "_mask")] = value
    return result


def _run_worker(
    config: dict[str, Any],
    project: Project,
    model: TrainedModel,
    progress: Callable[[TrainProgress], None] | None,
    cancel: CancelCheck,
) -> dict[str, Any]:
    """Run the worker process to its end, storing each epoch's values; returns its "done" event."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    process = context.Process(target=worker.train, args=(config, events, stop), daemon=True, name="studio-train")
    process.start()
    history = list(model.history)
    try:
        while True:
            try:
                if not stop.is_set() and cancel():
                    stop.set()
                event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not process.is_alive() and events.empty():
                    raise StudioError(f"the training process ended unexpectedly (exit code {process.exitcode})") from None
                continue
            except KeyboardInterrupt:  # Ctrl+C is Cancel: the worker stops after its batch and saves
                stop.set()
                continue
            if event["kind"] == "batch" and progress is not None:
                progress(TrainProgress(event["epoch"], event["epochs"], event["batch"], event["batches"]))
            elif event["kind"] == "epoch":
                history.append({"epoch": event["epoch"], **event["values"]})
                project.update_trained_model(model.id, history=history)
                if progress is not None:
                    progress(TrainProgress(event["epoch"], event["epochs"], values=event["values"]))
            elif event["kind"] == "error":
                raise StudioError(f"training failed: {event['message']}")
            elif event["kind"] == "done":
                return event
    except BaseException:
        stop.set()
        raise
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()


def worker_config(
    options: TrainOptions, base: BaseModel, data: TrainingSet, folder: Path, name: str, device: str,
    resume: Path | None = None,
) -> dict[str, Any]:
    """The plain-data settings the worker process trains with."""
    return {
        "model": base.location, "model_class": base.model_class, "data": str(data.data_yaml),
        "epochs": options.epochs, "imgsz": options.imgsz, "batch": options.batch, "device": device,
        "seed": options.seed or 0, "project": str(folder), "name": "train", "workers": options.workers,
        "overrides": dict(options.overrides), "resume": str(resume) if resume else None, "model_name": name,
    }


def train_model(
    project: Project,
    options: TrainOptions,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: CancelCheck = never_cancelled,
    validate: bool = True,
) -> TrainResult:
    """Train a new model of the project (see the module docstring). Bad input raises before anything is stored."""
    if options.epochs < 1 or options.imgsz < 32 or options.batch < 1:
        raise StudioError("--epochs and --batch must be 1 or more, --imgsz 32 or more")
    base = resolve_base(options.model, options.task)
    spec = get_plugin(base.plugin)
    device = device_for(spec, options.device)
    stored = stored_choice(project)
    choice = SplitChoice(
        options.split if options.split is not None else (stored.fraction if stored else SplitChoice().fraction),
        options.seed if options.seed is not None else (stored.seed if stored else SplitChoice().seed),
    )
    name = _unique_name(project, options.name, options.model)
    folder = project.root / MODELS_DIR / name
    split_before = (project.split(), project.get_setting(SPLIT_SETTING))
    with tempfile.TemporaryDirectory(prefix="studio-train-") as temp:
        data = build_training_set(project, Path(temp) / "data", choice=choice, labels=options.labels,
                                  segments=options.task == "segment")
        params = {**asdict(options), "labels": list(data.labels), "device": device, "images": data.images}
        model = project.create_trained_model(
            name=name, task=options.task, plugin=base.plugin, base=options.model, params=params,
            split=data.split_record(choice),
        )
        config = worker_config(options, base, data, folder, name, device)
        try:
            model = _train_and_register(project, model, config, progress, cancel)
        except BaseException:
            if not any(m.id == model.id for m in project.trained_models()):  # nothing kept: undo the new split
                project.set_split(split_before[0], replace_all=True)
                project.set_setting(SPLIT_SETTING, split_before[1])
            raise
    return _validate(project, model) if validate else TrainResult(model)


def resume_training(
    project: Project,
    name: str,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: CancelCheck = never_cancelled,
    validate: bool = True,
) -> TrainResult:
    """Continue a cancelled (or failed) training from its last checkpoint, on the same split."""
    model = project.find_trained_model(name)
    folder = project.root / MODELS_DIR / name
    checkpoint = folder / "train" / "weights" / worker.RESUME_FILE
    if model.status == "complete":
        raise StudioError(f"{name} finished its training; start a new one to train longer")
    if not checkpoint.is_file():
        raise StudioError(f"{name} has no checkpoint to resume from ({checkpoint} is missing)")
    options = TrainOptions(**{k: (tuple(v) if k == "labels" and v else v)
                              for k, v in model.params.items() if k in TrainOptions.__dataclass_fields__})
    base = resolve_base(model.base, model.task)
    choice = SplitChoice(model.split["fraction"], model.split["seed"])
    with tempfile.TemporaryDirectory(prefix="studio-train-") as temp:
        data = build_training_set(project, Path(temp) / "data", choice=choice, labels=model.params.get("labels"),
                                  segments=model.task == "segment")
        project.update_trained_model(model.id, status="running", split=data.split_record(choice))
        config = worker_config(options, base, data, folder, name, str(model.params["device"]), resume=checkpoint)
        model = _train_and_register(project, model, config, progress, cancel)
    return _validate(project, model) if validate else TrainResult(model)


def _train_and_register(
    project: Project, model: TrainedModel, config: dict[str, Any],
    progress: Callable[[TrainProgress], None] | None, cancel: CancelCheck,
) -> TrainedModel:
    folder = Path(config["project"])
    try:
        done = _run_worker(config, project, model, progress, cancel)
    except BaseException as exc:
        learned = project.find_trained_model(model.name).history
        if not (folder / "train" / "weights" / worker.RESUME_FILE).is_file() and not learned:
            # nothing was learned (bad config, no memory): leave no trace of this training
            project.delete_trained_model(model.id)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            project.update_trained_model(model.id, status="failed", metrics={"error": str(exc)},
                                         finished_at=datetime.now(UTC))
        raise
    weights = Path(done["best"]) if Path(done["best"]).is_file() else Path(done["last"])
    return project.update_trained_model(
        model.id, status="cancelled" if done["stopped"] else "complete",
        weights=weights.relative_to(project.root).as_posix(), sha256=sha256_of(weights),
        metrics={**_final_metrics(done["metrics"]), "ultralytics": done["metrics"]}, finished_at=datetime.now(UTC),
    )


def validation_run(project: Project, model: TrainedModel, val_media: Sequence[int]) -> ModelRun:
    """The model's run on exactly these validation media: the stored one, else a new one."""
    wanted = sorted(val_media)
    if model.validation_run_id is not None:
        run = project.get_run(model.validation_run_id)
        if run.status == "complete" and sorted(run.params.get("media_ids") or []) == wanted:
            return run
    run = run_detection(
        project, model.name, device=model.params.get("device"),
        media_ids=wanted, annotated_frames=True, conf=VALIDATION_CONF,
        run_name=_run_name(project, f"{model.name}-val"),
    )
    project.update_trained_model(model.id, validation_run_id=run.id)
    return run


def _run_name(project: Project, wanted: str) -> str:
    taken = {run.name for run in project.runs()}
    n, name = 1, wanted
    while name in taken:
        n += 1
        name = f"{wanted}-{n}"
    return name


def _validate(project: Project, model: TrainedModel) -> TrainResult:
    """Run the model on its validation images, store COCO metrics there, compare with the previous best."""
    val_media = list(model.split.get("val") or [])
    run = validation_run(project, model, val_media)
    iou_type = "bbox"
    if run.stats.get("predictions"):
        result = evaluate(project, pred=run.id, iou_type=iou_type, media_ids=val_media)
        scores = {"val_map": result.metrics["map"], "val_map50": result.metrics["map50"]}
    else:  # a model that finds nothing scores 0 (COCOeval needs at least one prediction)
        scores = {"val_map": 0.0, "val_map50": 0.0}
    model = project.update_trained_model(model.id, metrics={**model.metrics, **scores})
    previous = best_model(project, task=model.task, exclude=model.id)
    if previous is None:
        return TrainResult(model, run)
    previous_run = validation_run(project, previous, val_media)
    if not (previous_run.stats.get("predictions") and run.stats.get("predictions")):
        return TrainResult(model, run, previous)  # a run with no predictions has no errors to rank
    comparison = compare_runs(project, [previous_run.id, run.id], iou_type=iou_type, media_ids=val_media)
    return TrainResult(model, run, previous, comparison)


def best_model(project: Project, *, task: TrainTask, exclude: int | None = None) -> TrainedModel | None:
    """The usable trained model of this task with the highest validation mAP (None when there is none)."""
    candidates = [
        m for m in project.trained_models()
        if m.task == task and m.id != exclude and m.weights and "val_map" in m.metrics
    ]
    return max(candidates, key=lambda m: (m.metrics["val_map"], m.id), default=None)
