"""Zero-shot tagging and relabelling: class names in, image tags or box labels with scores out.

Class texts are the names put into CLIP's 80 ImageNet prompt templates and averaged (the model's
`embed_classes`), images and crops are the stored vectors; scores are softmax probabilities over the given
classes at CLIP's temperature (logit scale 100). Results are a model run like any detector's: image tags
with scores (accepted into human tags with `accept_tags`), or relabelled copies of the boxes (accepted like
detections). Where the project already says what an image or a box is, the run's stats hold the accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from studio.core.errors import StudioError
from studio.core.types import ModelRun
from studio.db.project import Project
from studio.models.protocols import Embedder
from studio.search.query import EmbeddingSet

LOGIT_SCALE = 100.0
"""exp(logit_scale) of trained CLIP models: the softmax temperature their zero-shot scores use."""


def class_names(text: str | Sequence[str]) -> list[str]:
    """Distinct non-empty names from "a,b,c" or a list, in order; fewer than two is an error."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    unique = list(dict.fromkeys(n for n in names if n))
    if len(unique) < 2:
        raise StudioError(f"zero-shot tagging needs at least two class names (got {unique or 'none'})")
    return unique


def class_vectors(embedder: Embedder, classes: Sequence[str]) -> np.ndarray:
    """(C, dim) unit rows: prompt-template ensembles when the model has them, else the bare names."""
    ensemble = getattr(embedder, "embed_classes", None)
    return ensemble(classes) if ensemble is not None else embedder.embed_texts(list(classes))


def probabilities(vectors: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(N, C) softmax over classes of the scaled cosine similarities."""
    logits = LOGIT_SCALE * (np.asarray(vectors, np.float32) @ classes.T)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _truth(names: Sequence[str], classes: set[str]) -> str | None:
    """The one class a set of names says, None when it says none or several."""
    found = {n for n in names if n in classes}
    return found.pop() if len(found) == 1 else None


def tag_images(
    project: Project,
    embedder: Embedder,
    embeddings: EmbeddingSet,
    classes: Sequence[str],
    *,
    plugin_id: str,
    weights: str | None = None,
    run_name: str | None = None,
    min_score: float | None = None,
) -> ModelRun:
    """Tag every embedded image with its best class (and any other scoring >= `min_score`) as a new run.

    Video frames vote: a video's scores are the mean of its frames'. Accuracy is measured on media whose
    human tags, or else whose human annotations' labels, name exactly one of the classes.
    """
    if not len(embeddings):
        raise StudioError(f"no image embeddings of {embeddings.model}; run `studio embed` first")
    names = class_names(classes)
    scores = probabilities(embeddings.vectors(), class_vectors(embedder, names))
    media_ids, where = np.unique(embeddings.meta.media_ids, return_inverse=True)
    per_media = np.zeros((len(media_ids), len(names)), np.float64)
    np.add.at(per_media, where, scores)
    per_media /= np.bincount(where)[:, None]
    best = per_media.argmax(axis=1)
    tags = []
    for row, media_id in enumerate(media_ids):
        for c, name in enumerate(names):
            if c == best[row] or (min_score is not None and per_media[row, c] >= min_score):
                tags.append((int(media_id), name, float(per_media[row, c])))
    wanted = set(names)
    human_tags = project.tag_table()
    labels = {label.id: label.name for label in project.labels()}
    table = project.annotation_table("human")
    annotated: dict[int, list[str]] = {}
    for media_id, label_id in zip(table["media_id"], table["label_id"], strict=True):
        annotated.setdefault(media_id, []).append(labels[label_id])
    correct = evaluated = 0
    for row, media_id in enumerate(media_ids):
        truth = _truth(human_tags.get(int(media_id), []), wanted) or _truth(annotated.get(int(media_id), []), wanted)
        if truth is not None:
            evaluated += 1
            correct += names[best[row]] == truth
    run = project.create_run(plugin_id, name=run_name, weights=weights,
                             params={"task": "tag", "classes": names, "embeddings": embeddings.model,
                                     "min_score": min_score})
    project.add_run_tags(run.id, tags)
    return project.finish_run(run.id, "complete", {
        "tagged": len(media_ids), "tags": len(tags), "evaluated": evaluated, "chance": round(1 / len(names), 4),
        "accuracy": round(correct / evaluated, 4) if evaluated else None,
    })


def relabel_regions(
    project: Project,
    embedder: Embedder,
    regions: EmbeddingSet,
    classes: Sequence[str],
    *,
    plugin_id: str,
    weights: str | None = None,
    run_name: str | None = None,
) -> ModelRun:
    """Copy every embedded human annotation into a new run, labelled with its best class and that class's
    probability as score; accuracy is counted on annotations whose current label is one of the classes."""
    if not len(regions):
        raise StudioError(f"no region embeddings of {regions.model}; run `studio embed --regions` first")
    names = class_names(classes)
    scores = probabilities(regions.vectors(), class_vectors(embedder, names))
    best = scores.argmax(axis=1)
    run = project.create_run(plugin_id, name=run_name, weights=weights,
                             params={"task": "relabel", "classes": names, "embeddings": regions.model})
    label_ids = {name: project.ensure_label(name).id for name in names}
    labels = {label.id: label.name for label in project.labels()}
    correct = evaluated = 0
    copies = []
    for position, annotation_id in enumerate(regions.meta.annotation_ids):
        original = project.get_annotation(int(annotation_id))
        predicted = names[best[position]]
        if labels[original.label_id] in label_ids:
            evaluated += 1
            correct += labels[original.label_id] == predicted
        copies.append(replace(
            original, id=None, run_id=run.id, label_id=label_ids[predicted], score=float(scores[position, best[position]]),
            created_at=None, updated_at=None, created_by=f"run:{run.name}",
            attributes={**original.attributes, "relabelled_from": original.id},
        ))
    project.add_annotations(copies)
    return project.finish_run(run.id, "complete", {
        "predictions": len(copies), "evaluated": evaluated, "chance": round(1 / len(names), 4),
        "accuracy": round(correct / evaluated, 4) if evaluated else None,
    })
