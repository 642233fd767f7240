"""Ask vision-language models about images and regions, and turn the answers into data.

`ask_question` asks one question (streaming the answer to a callback) and stores it; follow-ups continue
the conversation held for that image or region. `ask_batch` asks every image (or every box of a label) as
a model run with progress, cancel, concurrent requests to servers, and resume: re-running an interrupted
batch continues its run and skips what it already answered. `accept_answers` turns a batch's answers into
captions, tags, attributes or labels (undoable), as predictions are accepted. `find_objects` turns the boxes
that grounding models write as text into a run of predictions. `preflight` checks that a model sees images.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from studio.core.errors import NotFoundError, StudioError
from studio.core.shapes import Box
from studio.core.types import Annotation, Answer, Media, ModelRun
from studio.db.project import Project
from studio.jobs.predict import LabelIds, WorkItem, detections_to_annotations
from studio.jobs.runner import CancelCheck, ProgressCallback, ProgressMeter, never_cancelled
from studio.models.protocols import DEFAULT_ASK_PARAMS, AskParams, ChatTurn, VisionQA
from studio.models.registry import device_for, get_plugin, load_model
from studio.models.vqa import (
    PREFLIGHT_COLOURS,
    PREFLIGHT_QUESTION,
    BoxFormat,
    choices_prompt,
    detect_box_format,
    find_prompt,
    flat_colour_image,
    match_choice,
    names_colour,
    parse_boxes,
)

SERVER_PLUGIN = "openai-server"
LOCAL_PLUGIN = "transformers-vqa"
Target = Literal["caption", "tags", "attribute", "label"]
TARGETS: tuple[Target, ...] = ("caption", "tags", "attribute", "label")
TokenCallback = Callable[[str], None]
FIND_PARAMS = AskParams(max_tokens=1024)
"""Box lists are long: room for a few dozen objects."""


@dataclass(frozen=True)
class Backend:
    """A loaded VisionQA model and what is recorded about it with every answer."""

    model: VisionQA
    plugin: str
    name: str
    server: str | None = None
    device: str | None = None
    concurrency: int = 1
    """Requests in flight at once during a batch: servers take several, a local model one."""

    def record(self) -> dict[str, Any]:
        return {"server": self.server, "device": self.device} if self.server else {"device": self.device}


def local_backend(model: str | None = None, *, plugin: str = LOCAL_PLUGIN, device: str | None = None) -> Backend:
    """A local model: `model` is a model id or folder for transformers-vqa (None: its default model)."""
    spec = get_plugin(plugin)
    if spec.task != "ask":
        raise StudioError(f"{plugin} is a {spec.task} model, not one that answers questions")
    chosen = device_for(spec, device)
    loaded: VisionQA = load_model(plugin, weights=model, device=chosen)
    return Backend(loaded, plugin, loaded.model_name, device=chosen)


def server_backend(url: str, model: str, *, concurrency: int = 4, **options: Any) -> Backend:
    """A model behind an OpenAI-compatible server (options: api_key_env, stream, timeouts, retries)."""
    if concurrency < 1:
        raise StudioError(f"concurrency must be 1 or more, got {concurrency}")
    client = get_plugin(SERVER_PLUGIN).load(base_url=url, model=model, **options)
    return Backend(client, SERVER_PLUGIN, model, server=client.base_url, concurrency=concurrency)


@dataclass
class Streamed:
    """One answer as it was generated."""

    text: str = ""
    seconds: float = 0.0
    first_token_seconds: float | None = None
    cancelled: bool = False


def stream_answer(
    backend: Backend,
    image: np.ndarray,
    question: str,
    *,
    region: Box | None = None,
    history: Sequence[ChatTurn] = (),
    params: AskParams = DEFAULT_ASK_PARAMS,
    on_token: TokenCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> Streamed:
    """Run one question through the backend, passing each piece to `on_token`; stops early on cancel."""
    result = Streamed()
    started = time.perf_counter()
    pieces = backend.model.ask(image, question, region=region, history=history, params=params)
    try:
        for piece in pieces:
            if result.first_token_seconds is None:
                result.first_token_seconds = time.perf_counter() - started
            result.text += piece
            if on_token is not None:
                on_token(piece)
            if cancel():
                result.cancelled = True
                break
    finally:
        pieces.close()  # stops generation / closes the HTTP stream when we left early
        result.seconds = time.perf_counter() - started
    return result


# ---- one question ----------------------------------------------------------------------------------


def _region(project: Project, media: Media, box: Box | None, annotation_id: int | None) -> tuple[Box | None, int | None]:
    if box is not None and annotation_id is not None:
        raise StudioError("ask about a box or an annotation, not both")
    if annotation_id is not None:
        annotation = project.get_annotation(annotation_id)
        if annotation.media_id != media.id:
            raise StudioError(f"annotation {annotation_id} is not on {media.name}")
        x, y, w, h = annotation.shape.bbox()
        return Box(x, y, x + w, y + h), annotation_id
    if box is not None and (box.x2 <= 0 or box.y2 <= 0 or box.x1 >= media.width or box.y1 >= media.height):
        raise StudioError(f"the box {box} lies outside {media.name} ({media.width}x{media.height})")
    return box, None


def conversation_of(project: Project, media_id: int, *, frame: int = 0, region: Box | None = None,
                    annotation_id: int | None = None) -> list[Answer]:
    """The latest conversation about this image or region (outside batch runs), oldest answer first."""
    asked = [
        a for a in project.answers(media_id, frame=frame, annotation_id=annotation_id)
        if a.run_id is None and a.annotation_id == annotation_id and (annotation_id is not None or a.region == region)
    ]
    if not asked:
        return []
    latest = asked[-1].conversation
    return [a for a in asked if a.conversation == latest and a.status == "complete"]


def ask_question(
    project: Project,
    media_id: int,
    question: str,
    *,
    backend: Backend,
    frame: int = 0,
    box: Box | None = None,
    annotation_id: int | None = None,
    params: AskParams = DEFAULT_ASK_PARAMS,
    follow_up: bool = True,
    on_token: TokenCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> Answer:
    """Ask about an image (or a box of it), stream the answer to `on_token`, store and return it.

    With `follow_up` the question continues the latest conversation about the same image or region. A
    cancelled answer is stored as "cancelled" with what had arrived; a failure stores nothing.
    """
    from studio.io.media import read_media

    if not question.strip():
        raise StudioError("the question is empty")
    media = project.get_media(media_id)
    region, annotation_id = _region(project, media, box, annotation_id)
    earlier = conversation_of(project, media.id, frame=frame, region=region, annotation_id=annotation_id) if follow_up else []
    image = read_media(project, media, frame)
    history = [ChatTurn(a.question, a.answer) for a in earlier]
    streamed = stream_answer(backend, image, question, region=region, history=history, params=params,
                             on_token=on_token, cancel=cancel)
    return project.add_answer(Answer(
        media_id=media.id, frame=frame, region=region, annotation_id=annotation_id,
        conversation=earlier[-1].conversation if earlier else uuid.uuid4().hex[:16],
        question=question, answer=streamed.text, status="cancelled" if streamed.cancelled else "complete",
        backend=backend.plugin, model=backend.name, params={**asdict(params), **backend.record()},
        seconds=round(streamed.seconds, 4),
        first_token_seconds=None if streamed.first_token_seconds is None else round(streamed.first_token_seconds, 4),
    ))


# ---- preflight --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreflightResult:
    colour: str
    answer: str
    seconds: float


def preflight(backend: Backend, colour: str = "red") -> PreflightResult:
    """Show the model a flat-colour image and ask its colour; a StudioError says plainly when the answer
    shows that the image never reached the model (llama.cpp without --mmproj, a text-only model, ...)."""
    if colour not in PREFLIGHT_COLOURS:
        raise StudioError(f"preflight colour must be one of {', '.join(PREFLIGHT_COLOURS)}")
    streamed = stream_answer(backend, flat_colour_image(colour), PREFLIGHT_QUESTION, params=AskParams(max_tokens=16))
    where = f"the server at {backend.server} ({backend.name})" if backend.server else backend.name
    if not names_colour(streamed.text, colour):
        raise StudioError(
            f"{where} did not see the image: shown a plain {colour} picture, it answered {streamed.text.strip()[:80]!r}. "
            "Use a vision model (llama.cpp's server needs --mmproj; Ollama needs a vision model such as llava)"
        )
    return PreflightResult(colour, streamed.text.strip(), round(streamed.seconds, 3))


# ---- batches ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchItem:
    media: Media
    annotation: Annotation | None = None

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.media.id, None if self.annotation is None else self.annotation.id)

    @property
    def region(self) -> Box | None:
        if self.annotation is None:
            return None
        x, y, w, h = self.annotation.shape.bbox()
        return Box(x, y, x + w, y + h)


def batch_items(project: Project, *, label: str | None = None, media_ids: Sequence[int] | None = None) -> list[BatchItem]:
    """Every image (frame 0 of videos) or, with `label`, every human annotation of that label."""
    media = [project.get_media(i) for i in media_ids] if media_ids else project.list_media()
    if label is None:
        return [BatchItem(m) for m in media]
    found = project.find_label(label)
    if found is None:
        raise NotFoundError(f"no label {label!r} (labels: {', '.join(x.name for x in project.labels()) or 'none'})")
    by_id = {m.id: m for m in media}
    return [BatchItem(by_id[a.media_id], a) for a in project.annotations(label_ids=[found.id], frame=0)
            if a.media_id in by_id]


def _check_target(target: Target, label: str | None, choices: Sequence[str] | None, attribute: str | None) -> None:
    if target not in TARGETS:
        raise StudioError(f"answers can go to {', '.join(TARGETS)}, not {target!r}")
    if target in ("caption", "tags") and label is not None:
        raise StudioError(f"answers about boxes become an attribute or a label, not {target}")
    if target in ("attribute", "label") and label is None:
        raise StudioError(f"answers become {target}s of boxes: name the label whose boxes to ask about")
    if target == "tags" and not choices:
        raise StudioError("tags come from a list of choices (e.g. --choices yes,no)")
    if target == "attribute" and not attribute:
        raise StudioError("name the attribute the answers go to")


def _resumable_run(project: Project, plugin: str, params: dict[str, Any]) -> ModelRun | None:
    """The latest unfinished run of the same batch (same question, model, targets and settings)."""
    for run in reversed(project.runs()):
        if run.plugin == plugin and run.params == params:
            return run if run.status != "complete" else None
    return None


def ask_batch(
    project: Project,
    question: str,
    *,
    backend: Backend,
    target: Target = "caption",
    choices: Sequence[str] | None = None,
    label: str | None = None,
    attribute: str | None = None,
    media_ids: Sequence[int] | None = None,
    params: AskParams = DEFAULT_ASK_PARAMS,
    run_name: str | None = None,
    check: bool = True,
    resume: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> ModelRun:
    """Ask every item and store the answers in a run that `accept_answers` turns into data.

    Servers get `backend.concurrency` requests at once. Answers are written as they arrive, so a cancel or a
    crash keeps them; the same call later resumes that run and skips the items it answered. Servers are
    checked with `preflight` first (`check`), so a server that ignores images fails fast, not 1,000 times.
    """
    from studio.io.media import read_media

    if target == "label" and not choices:
        choices = [x.name for x in project.labels()]
    _check_target(target, label, choices, attribute)
    if not question.strip():
        raise StudioError("the question is empty")
    items = batch_items(project, label=label, media_ids=media_ids)
    prompt = choices_prompt(question, choices) if choices else question
    run_params = {
        "kind": "ask", "question": question, "prompt": prompt, "choices": list(choices) if choices else None,
        "target": target, "label": label, "attribute": attribute, "model": backend.name,
        "media_ids": list(media_ids) if media_ids else None, **asdict(params), **backend.record(),
    }
    if check and backend.server:
        preflight(backend)
    run = _resumable_run(project, backend.plugin, run_params) if resume else None
    answered: set[tuple[int, int | None]] = set()
    if run is None:
        run = project.create_run(backend.plugin, name=run_name, weights=backend.name, params=run_params, device=backend.device)
    else:
        answered = {(a.media_id, a.annotation_id) for a in project.answers(run_id=run.id) if a.status == "complete"}
    todo = [item for item in items if item.key not in answered]
    meter = ProgressMeter(len(items), progress)
    done, matched, seconds = len(items) - len(todo), 0, 0.0
    started = time.monotonic()

    def ask_one(item: BatchItem) -> tuple[BatchItem, Streamed]:
        image = read_media(project, item.media)
        return item, stream_answer(backend, image, prompt, region=item.region, params=params, cancel=cancel)

    def stats(**extra: object) -> dict[str, object]:
        return {"items": done, "items_planned": len(items), "matched": matched, "resumed_from": len(items) - len(todo),
                "seconds_per_item": round(seconds / max(1, done - (len(items) - len(todo))), 4),
                "total_seconds": round(time.monotonic() - started, 3), **extra}

    pending: set[Future[tuple[BatchItem, Streamed]]] = set()
    queue = iter(todo)
    meter.update(done)
    try:
        with ThreadPoolExecutor(max_workers=backend.concurrency, thread_name_prefix="ask") as pool:
            while True:
                while not cancel() and len(pending) < backend.concurrency * 2:
                    item = next(queue, None)
                    if item is None:
                        break
                    pending.add(pool.submit(ask_one, item))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    item, streamed = future.result()
                    if streamed.cancelled:
                        continue
                    project.add_answer(Answer(
                        media_id=item.media.id, annotation_id=None if item.annotation is None else item.annotation.id,
                        region=item.region, conversation=f"run-{run.id}", run_id=run.id, question=prompt,
                        answer=streamed.text, backend=backend.plugin, model=backend.name, params=run_params,
                        seconds=round(streamed.seconds, 4),
                        first_token_seconds=None if streamed.first_token_seconds is None else round(streamed.first_token_seconds, 4),
                    ))
                    matched += bool(choices) and match_choice(streamed.text, choices or ()) is not None
                    seconds += streamed.seconds
                    done += 1
                    meter.update(done)
    except KeyboardInterrupt:
        project.finish_run(run.id, "cancelled", stats(partial=True))
        raise
    except Exception as exc:
        project.finish_run(run.id, "failed", stats(error=str(exc), partial=True))
        raise
    if cancel() and done < len(items):
        return project.finish_run(run.id, "cancelled", stats(partial=True))
    return project.finish_run(run.id, "complete", stats(partial=False))


# ---- accepting a batch's answers --------------------------------------------------------------------


@dataclass
class AcceptedAnswers:
    """What `accept_answers` changed, so that `undo_accept_answers` can put it back exactly."""

    captions: dict[int, str | None] = field(default_factory=dict)
    tags: dict[int, list[str]] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.captions) + len(self.tags) + len(self.annotations)


def proposals(project: Project, run: ModelRun) -> Iterator[tuple[Answer, str]]:
    """(answer, value it proposes) of a batch run: the matched choice, or the answer text without choices."""
    choices = run.params.get("choices")
    for answer in project.answers(run_id=run.id):
        if answer.status != "complete":
            continue
        value = match_choice(answer.answer, choices) if choices else answer.answer.strip()
        if value:
            yield answer, value


def accept_answers(project: Project, run_id: int, *, overwrite: bool = False) -> AcceptedAnswers:
    """Write a batch run's answers where it was asked to: captions (only empty ones unless `overwrite`),
    tags (added to the media's), an attribute of each box, or each box's label. One transaction."""
    run = project.get_run(run_id)
    if run.params.get("kind") != "ask":
        raise StudioError(f"run {run.name!r} holds predictions, not answers; accept it as predictions")
    target = run.params["target"]
    accepted = AcceptedAnswers()
    with project.transaction():
        for answer, value in proposals(project, run):
            if target == "caption":
                media = project.get_media(answer.media_id)
                if (media.caption and not overwrite) or media.caption == value:
                    continue
                accepted.captions[media.id] = media.caption
                project.set_caption(media.id, value)
            elif target == "tags":
                before = accepted.tags.get(answer.media_id, project.tags(answer.media_id))
                if value not in before:
                    accepted.tags.setdefault(answer.media_id, before)
                    project.set_tags(answer.media_id, [*project.tags(answer.media_id), value])
            elif answer.annotation_id is not None:
                box = project.get_annotation(answer.annotation_id)
                if target == "label":
                    edited = replace(box, label_id=project.ensure_label(value).id)
                else:
                    edited = replace(box, attributes={**box.attributes, run.params["attribute"]: value})
                if edited != box:
                    accepted.annotations.append(box)
                    project.update_annotation(edited)
    return accepted


def undo_accept_answers(project: Project, accepted: AcceptedAnswers) -> None:
    """Put back the captions, tags and boxes an accept changed."""
    with project.transaction():
        for media_id, caption in accepted.captions.items():
            project.set_caption(media_id, caption)
        for media_id, tags in accepted.tags.items():
            project.set_tags(media_id, tags)
        for box in accepted.annotations:
            project.update_annotation(box)


# ---- grounded answers: "find every X" ---------------------------------------------------------------


def find_objects(
    project: Project,
    what: str,
    *,
    backend: Backend,
    box_format: BoxFormat = "auto",
    media_ids: Sequence[int] | None = None,
    params: AskParams = FIND_PARAMS,
    run_name: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> ModelRun:
    """Ask a grounding model (Qwen2.5-VL, Qwen3-VL, Florence-2, PaliGemma) to find every `what` on each image;
    the boxes it writes become a run of predictions (accepted like any detector's), the answers are kept."""
    from studio.io.media import read_media

    if not what.strip():
        raise StudioError("say what to find")
    items = batch_items(project, media_ids=media_ids)
    prompt_format = box_format if box_format != "auto" else detect_box_format("", backend.name)
    prompt = find_prompt(what, prompt_format if prompt_format != "auto" else "qwen2.5-vl")
    run_params = {"kind": "find", "what": what, "prompt": prompt, "box_format": box_format, "model": backend.name,
                  **asdict(params), **backend.record()}
    run = project.create_run(backend.plugin, name=run_name, weights=backend.name, params=run_params, device=backend.device)
    meter = ProgressMeter(len(items), progress)
    done = predictions = 0
    label_id = LabelIds(project)
    try:
        meter.update(0)
        for item in items:
            if cancel():
                return project.finish_run(run.id, "cancelled", {"items": done, "predictions": predictions, "partial": True})
            streamed = stream_answer(backend, read_media(project, item.media), prompt, params=params, cancel=cancel)
            found = parse_boxes(streamed.text, (item.media.width, item.media.height), box_format=box_format,
                                model_name=backend.name, default_label=what.strip())
            with project.transaction():
                project.add_answer(Answer(
                    media_id=item.media.id, conversation=f"run-{run.id}", run_id=run.id, question=prompt,
                    answer=streamed.text, status="cancelled" if streamed.cancelled else "complete",
                    backend=backend.plugin, model=backend.name, params=run_params, seconds=round(streamed.seconds, 4),
                    first_token_seconds=streamed.first_token_seconds,
                ))
                predictions += project.add_annotations(
                    detections_to_annotations(WorkItem(item.media, 0), found, run.id, label_id)
                )
            done += 1
            meter.update(done)
    except Exception as exc:
        project.finish_run(run.id, "failed", {"items": done, "predictions": predictions, "error": str(exc)})
        raise
    return project.finish_run(run.id, "complete", {"items": done, "predictions": predictions, "partial": False})
