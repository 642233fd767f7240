"""A corpus of hostile dataset and media files, written fresh by each test run (nothing is checked in).

Each case is a `studio` command line that must end as `expect` says: "error" (exit 1 and exactly one
`studio: error:` line, project unchanged) or "ok" (exit 0; bad items skipped and reported). `outside`
is a folder the case must not read from or link: no media path may point into it afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CANARY = "CODE_RAN"
"""A file a hostile YAML/JSON tries to create through a Python tag; it must never appear."""


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str = "error"
    outside: str | None = None
    """A folder outside the dataset that nothing may be read from (no media may point into it)."""
    fifo: bool = False
    """The case contains a FIFO: before the fix it hangs, so it runs under a short alarm."""
    setup: str | None = None
    """A named in-process fault to install for this case (see worker.FAULTS)."""
    notes: dict[str, Any] = field(default_factory=dict)


def png_bytes(width: int = 16, height: int = 12) -> bytes:
    ok, data = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring width x height pixels, with (almost) no data: 70 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def billion_laughs_yaml() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=False):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\nnames: [*i]\ntrain: images\n"  # str() of each name would expand 9**9 strings


def coco_doc(annotation: dict[str, Any] | None = None, *, image: dict[str, Any] | None = None,
             category: dict[str, Any] | None = None) -> dict[str, Any]:
    img = {"id": 1, "file_name": "a.png", "width": 16, "height": 12, **(image or {})}
    cat = {"id": 1, "name": "cat", **(category or {})}
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], **(annotation or {})}
    return {"images": [img], "categories": [cat], "annotations": [ann]}


def build(base: Path, project: Path) -> list[Case]:
    """Write the hostile files under `base` and return the cases to run against `project`."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes())
    cases: list[Case] = []

    def folder(name: str) -> Path:
        path = base / name
        path.mkdir(parents=True)
        (path / "a.png").write_bytes(png_bytes())
        return path

    def coco(name: str, document: Any, *, raw: str | None = None, expect: str = "error", skip: bool = False) -> None:
        path = folder(name)
        (path / "annotations.json").write_text(raw if raw is not None else json.dumps(document))
        argv = ["import", str(project), "--format", "coco", str(path / "annotations.json")]
        cases.append(Case(name, argv + (["--skip-bad"] if skip else []), expect, outside=str(outside)))

    # item 2: RLE that pycocotools would misread (heap corruption, uninitialised pixels)
    for label, counts in {"bang": "!!!!", "open": "o", "short": "0", "long": "Z1Z1Z1", "nonascii": "é1"}.items():
        coco(f"coco-studio-shape-rle-{label}", coco_doc({"studio_shape": {"kind": "mask", "size": [12, 16], "counts": counts}}))
        coco(f"coco-segmentation-rle-{label}", coco_doc({"segmentation": {"size": [12, 16], "counts": counts}}))
    coco("coco-rle-uncompressed-overflow", coco_doc({"segmentation": {"size": [12, 16], "counts": [2**40, 5]}}))
    coco("coco-rle-uncompressed-short", coco_doc({"segmentation": {"size": [12, 16], "counts": [3, 4]}}))
    coco("coco-rle-uncompressed-negative", coco_doc({"segmentation": {"size": [12, 16], "counts": [-5, 197]}}))
    coco("coco-rle-skip-bad", coco_doc({"studio_shape": {"kind": "mask", "size": [12, 16], "counts": "!!!!"}}), skip=True,
         expect="ok")
    # item 4: file names that climb out of the dataset
    for label, file_name in {"dotdot": "../outside/secret.png", "absolute": str(outside / "secret.png"),
                             "deep": "../../../../../../../../etc/hostname", "nul": "a\x00.png"}.items():
        coco(f"coco-file-name-{label}", coco_doc(image={"file_name": file_name}))
    linked = folder("coco-symlink-out")
    os.symlink(outside / "secret.png", linked / "link.png")
    (linked / "annotations.json").write_text(json.dumps(coco_doc(image={"file_name": "link.png"})))
    cases.append(Case("coco-symlink-out", ["import", str(project), "-f", "coco", str(linked / "annotations.json")],
                      outside=str(outside)))
    # item 8: values no database or encoder holds
    coco("coco-nan-id", None, raw=json.dumps(coco_doc()).replace('"id": 1, "file_name"', '"id": NaN, "file_name"'))
    coco("coco-infinity-id", None, raw=json.dumps(coco_doc()).replace('"id": 1, "file_name"', '"id": Infinity, "file_name"'))
    coco("coco-1e400-id", None, raw=json.dumps(coco_doc()).replace('"id": 1, "file_name"', '"id": 1e400, "file_name"'))
    coco("coco-huge-track-id", coco_doc({"track_id": 2**70}))
    coco("coco-huge-category-id", coco_doc(category={"id": 2**70}, annotation={"category_id": 2**70}))
    coco("coco-huge-int-4300-digits", None, raw=json.dumps(coco_doc()).replace('"id": 1, "file_name"', '"id": 1' + "0" * 5000 + ', "file_name"'))
    coco("coco-lone-surrogate-label", None, raw=json.dumps(coco_doc()).replace('"name": "cat"', '"name": "c\\ud800t"'))
    coco("coco-newline-label", coco_doc(category={"name": "cat\nstudio: error: fake second line"}))
    coco("coco-nul-label", coco_doc(category={"name": "c\x00t"}))
    coco("coco-deep-attributes", coco_doc({"attributes": {"x": json.loads("[" * 200 + "]" * 200)}}))
    coco("coco-deep-recursion", None, raw='{"images": ' + "[" * 200_000 + "]" * 200_000 + "}")
    coco("coco-not-utf8", None, raw="")
    (base / "coco-not-utf8" / "annotations.json").write_bytes(b'{"images": "\xff\xfe"}')
    coco("coco-truncated", None, raw=json.dumps(coco_doc())[:40])
    fifo_dir = base / "coco-fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "annotations.json")
    cases.append(Case("coco-fifo", ["import", str(project), "-f", "coco", str(fifo_dir / "annotations.json")], fifo=True))

    # item 3 and 4: YOLO data.yaml
    def yolo(name: str, text: str, *, labels: bool = True) -> None:
        path = base / name
        (path / "images").mkdir(parents=True)
        (path / "images" / "a.png").write_bytes(png_bytes())
        if labels:
            (path / "labels").mkdir()
            (path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        (path / "data.yaml").write_text(text)
        cases.append(Case(name, ["import", str(project), "-f", "yolo", str(path)], outside=str(outside)))

    yolo("yolo-billion-laughs", billion_laughs_yaml())
    yolo("yolo-path-etc", "path: /etc\ntrain: .\nnames: [x]\n")
    yolo("yolo-path-outside", f"path: {outside}\ntrain: .\nnames: [x]\n")
    yolo("yolo-train-root", "train: /\nnames: [x]\n")
    yolo("yolo-train-dotdot", "train: ../../../../..\nnames: [x]\n")
    yolo("yolo-python-tag", f"names: !!python/object/apply:os.system ['touch {CANARY}']\ntrain: images\n")
    yolo("yolo-deep", "names: " + "[" * 5000 + "]" * 5000 + "\ntrain: images\n")
    yolo("yolo-not-utf8", "names: [x]\ntrain: images\n")
    (base / "yolo-not-utf8" / "data.yaml").write_bytes(b"names: [\xff]\ntrain: images\n")
    yolo("yolo-list-outside", "train: list.txt\nnames: [x]\n")
    (base / "yolo-list-outside" / "list.txt").write_text(f"{outside / 'secret.png'}\n../outside/secret.png\n")
    yolo("yolo-label-fifo", "train: images\nnames: [x]\n", labels=False)
    (base / "yolo-label-fifo" / "labels").mkdir()
    os.mkfifo(base / "yolo-label-fifo" / "labels" / "a.txt")
    cases[-1].fifo = True

    # item 4 and 3: VOC, CVAT, labelme
    def xml_case(name: str, fmt: str, file_name: str, text: str) -> None:
        path = folder(name)
        (path / file_name).write_text(text)
        cases.append(Case(name, ["import", str(project), "-f", fmt, str(path / file_name)], outside=str(outside)))

    voc = "<annotation><filename>{}</filename><size><width>16</width><height>12</height></size>" \
          "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>"
    xml_case("voc-filename-dotdot", "voc", "a.xml", voc.format("../outside/secret.png"))
    xml_case("voc-filename-absolute", "voc", "a.xml", voc.format(outside / "secret.png"))
    xml_case("voc-entity-bomb", "voc", "a.xml",
             '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
             "<annotation><filename>&b;</filename></annotation>")
    segmented = base / "voc-segmentation-bomb"
    for sub in ("Annotations", "JPEGImages", "SegmentationObject"):
        (segmented / sub).mkdir(parents=True)
    (segmented / "JPEGImages" / "a.png").write_bytes(png_bytes())
    (segmented / "Annotations" / "a.xml").write_text(voc.format("a.png"))
    (segmented / "SegmentationObject" / "a.png").write_bytes(bomb_png(30_000, 30_000))
    cases.append(Case("voc-segmentation-bomb", ["import", str(project), "-f", "voc", str(segmented)], outside=str(outside)))
    cvat = '<annotations><image id="0" name="{}" width="{}" height="{}">{}</image></annotations>'
    mask = '<mask label="cat" rle="0, 4" left="0" top="0" width="2" height="2"/>'
    xml_case("cvat-name-dotdot", "cvat", "annotations.xml", cvat.format("../outside/secret.png", 16, 12, ""))
    xml_case("cvat-huge-declared-size", "cvat", "annotations.xml", cvat.format("a.png", 100_000, 100_000, mask))
    xml_case("cvat-huge-size-no-image", "cvat", "annotations.xml", cvat.format("missing.png", 30_000, 30_000, mask))

    def labelme_case(name: str, document: dict[str, Any], *, expect: str = "error", skip: bool = False) -> Path:
        path = folder(name)
        (path / "a.json").write_text(json.dumps({"version": "5.5.0", "flags": {}, "imageData": None, **document}))
        argv = ["import", str(project), "-f", "labelme", str(path)] + (["--skip-bad"] if skip else [])
        cases.append(Case(name, argv, expect, outside=str(outside)))
        return path

    box = {"label": "cat", "points": [[1, 1], [4, 4]], "shape_type": "rectangle"}
    mask_png = base64.b64encode(png_bytes(2, 2)).decode()
    mask_shape = {"label": "cat", "points": [[0, 0], [1, 1]], "shape_type": "mask", "mask": mask_png}
    labelme_case("labelme-image-path-absolute", {"imagePath": str(outside / "secret.png"), "shapes": [box]})
    labelme_case("labelme-image-path-dotdot", {"imagePath": "../outside/secret.png", "shapes": [box]})
    labelme_case("labelme-huge-declared-size", {"imagePath": "a.png", "imageWidth": 100_000, "imageHeight": 100_000,
                                                "shapes": [mask_shape]})
    labelme_case("labelme-mask-bomb", {"imagePath": "a.png", "imageWidth": 16, "imageHeight": 12, "shapes": [
        {**mask_shape, "mask": base64.b64encode(bomb_png(50_000, 50_000)).decode()}]})
    labelme_case("labelme-embedded-bomb", {"imagePath": "b.png", "imageData": base64.b64encode(bomb_png()).decode(),
                                           "shapes": [box]})
    refused = labelme_case("labelme-embedded-then-refused", {
        "imagePath": "emb.png", "imageData": base64.b64encode(png_bytes()).decode(), "shapes": [box]})
    (refused / "z.json").write_text(json.dumps({"imagePath": "a.png", "shapes": [{**box, "points": [[1, 1], [400, 4]]}]}))
    fifo_folder = labelme_case("labelme-fifo-json", {"imagePath": "a.png", "shapes": [box]}, expect="ok", skip=True)
    os.mkfifo(fifo_folder / "b.json")
    cases[-1].fifo = True

    # item 5 and 3: studio add
    media = base / "add-fifo"
    media.mkdir()
    (media / "good.png").write_bytes(png_bytes())
    for name in ("x.jpg", "y.mp4"):
        os.mkfifo(media / name)
    cases.append(Case("add-fifo", ["add", str(project), str(media)], fifo=True))
    cases.append(Case("add-fifo-skip-bad", ["add", str(project), str(media), "--skip-bad"], "ok", fifo=True))
    bombs = base / "add-bomb"
    bombs.mkdir()
    (bombs / "bomb.png").write_bytes(bomb_png())
    (bombs / "warn.png").write_bytes(bomb_png(10_000, 10_000))  # between Pillow's warning and error bounds
    cases.append(Case("add-bomb", ["add", str(project), str(bombs / "bomb.png")]))
    cases.append(Case("add-bomb-warning", ["add", str(project), str(bombs / "warn.png")]))
    # item 8: faults of the machine, simulated in-process
    cases.append(Case("db-full", ["add", str(project), str(base / "coco-truncated" / "a.png")], setup="disk-full"))
    cases.append(Case("db-read-only", ["add", str(project), str(base / "coco-truncated" / "a.png")], setup="read-only"))
    cases.append(Case("export-disk-full", ["export", str(project), "-f", "coco", str(base / "export-full")], setup="no-space"))
    cases.append(Case("damaged-geometry", ["export", str(project), "-f", "coco", str(base / "export-damaged")],
                      setup="damaged-geometry"))
    damaged = _damaged_project(base)
    cases.append(Case("damaged-pages-export", ["export", str(damaged), "-f", "coco", str(base / "export-pages")]))
    return cases


def _damaged_project(base: Path) -> Path:
    """A project whose database pages after the schema are overwritten with garbage (a bad disk)."""
    from studio.core.shapes import Box
    from studio.core.types import Annotation
    from studio.db import Project
    from studio.io.media import probe

    root = base / "damaged-project"
    (base / "damaged-media").mkdir()
    (base / "damaged-media" / "a.png").write_bytes(png_bytes())
    with Project.create(root) as project:
        media = project.add_media([probe(base / "damaged-media" / "a.png")])[0]
        label = project.ensure_label("cat")
        project.add_annotations(Annotation(media_id=media.id, frame=0, label_id=label.id, shape=Box(1, 1, 4, 4)) for _ in range(300))
    database = root / "studio.db"
    with database.open("r+b") as file:
        file.seek(database.stat().st_size - 6 * 4096)
        file.write(np.random.default_rng(0).integers(0, 256, 4 * 4096, dtype=np.uint8).tobytes())
    return root


def to_json(cases: list[Case]) -> str:
    return json.dumps([asdict(case) for case in cases])
