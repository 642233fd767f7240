"""Re-creates the files of this corpus that no tool's repository lets us commit as they are.

Each block follows the writer code named in README.md (labelme's examples/*/labelme2voc.py, supervision's
pascal_voc.py, CVAT's dataset_manager/formats/cvat.py, Roboflow and Label Studio export layouts), with our
own small noise images. Run from the repository root: `python tests/data/formats/make_recreated.py`.
The output is committed; the tests only read it.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).parent
WIDTH, HEIGHT = 64, 48


def noise(path: Path, seed: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return pixels


def label_colormap() -> list[int]:
    """imgviz.label_colormap(): VOC's colour map, which labelme's lblsave puts in its palette PNGs.

    Written here again, not imported from studio.io.formats.voc, so the corpus does not come from the
    code it tests."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        for bit in range(8):
            red |= ((index >> (3 * bit)) & 1) << (7 - bit)
            green |= ((index >> (3 * bit + 1)) & 1) << (7 - bit)
            blue |= ((index >> (3 * bit + 2)) & 1) << (7 - bit)
        palette += [red, green, blue]
    return palette


def lblsave(path: Path, labels: np.ndarray) -> None:
    """imgviz.io.lblsave: a palette PNG of label numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(labels.astype(np.uint8), mode="P")
    picture.putpalette(label_colormap())
    picture.save(path)


def labelme2voc_bbox() -> None:
    """labelme examples/bbox_detection/labelme2voc.py: empty optional elements, labelme's float corners
    written as they are. Its lxml ElementMaker output is written out here as lxml prints it
    (lxml is not a dependency of Studio)."""
    root = HERE / "labelme2voc_bbox"
    noise(root / "JPEGImages/street.jpg", 1)
    (root / "class_names.txt").write_text("_background_\ncar\nperson")
    objects = ""
    for label, (xmin, ymin, xmax, ymax) in (("car", (0.0, 10.5, 30.0, 40.0)), ("person", (40.0, 2.0, 64.0, 48.0))):
        objects += (
            f"  <object>\n    <name>{label}</name>\n    <pose/>\n    <truncated/>\n    <difficult/>\n    <bndbox>\n"
            f"      <xmin>{xmin}</xmin>\n      <ymin>{ymin}</ymin>\n      <xmax>{xmax}</xmax>\n      <ymax>{ymax}</ymax>\n"
            "    </bndbox>\n  </object>\n"
        )
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations/street.xml").write_text(
        "<annotation>\n  <folder/>\n  <filename>street.jpg</filename>\n  <database/>\n  <annotation/>\n  <image/>\n"
        f"  <size>\n    <height>{HEIGHT}</height>\n    <width>{WIDTH}</width>\n    <depth>3</depth>\n  </size>\n"
        f"  <segmented/>\n{objects}</annotation>\n"
    )


def labelme2voc_segmentation() -> None:
    """labelme examples/instance_segmentation and semantic_segmentation labelme2voc.py: no XML, class and
    object PNGs from shapes_to_label (class -1 = __ignore__ saved as 255, its object pixels set to 0)."""
    root = HERE / "labelme2voc_instance"
    noise(root / "JPEGImages/room.jpg", 2)
    (root / "class_names.txt").write_text("_background_\nchair\nperson")
    cls = np.zeros((HEIGHT, WIDTH), np.int32)
    ins = np.zeros((HEIGHT, WIDTH), np.int32)
    for instance, (label, (x1, y1, x2, y2)) in enumerate([(1, (2, 2, 20, 20)), (1, (22, 2, 40, 20)), (2, (5, 25, 60, 45))], 1):
        cls[y1:y2, x1:x2] = label
        ins[y1:y2, x1:x2] = instance
    cls[0:4, 56:64] = -1  # an __ignore__ shape
    ins[cls == -1] = 0
    lblsave(root / "SegmentationClass/room.png", cls.astype(np.uint8))
    lblsave(root / "SegmentationObject/room.png", ins.astype(np.uint8))

    root = HERE / "labelme2voc_semantic"
    noise(root / "JPEGImages/field.jpg", 3)
    (root / "class_names.txt").write_text("_background_\ngrass\nsky")
    cls = np.zeros((HEIGHT, WIDTH), np.int32)
    cls[:20] = 2
    cls[30:] = 1
    lblsave(root / "SegmentationClass/field.png", cls.astype(np.uint8))


def roboflow_voc() -> None:
    """A Roboflow "Pascal VOC" export: XML beside each image in train/, 0-based corners, <occluded>."""
    root = HERE / "roboflow_voc/train"
    name = "pets_jpg.rf.3f1a9c.jpg"
    noise(root / name, 4)
    (root / name.replace(".jpg", ".xml")).write_text(f"""<annotation>
	<folder></folder>
	<filename>{name}</filename>
	<path>{name}</path>
	<source>
		<database>roboflow.com</database>
	</source>
	<size>
		<width>{WIDTH}</width>
		<height>{HEIGHT}</height>
		<depth>3</depth>
	</size>
	<segmented>0</segmented>
	<object>
		<name>cat</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>0</difficult>
		<occluded>0</occluded>
		<bndbox>
			<xmin>0</xmin>
			<xmax>25</xmax>
			<ymin>0</ymin>
			<ymax>30</ymax>
		</bndbox>
	</object>
	<object>
		<name>dog</name>
		<pose>Unspecified</pose>
		<truncated>1</truncated>
		<difficult>0</difficult>
		<occluded>0</occluded>
		<bndbox>
			<xmin>30</xmin>
			<xmax>64</xmax>
			<ymin>10</ymin>
			<ymax>48</ymax>
		</bndbox>
	</object>
</annotation>
""")


def supervision_voc() -> None:
    """supervision's own writer (detections_to_pascal_voc): a mask becomes <polygon> with 1-based vertices."""
    import supervision as sv

    root = HERE / "supervision_voc"
    noise(root / "JPEGImages/blob.jpg", 5)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[10:30, 12:40] = True
    detections = sv.Detections(xyxy=np.array([[12.0, 10.0, 40.0, 30.0]]), mask=mask[None], class_id=np.array([0]))
    xml = sv.dataset.formats.pascal_voc.detections_to_pascal_voc(detections, ["blob"], "blob.jpg", (HEIGHT, WIDTH, 3))
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations/blob.xml").write_text(xml)


def imagenet_voc() -> None:
    """ImageNet (ILSVRC) bounding-box XML: <filename> without extension, images named .JPEG."""
    root = HERE / "imagenet_voc/n01440764"
    noise(root / "n01440764_10026.JPEG", 6)
    (root / "n01440764_10026.xml").write_text(f"""<annotation>
	<folder>n01440764</folder>
	<filename>n01440764_10026</filename>
	<source>
		<database>ILSVRC_2012</database>
	</source>
	<size>
		<width>{WIDTH}</width>
		<height>{HEIGHT}</height>
		<depth>3</depth>
	</size>
	<segmented>0</segmented>
	<object>
		<name>n01440764</name>
		<pose>Unspecified</pose>
		<truncated>0</truncated>
		<difficult>0</difficult>
		<bndbox>
			<xmin>3</xmin>
			<ymin>5</ymin>
			<xmax>50</xmax>
			<ymax>40</ymax>
		</bndbox>
	</object>
</annotation>
""")


def voc_action() -> None:
    """The VOC2012 action-classification XML: <actions> flags and a reference <point> on each person."""
    root = HERE / "voc2012_action"
    noise(root / "JPEGImages/2012_000001.jpg", 7)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations/2012_000001.xml").write_text(f"""<annotation>
	<filename>2012_000001.jpg</filename>
	<folder>VOC2012</folder>
	<object>
		<name>person</name>
		<actions>
			<jumping>0</jumping>
			<phoning>1</phoning>
			<playinginstrument>0</playinginstrument>
			<reading>0</reading>
			<ridingbike>0</ridingbike>
			<ridinghorse>0</ridinghorse>
			<running>0</running>
			<takingphoto>0</takingphoto>
			<usingcomputer>0</usingcomputer>
			<walking>0</walking>
			<other>0</other>
		</actions>
		<bndbox>
			<xmax>40</xmax>
			<xmin>8</xmin>
			<ymax>46</ymax>
			<ymin>4</ymin>
		</bndbox>
		<point>
			<x>24</x>
			<y>12</y>
		</point>
	</object>
	<segmented>0</segmented>
	<size>
		<depth>3</depth>
		<height>{HEIGHT}</height>
		<width>{WIDTH}</width>
	</size>
	<source>
		<annotation>PASCAL VOC2012</annotation>
		<database>The VOC2012 Database</database>
		<image>flickr</image>
	</source>
</annotation>
""")


def roboflow_yolo() -> None:
    """A Roboflow "YOLOv8" export: data.yaml with `../train/images` paths, a `test` split listed but not
    exported, split folders each with images/ and labels/, README files at the top."""
    root = HERE / "roboflow_yolo"
    (root / "train/labels").mkdir(parents=True, exist_ok=True)
    (root / "valid/labels").mkdir(parents=True, exist_ok=True)
    noise(root / "train/images/a_jpg.rf.11aa.jpg", 8)
    noise(root / "valid/images/b_jpg.rf.22bb.jpg", 9)
    (root / "train/labels/a_jpg.rf.11aa.txt").write_text("0 0.25 0.25 0.5 0.5\n2 0.75 0.5 0.25 0.5\n")
    (root / "valid/labels/b_jpg.rf.22bb.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 3\n"
        "names: ['cat', 'dog', 'fox']\n\nroboflow:\n  workspace: demo\n  project: pets\n  version: 1\n"
        "  license: CC BY 4.0\n  url: https://universe.roboflow.com/demo/pets/dataset/1\n"
    )
    (root / "README.roboflow.txt").write_text("pets - v1\nThis dataset was exported via roboflow.com\n")


def label_studio_yolo() -> None:
    """Label Studio's "YOLO" export: classes.txt, images/, labels/, notes.json, no data.yaml."""
    root = HERE / "label_studio_yolo"
    noise(root / "images/c1.jpg", 10)
    noise(root / "images/c2.jpg", 11)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels/c1.txt").write_text("2 0.5 0.5 0.25 0.25\n")
    (root / "labels/c2.txt").write_text("")
    (root / "classes.txt").write_text("airplane\nboat\ncar\n")
    (root / "notes.json").write_text(json.dumps({"categories": [{"id": 0, "name": "airplane"}, {"id": 1, "name": "boat"}, {"id": 2, "name": "car"}], "info": {"year": 2024, "version": "1.0", "contributor": "Label Studio"}}, indent=2))


def cvat_project() -> None:
    """A CVAT project exported as "CVAT for images 1.1" with images, as dump_as_cvat_annotation writes a
    ProjectData: <meta><project> with <subsets>, images carrying subset and task_id, files under
    images/<subset>/, two-decimal coordinates, a tag, an ellipse, a skeleton and a cuboid."""
    root = HERE / "cvat_project"
    noise(root / "images/Train/a.jpg", 12)
    noise(root / "images/Validation/b.jpg", 13)
    skeleton_labels = "".join(
        f"""
        <label>
          <name>{name}</name>
          <color>#d12345</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>hand</parent>
        </label>"""
        for name in ("wrist", "thumb", "index")
    )
    (root / "annotations.xml").write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <project>
      <id>3</id>
      <name>hands and balls</name>
      <created>2024-05-02 09:12:44.123456+00:00</created>
      <updated>2024-05-02 10:01:02.654321+00:00</updated>
      <labels>
        <label>
          <name>ball</name>
          <color>#33ddff</color>
          <type>any</type>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>box</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>blurry</name>
          <color>#aaaaaa</color>
          <type>tag</type>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>hand</name>
          <color>#0c81b5</color>
          <type>skeleton</type>
          <attributes>
          </attributes>
          <svg>&lt;circle r="1.5" data-type="element node" data-element-id="1" data-node-id="1" data-label-name="wrist"&gt;&lt;/circle&gt;</svg>
        </label>{skeleton_labels}
      </labels>
      <owner>
        <username>admin</username>
        <email></email>
      </owner>
      <assignee></assignee>
      <subsets>Train
Validation</subsets>
    </project>
    <dumped>2024-05-02 10:05:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="a.jpg" subset="Train" task_id="7" width="{WIDTH}" height="{HEIGHT}">
    <box label="box" source="manual" occluded="0" xtl="2.00" ytl="3.00" xbr="20.50" ybr="30.25" z_order="0">
    </box>
    <ellipse label="ball" source="manual" occluded="1" cx="40.00" cy="20.00" rx="10.00" ry="5.00" rotation="30.00" z_order="0">
    </ellipse>
    <cuboid label="box" source="manual" occluded="0" xtl1="1.00" ytl1="1.00" xbl1="1.00" ybl1="9.00" xtr1="9.00" ytr1="1.00" xbr1="9.00" ybr1="9.00" xtl2="3.00" ytl2="3.00" xbl2="3.00" ybl2="11.00" xtr2="11.00" ytr2="3.00" xbr2="11.00" ybr2="11.00" z_order="0">
    </cuboid>
    <tag label="blurry" source="manual">
    </tag>
  </image>
  <image id="1" name="b.jpg" subset="Validation" task_id="8" width="{WIDTH}" height="{HEIGHT}">
    <skeleton label="hand" source="manual" z_order="0">
      <points label="wrist" source="manual" outside="0" occluded="0" points="10.00,40.00">
      </points>
      <points label="thumb" source="manual" outside="0" occluded="1" points="14.00,30.00">
      </points>
      <points label="index" source="manual" outside="1" occluded="0" points="20.00,28.00">
      </points>
    </skeleton>
  </image>
</annotations>
""")


def png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def labelme_files() -> None:
    """Files as labelme's write_label_file writes them (key order, shape keys, imageData as base64 of the
    image file, mask as base64 PNG of the crop): a 2-point polygon and an oriented_rectangle (both saved
    by current labelme), a mask with fractional corners, image flags, and imageData whose image differs
    from the file now at imagePath (resized after labelling)."""
    root = HERE / "labelme"

    def shape(label: str, shape_type: str, points: list[list[float]], mask: str | None = None) -> dict:
        return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": shape_type,
                "flags": {}, "mask": mask}

    def document(image_path: str, shapes: list[dict], flags: dict, image_data: str | None, size: tuple[int, int]) -> str:
        return json.dumps({"version": "7.1.0", "flags": flags, "shapes": shapes, "imagePath": image_path,
                           "imageData": image_data, "imageHeight": size[1], "imageWidth": size[0]}, indent=2)

    noise(root / "shapes.jpg", 14)
    crop = np.zeros((6, 8), np.uint8)
    crop[1:5, 2:7] = 1
    shapes = [
        shape("wire", "polygon", [[5.0, 5.0], [30.0, 9.0]]),
        shape("plate", "oriented_rectangle", [[20.0, 10.0], [40.0, 20.0], [35.0, 30.0], [15.0, 20.0]]),
        shape("stain", "mask", [[10.6, 21.5], [17.6, 26.5]], png_base64(crop * 255)),
        shape("frame", "rectangle", [[1.0, 2.0], [63.0, 47.0]]),
    ]
    (root / "shapes.json").write_text(document("shapes.jpg", shapes, {}, None, (WIDTH, HEIGHT)))

    drawn_on = np.random.default_rng(15).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    noise(root / "embedded.jpg", 16)  # the file at imagePath today: 64x48, not the 32x24 image labelled
    (root / "embedded.json").write_text(
        document("embedded.jpg", [shape("cat", "rectangle", [[2.0, 3.0], [30.0, 22.0]])],
                 {"indoor": True, "night": False}, png_base64(drawn_on), (32, 24))
    )


if __name__ == "__main__":
    labelme2voc_bbox()
    labelme2voc_segmentation()
    roboflow_voc()
    supervision_voc()
    imagenet_voc()
    voc_action()
    roboflow_yolo()
    label_studio_yolo()
    cvat_project()
    labelme_files()
