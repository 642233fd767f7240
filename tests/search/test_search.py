"""CLIP search through the CLI and the search API, with a tiny random-init open_clip model built offline:
Studio ranks as open_clip computes, vectors survive a restart, embedding is incremental, regions work,
filters apply, and bad input is one clear line that changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from clip_helpers import CLASSES, random_clip, write_shapes
from conftest import write_image

from studio.cli.main import main
from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import Project
from studio.db import embeddings as store
from studio.io.media import add_paths
from studio.search.query import EmbeddingSet, MediaFilter


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return random_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def shapes_project(project, tmp_path, tiny_clip) -> Project:
    write_shapes(project.root / "images", 1, seed=3)
    add_paths(project, [project.root / "images"])
    return project


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def embed(capsys, project: Project, clip: Path, *extra: str) -> str:
    code, out, err = run(capsys, "embed", project.root, "--model", "clip-local", "--weights", clip, *extra)
    assert code == 0, err
    return out


def search_json(capsys, project: Project, *query: str) -> list[dict]:
    code, out, err = run(capsys, "search", project.root, *query, "--json")
    assert code == 0, err
    return json.loads(out)


def direct_open_clip(clip: Path, files: list[Path]) -> tuple[np.ndarray, object, object]:
    """Image vectors computed the way open_clip's README does it: PIL image, its transform, encode_image."""
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{clip}")
    model.eval()
    with torch.no_grad():
        images = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files])
        vectors = model.encode_image(images, normalize=True).numpy()
    return vectors, model, open_clip.get_tokenizer(f"local-dir:{clip}")


def test_text_and_image_ranking_equal_a_direct_open_clip_computation(shapes_project, tiny_clip, capsys, tmp_path):
    import torch

    project = shapes_project
    assert "embedded 12 images with clip-local:tiny-clip" in embed(capsys, project, tiny_clip)
    files = sorted((project.root / "images").iterdir())
    vectors, model, tokenizer = direct_open_clip(tiny_clip, files)
    with torch.no_grad():
        text = model.encode_text(tokenizer(["a red circle"]), normalize=True).numpy()[0]
    expected = dict(zip([f"images/{f.name}" for f in files], (vectors @ text).tolist(), strict=True))

    hits = search_json(capsys, project, "a red circle", "--k", "12")
    assert [h["media"] for h in hits] == sorted(expected, key=lambda name: -expected[name]) or _ties_only(hits, expected)
    for hit in hits:  # float16 storage: scores agree to ~1e-3
        assert hit["score"] == pytest.approx(expected[hit["media"]], abs=2e-3)
        assert hit["frame"] == 0

    query = files[4]
    by_image = search_json(capsys, project, "--image", query, "--k", "5")
    direct = vectors @ vectors[4]
    assert by_image[0]["media"] == f"images/{query.name}"
    assert [h["score"] for h in by_image] == pytest.approx(sorted(direct, reverse=True)[:5], abs=2e-3)


def _ties_only(hits: list[dict], expected: dict[str, float]) -> bool:
    """Studio's order differs from the direct one only between scores closer than float16 can tell apart."""
    scores = [expected[h["media"]] for h in hits]
    return all(a >= b - 2e-3 for a, b in zip(scores, scores[1:], strict=False))


def test_each_image_searched_by_itself_comes_first(shapes_project, tiny_clip, capsys):
    embed(capsys, shapes_project, tiny_clip)
    media = shapes_project.list_media()
    assert len(media) == len(CLASSES)
    for m in media:
        (best, *_) = search_json(capsys, shapes_project, "--like", m.name, "--k", "3")
        assert best["media"] == m.path and best["score"] == pytest.approx(1.0, abs=1e-3)


def test_vectors_survive_a_restart_and_give_the_same_results(shapes_project, tiny_clip, capsys):
    embed(capsys, shapes_project, tiny_clip)
    model = "clip-local:tiny-clip"
    before = EmbeddingSet(shapes_project, model).search(store.vector_of(shapes_project, model, (1, 0, -1)), 5)
    root = shapes_project.root
    shapes_project.close()
    with Project.open(root) as reopened:
        after = EmbeddingSet(reopened, model).search(store.vector_of(reopened, model, (1, 0, -1)), 5)
        assert reopened.counts()["embeddings"] == len(CLASSES)
    assert after == before and len(after) == 5


def test_only_new_and_changed_images_are_embedded_again(shapes_project, tiny_clip, capsys):
    embed(capsys, shapes_project, tiny_clip)
    again = embed(capsys, shapes_project, tiny_clip)
    assert "embedded 0 images" in again and "(12 unchanged" in again
    write_shapes(shapes_project.root / "more", 1, seed=8)
    add_paths(shapes_project, [shapes_project.root / "more"])
    changed = shapes_project.root / "images" / "red-circle-0.png"
    shutil.copy(shapes_project.root / "more" / "blue-square-0.png", changed)  # re-saved with other content
    out = embed(capsys, shapes_project, tiny_clip)
    assert "embedded 13 images" in out and "(11 unchanged" in out  # 12 new + 1 changed
    code, out, _ = run(capsys, "info", shapes_project.root, "--json")
    assert json.loads(out)["embeddings"] == 24
    # the changed file has the vector of its new content: identical to the file it was copied from
    best = search_json(capsys, shapes_project, "--like", "images/red-circle-0.png", "--k", "2")
    assert {h["media"] for h in best} == {"images/red-circle-0.png", "more/blue-square-0.png"}
    assert [h["score"] for h in best] == pytest.approx([1.0, 1.0], abs=1e-3)


def test_regions_search_images_and_text_finds_boxes(shapes_project, tiny_clip, capsys):
    media = shapes_project.list_media()
    cat = shapes_project.ensure_label("shape")
    whole = shapes_project.add_annotation(Annotation(media[5].id, cat.id, Box(0, 0, 48, 48)))
    part = shapes_project.add_annotation(Annotation(media[2].id, cat.id, Box(4, 4, 30, 30)))
    embed(capsys, shapes_project, tiny_clip)
    assert "embedded 2 regions" in embed(capsys, shapes_project, tiny_clip, "--regions")
    # a box covering the whole image is that image: region -> image search finds it first
    (best, *_) = search_json(capsys, shapes_project, "--like-box", str(whole.id), "--k", "3")
    assert best["media"] == media[5].path and best["score"] == pytest.approx(1.0, abs=2e-3)
    found = search_json(capsys, shapes_project, "a red circle", "--regions", "--k", "5")
    assert sorted(h["annotation"] for h in found) == sorted([whole.id, part.id])
    # moving a box re-embeds it, deleting it drops its vector
    from dataclasses import replace

    shapes_project.update_annotation(replace(part, shape=Box(10, 10, 40, 40)))
    assert "embedded 1 regions" in embed(capsys, shapes_project, tiny_clip, "--regions")
    shapes_project.delete_annotations([whole.id])
    assert [h["annotation"] for h in search_json(capsys, shapes_project, "a red circle", "--regions")] == [part.id]


def test_search_keeps_to_the_browser_filters(shapes_project, tiny_clip, capsys):
    embed(capsys, shapes_project, tiny_clip)
    media = shapes_project.list_media()
    for m in media[:3]:
        shapes_project.set_tags(m.id, ["night"])
    shapes_project.set_review_state(media[7].id, "done")
    tagged = search_json(capsys, shapes_project, "a red circle", "--tag", "night")
    assert sorted(h["media"] for h in tagged) == sorted(m.path for m in media[:3])
    assert [h["media"] for h in search_json(capsys, shapes_project, "a red circle", "--review", "done")] == [media[7].path]
    allowed = MediaFilter(tag="night", review_state="done").media_ids(shapes_project)
    assert allowed == set()


def test_zero_shot_tags_are_a_run_that_can_be_accepted(shapes_project, tiny_clip, capsys):
    code, out, err = run(capsys, "tag", shapes_project.root, "--model", "clip-local", "--weights", tiny_clip,
                         "--classes", "red circle, blue square", "--run", "zs", "--accept")
    assert code == 0, err
    assert "run 'zs'" in out and "tagged 12 images" in out and "accepted 12 tags" in out
    run_ = shapes_project.find_run("zs")
    tags = shapes_project.run_tags(run_.id)
    assert len(tags) == 12 and {name for _, name, _ in tags} <= {"red circle", "blue square"}
    assert all(0.5 <= score <= 1.0 for _, _, score in tags)  # the best of two classes
    for media_id, name, _ in tags:
        assert shapes_project.tags(media_id) == [name]


def test_duplicates_are_grouped_and_leaks_across_splits_found(shapes_project, tiny_clip, capsys):
    images = shapes_project.root / "images"
    shutil.copy(images / "green-square-0.png", images / "copy-of-green-square.png")
    (copy,) = add_paths(shapes_project, [images / "copy-of-green-square.png"]).added
    original = shapes_project.find_media(images / "green-square-0.png")
    shapes_project.set_tags(original.id, ["train"])
    shapes_project.set_tags(copy.id, ["val"])
    embed(capsys, shapes_project, tiny_clip)
    code, out, err = run(capsys, "duplicates", shapes_project.root, "--threshold", "0.999", "--json")
    assert code == 0, err
    report = json.loads(out)
    pair = {"images/green-square-0.png", "images/copy-of-green-square.png"}
    assert [{i["media"] for i in g["items"]} for g in report["groups"]] == [pair]
    assert [{i["media"] for i in g["items"]} for g in report["leaks"]] == [pair]
    uniqueness = {u["media"]: u["score"] for u in report["uniqueness"]}
    assert len(uniqueness) == 13 and max(uniqueness[m] for m in pair) < 1e-3
    assert min(score for media, score in uniqueness.items() if media not in pair) > 1e-3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "{p}", "--model", "nope"], "no model plugin 'nope'"),
        (["embed", "{p}", "--model", "clip-vit-b-32"], "ViT-B-32.pt is not downloaded and STUDIO_OFFLINE is set"),
        (["embed", "{p}", "--model", "clip-local", "--weights", "/no/such/clip.pt"], "not found"),
        (["embed", "{p}", "--model", "clip-local"], "needs --weights FOLDER"),
        (["embed", "{p}", "--model", "clip-vit-b-32", "--weights", "/no/such/clip.pt"], "not found"),
        (["embed", "{p}", "--model", "grabcut"], "not an embedding model"),
        (["search", "{p}", "a cat"], "no embeddings in this project"),
        (["search", "{p}"], "exactly one of"),
        (["duplicates", "{p}"], "no embeddings in this project"),
        (["tag", "{p}", "--classes", "cat"], "at least two class names"),
        (["embed", "{p}", "--model", "clip-vit-b-32", "--weights", "{clip}/open_clip_pytorch_model.bin"],
         "does not fit ViT-B-32"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(shapes_project, tiny_clip, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    before = shapes_project.counts()
    argv = [a.replace("{p}", str(shapes_project.root)).replace("{clip}", str(tiny_clip)) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("studio: error: ") and err.count("\n") == 1 and message in err, err
    assert shapes_project.counts() == before


def test_an_empty_project_is_refused(project, tiny_clip, capsys):
    code, _, err = run(capsys, "embed", project.root, "--model", "clip-local", "--weights", tiny_clip)
    assert code == 1 and "the project has no media" in err and err.count("\n") == 1


def test_a_corrupt_image_is_skipped_and_reported(shapes_project, tiny_clip, capsys):
    broken = shapes_project.root / "images" / "blue-circle-0.png"
    broken.write_bytes(b"not an image at all")
    code, out, err = run(capsys, "embed", shapes_project.root, "--model", "clip-local", "--weights", tiny_clip)
    assert code == 0
    assert "embedded 11 images" in out and "1 skipped" in out
    assert err.count("\n") == 1 and err.startswith("skipped: ") and "blue-circle-0.png" in err
    assert shapes_project.counts()["embeddings"] == 11


def test_an_unknown_media_for_like_is_one_line(shapes_project, tiny_clip, capsys):
    embed(capsys, shapes_project, tiny_clip)
    write_image(shapes_project.root / "late.png")
    add_paths(shapes_project, [shapes_project.root / "late.png"])
    for like, message in [("nothing.png", "no media 'nothing.png'"), ("late.png", "has no embedding")]:
        code, _, err = run(capsys, "search", shapes_project.root, "--like", like)
        assert code == 1 and message in err and err.count("\n") == 1


@pytest.mark.postgres
def test_embed_and_search_on_postgres(postgres_url, tmp_path, tiny_clip):
    from studio.jobs.embed import embed_project

    write_shapes(tmp_path / "images", 1, seed=3)
    with Project.connect(postgres_url, tmp_path) as project:
        add_paths(project, [tmp_path / "images"])
        report = embed_project(project, "clip-local", weights=str(tiny_clip))
        assert (report.embedded, report.failed) == (12, [])
        first = project.list_media()[0]
    with Project.connect(postgres_url, tmp_path) as project:
        assert embed_project(project, "clip-local", weights=str(tiny_clip)).unchanged == 12
        vector = store.vector_of(project, report.model, (first.id, 0, -1))
        (best, *_) = EmbeddingSet(project, report.model).search(vector, 3)
        assert best.media_id == first.id and best.score == pytest.approx(1.0, abs=1e-3)


def test_embedding_reports_progress_and_a_cancel_keeps_what_was_done(shapes_project, tiny_clip):
    from studio.jobs.embed import embed_project

    seen: list[tuple[int, int]] = []
    report = embed_project(shapes_project, "clip-local", weights=str(tiny_clip), batch_size=4,
                           progress=lambda done, total, _eta: seen.append((done, total)),
                           cancel=lambda: len(seen) > 2)
    assert report.cancelled and report.embedded == 8 and seen == [(0, 12), (4, 12), (8, 12)]
    assert shapes_project.counts()["embeddings"] == 8
    rest = embed_project(shapes_project, "clip-local", weights=str(tiny_clip))
    assert (rest.embedded, rest.unchanged, rest.cancelled) == (4, 8, False)


def test_studio_models_lists_the_clip_plugins_with_their_weights(capsys):
    code, out, _ = run(capsys, "models", "--json")
    plugins = {p["id"]: p for p in json.loads(out)["plugins"]}
    assert {"clip-vit-b-32", "clip-vit-l-14", "siglip-vit-b-16", "clip-local"} <= set(plugins)
    b32 = plugins["clip-vit-b-32"]
    assert b32["task"] == "embed" and b32["options"]["architecture"] == "ViT-B-32"
    openai = b32["weights"][0]
    assert openai["name"] == "ViT-B-32.pt" and openai["sha256"] in openai["url"]
    assert [w["name"] for w in b32["weights"]][1] == "ViT-B-32-laion2b_s34b_b79k.safetensors"
