"""CVAT for video 1.1: <track> elements holding one shape per keyframe, with outside/occluded/keyframe flags.

Read: the shapes a track marks `keyframe="1"` are its keyframes (a file without the flag is taken as all
keyframes); an `outside="1"` keyframe hides the object until the next keyframe that is not outside, which
becomes an outside range. CVAT also writes the interpolated frames (keyframe="0"); Studio interpolates them
again itself. Shapes outside tracks (<image> elements, as CVAT writes single-frame shapes) are kept on their
frame. The video is matched by `<meta>/<source>` (or `--media`, or the project's only video).

Write: keyframes only, plus an outside keyframe where each outside range starts and a keyframe where the
object comes back, which is what CVAT's importer needs to rebuild the same track. Geometry and attribute
handling are shared with CVAT for images (studio.io.formats.cvat).
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

from studio.core.errors import FormatError
from studio.core.tracks import shape_at
from studio.io.formats import cvat
from studio.io.formats.base import DatasetAnnotation, attribute_text, number, parse_xml, skip_or_raise
from studio.io.formats.video_tracks import TrackData, VideoAnnotations, outside_from_markers


def read(path: Path, *, skip_bad: bool = False) -> VideoAnnotations:
    xml_path = path / "annotations.xml" if path.is_dir() else path
    if not xml_path.is_file():
        raise FormatError(f"{path}: no annotations.xml here")
    root = parse_xml(xml_path)
    if root.tag != "annotations":
        raise FormatError(f"{xml_path}: not a CVAT file (root element <{root.tag}>, expected <annotations>)")
    task = root.find("meta/task") or root.find("meta/job") or Element("task")
    width, height = (task.findtext(f"original_size/{key}") for key in ("width", "height"))
    size = (int(number(height, "height")), int(number(width, "width"))) if width and height else None
    stop = task.findtext("stop_frame") or task.findtext("size")
    frame_count = int(number(stop, "stop_frame")) + (1 if task.findtext("stop_frame") else 0) if stop else None
    source = root.findtext("meta/source") or task.findtext("source")
    labels = [name.text.strip() for name in root.iterfind("meta//labels/label/name") if name.text]
    data = VideoAnnotations(source.strip() if source else None, frame_count, size, labels, [])
    shape_size = size or (1 << 15, 1 << 15)  # without a stated size, geometry is only checked to be finite
    for index, element in enumerate(root.iterfind("track")):
        try:
            data.tracks.append(_read_track(element, shape_size, frame_count))
        except FormatError as exc:
            skip_or_raise(data.problems, f"{xml_path}: track {element.get('id', index)}: {exc}", skip_bad)
    for image in root.iterfind("image"):
        frame = int(number(image.get("id"), "image id"))
        for child in image:
            try:
                ann = cvat._read_shape(child, shape_size)
            except FormatError as exc:
                skip_or_raise(data.problems, f"{xml_path}: frame {frame} <{child.tag}>: {exc}", skip_bad)
                continue
            data.shapes.append((frame, ann.label, ann.shape, ann.attributes))
    return data


def _read_track(element: Element, size: tuple[int, int], frame_count: int | None) -> TrackData:
    label = element.get("label")
    if not label:
        raise FormatError("missing label")
    entries = []
    for child in element:
        frame = int(number(child.get("frame"), "frame"))
        if frame < 0:
            raise FormatError(f"negative frame {frame}")
        keyframe = child.get("keyframe", "1") == "1"
        outside = child.get("outside", "0") == "1"
        if keyframe:
            child.set("label", label)  # the shared shape reader wants each shape's label
            entries.append((frame, outside, cvat._read_shape(child, size)))
    if not entries:
        raise FormatError("no keyframes")
    entries.sort(key=lambda entry: entry[0])
    last = (frame_count - 1) if frame_count else entries[-1][0]
    outside = outside_from_markers([(frame, out) for frame, out, _ in entries], last)
    keyframes = [(frame, ann.shape) for frame, out, ann in entries if not out]
    first = next((ann for _, out, ann in entries if not out), entries[0][2])
    attributes = {k: v for k, v in first.attributes.items() if k not in ("z_order",)}
    return TrackData(label, keyframes, outside, attributes)


def write(data: VideoAnnotations, out: Path) -> None:
    root = Element("annotations")
    SubElement(root, "version").text = "1.1"
    meta = SubElement(root, "meta")
    task = SubElement(meta, "task")
    frame_count = data.frame_count or 1 + max([f for t in data.tracks for f, _ in t.keyframes] + [s[0] for s in data.shapes])
    SubElement(task, "size").text = str(frame_count)
    SubElement(task, "mode").text = "interpolation"
    SubElement(task, "start_frame").text = "0"
    SubElement(task, "stop_frame").text = str(frame_count - 1)
    labels = SubElement(task, "labels")
    for name in data.labels:
        label = SubElement(labels, "label")
        SubElement(label, "name").text = name
        SubElement(label, "type").text = "any"
        SubElement(label, "attributes")
    if data.size is not None:
        original = SubElement(task, "original_size")
        SubElement(original, "width").text = str(data.size[1])
        SubElement(original, "height").text = str(data.size[0])
    if data.source:
        SubElement(meta, "source").text = data.source
    for index, track in enumerate(data.tracks):
        _write_track(root, index, track, frame_count)
    by_frame: dict[int, list] = {}
    for frame, label, shape, attributes in data.shapes:
        by_frame.setdefault(frame, []).append(DatasetAnnotation(label, shape, None, attributes))
    for frame in sorted(by_frame):
        image = SubElement(root, "image", id=str(frame), name=f"frame_{frame:06d}")
        if data.size is not None:
            image.set("height", str(data.size[0]))
            image.set("width", str(data.size[1]))
        cvat._write_shapes(image, by_frame[frame])
    tree = ElementTree(root)
    indent(tree)
    tree.write(out, encoding="utf-8", xml_declaration=True)


def _write_track(root: Element, index: int, track: TrackData, frame_count: int) -> None:
    element = SubElement(root, "track", id=str(index), label=track.label, source="manual")
    entries: dict[int, tuple[object, bool]] = {frame: (shape, False) for frame, shape in track.keyframes}
    for start, end in track.outside:
        before = shape_at(track.keyframes, (), max(start - 1, 0)) or (track.keyframes[0][1], True)
        entries[start] = (before[0], True)
        if end + 1 < frame_count and end + 1 not in entries:
            back = shape_at(track.keyframes, (), end + 1)
            if back is not None:
                entries[end + 1] = (back[0], False)
    for frame in sorted(entries):
        shape, outside = entries[frame]
        ann = DatasetAnnotation(track.label, shape, None, track.attributes)  # type: ignore[arg-type]
        for geometry, tag in cvat._geometry(ann):
            shape_element = SubElement(element, tag, frame=str(frame), keyframe="1", outside="1" if outside else "0")
            shape_element.set("occluded", "1" if track.attributes.get("occluded") else "0")
            for key, value in geometry.items():
                shape_element.set(key, value)
            shape_element.set("z_order", "0")
            for name, value in track.attributes.items():
                if name not in ("occluded",):
                    SubElement(shape_element, "attribute", name=name).text = attribute_text(value)
