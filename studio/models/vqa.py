"""What every vision-language backend shares: the region view, image encoding, the preflight image, and
turning grounded answers (boxes written as text) into detections.

Plugins call `region_view` so that "crop with context" and "box drawn on the whole image" mean the same
for a local model and a server. Images are BGR uint8 (H, W, 3) as everywhere in Studio.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import AskParams, ChatTurn, Detection

DRAWN_BOX_BGR = (255, 0, 255)
"""Magenta: rare in photos, so the drawn region stands out from what is in the image."""


def region_view(image: np.ndarray, region: Box | None, params: AskParams) -> np.ndarray:
    """The pixels the model sees: the whole image, the region cropped with context, or the image with the
    region drawn on it (a copy; the input is never modified)."""
    if region is None:
        return image
    height, width = image.shape[:2]
    if params.region_view == "draw":
        import cv2

        drawn = image.copy()
        thickness = max(2, round(min(height, width) / 150))
        corner1 = (round(region.x1), round(region.y1))
        corner2 = (round(region.x2), round(region.y2))
        cv2.rectangle(drawn, corner1, corner2, DRAWN_BOX_BGR, thickness)
        return drawn
    pad_x = (region.x2 - region.x1) * params.context
    pad_y = (region.y2 - region.y1) * params.context
    x1, y1 = max(0, math.floor(region.x1 - pad_x)), max(0, math.floor(region.y1 - pad_y))
    x2, y2 = min(width, math.ceil(region.x2 + pad_x)), min(height, math.ceil(region.y2 + pad_y))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise StudioError(f"the region {region} lies outside the {width}x{height} image")
    return image[y1:y2, x1:x2]


def conversation(question: str, history: Sequence[ChatTurn]) -> list[tuple[str, str]]:
    """The chat as (role, text), oldest first: the earlier questions with their answers, then `question`.
    Backends send the image with the first user turn."""
    turns: list[tuple[str, str]] = []
    for turn in history:
        turns += [("user", turn.question), ("assistant", turn.answer)]
    return [*turns, ("user", question)]


def image_data_uri(image: np.ndarray, *, quality: int = 90) -> str:
    """A base64 `data:image/jpeg` URI: the one image form every OpenAI-compatible server accepts (Ollama
    takes nothing else; URLs to local files mean nothing to a remote server)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StudioError("could not encode the image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


# ---- preflight: does the model see the image at all? ---------------------------------------------------

PREFLIGHT_COLOURS: dict[str, tuple[int, int, int]] = {"red": (0, 0, 255), "green": (0, 160, 0), "blue": (255, 0, 0)}
PREFLIGHT_QUESTION = "What is the colour of this image? Answer with one word."


def flat_colour_image(colour: str, size: int = 64) -> np.ndarray:
    """A size x size image of one flat colour (BGR), for the preflight check."""
    return np.full((size, size, 3), PREFLIGHT_COLOURS[colour], dtype=np.uint8)


def names_colour(answer: str, colour: str) -> bool:
    """Whether the answer names the colour and no other preflight colour ("red", "Red.", "It is red")."""
    words = set(re.findall(r"[a-z]+", answer.lower()))
    return colour in words and not (words & (set(PREFLIGHT_COLOURS) - {colour}))


# ---- constrained answers -----------------------------------------------------------------------------


def choices_prompt(question: str, choices: Sequence[str]) -> str:
    """The question with the allowed answers spelled out: portable to every model and server."""
    return f"{question}\nAnswer with exactly one of: {', '.join(choices)}."


def match_choice(answer: str, choices: Sequence[str]) -> str | None:
    """The choice an answer names: an exact match (ignoring case and punctuation), else the only choice
    that appears as whole words in it; None when it names none or several."""
    def norm(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    said = norm(answer)
    for choice in choices:
        if norm(choice) == said:
            return choice
    found = [c for c in choices if norm(c) and re.search(rf"\b{re.escape(norm(c))}\b", said)]
    return found[0] if len(found) == 1 else None


# ---- grounded answers: boxes written as text -----------------------------------------------------------

BoxFormat = Literal["auto", "qwen2.5-vl", "qwen3-vl", "florence-2", "paligemma"]
BOX_FORMATS: tuple[BoxFormat, ...] = ("auto", "qwen2.5-vl", "qwen3-vl", "florence-2", "paligemma")

_FLORENCE_OBJECT = re.compile(r"([^<>]*?)((?:<loc_\d+>){4,})")
_FLORENCE_LOC = re.compile(r"<loc_(\d+)>")
_FLORENCE_BINS = 1000
_QWEN_PATCH = 28
_QWEN_MIN_PIXELS = 56 * 56
_QWEN_MAX_PIXELS = 28 * 28 * 16384


def find_prompt(what: str, box_format: BoxFormat) -> str:
    """The prompt each family was trained on for "find every X"."""
    if box_format == "paligemma":
        return f"detect {what}"
    if box_format == "florence-2":
        return f"<CAPTION_TO_PHRASE_GROUNDING>{what}"
    return f"Locate every {what} in the image and output their bbox coordinates in JSON format."


def detect_box_format(text: str, model_name: str = "") -> BoxFormat:
    """Which model family wrote `text` (its tokens give it away), "auto" when nothing matches."""
    if "<loc_" in text:
        return "florence-2"
    if re.search(r"<loc\d{4}>", text):
        return "paligemma"
    if "bbox_2d" in text or "[" in text:
        return "qwen3-vl" if "qwen3" in model_name.lower() else "qwen2.5-vl"
    return "auto"


def qwen_input_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) Qwen2.5-VL's processor resizes an image to, by its `smart_resize` rule:
    multiples of 28 near the original size within its pixel budget. Its boxes are pixels of that size."""
    h_bar = max(_QWEN_PATCH, round(height / _QWEN_PATCH) * _QWEN_PATCH)
    w_bar = max(_QWEN_PATCH, round(width / _QWEN_PATCH) * _QWEN_PATCH)
    if h_bar * w_bar > _QWEN_MAX_PIXELS:
        beta = math.sqrt(height * width / _QWEN_MAX_PIXELS)
        h_bar = math.floor(height / beta / _QWEN_PATCH) * _QWEN_PATCH
        w_bar = math.floor(width / beta / _QWEN_PATCH) * _QWEN_PATCH
    elif h_bar * w_bar < _QWEN_MIN_PIXELS:
        beta = math.sqrt(_QWEN_MIN_PIXELS / (height * width))
        h_bar = math.ceil(height * beta / _QWEN_PATCH) * _QWEN_PATCH
        w_bar = math.ceil(width * beta / _QWEN_PATCH) * _QWEN_PATCH
    return w_bar, h_bar


def _florence_boxes(text: str, width: int, height: int) -> list[tuple[str, list[float]]]:
    """Florence-2's `label<loc_x1><loc_y1><loc_x2><loc_y2>...` (several boxes may share a label).

    supervision's `from_florence_2` takes the dict of Florence's own processor, not the text a server
    returns, so the text is parsed here: coordinates are bins of 1/1000 of the size, taken at their centre.
    """
    found = []
    cleaned = re.sub(r"</?s>|<pad>", "", text)
    for phrase, locs in _FLORENCE_OBJECT.findall(cleaned):
        bins = [int(v) for v in _FLORENCE_LOC.findall(locs)]
        for i in range(0, len(bins) - len(bins) % 4, 4):
            x1, y1, x2, y2 = bins[i : i + 4]
            found.append((phrase.strip(), [
                (x1 + 0.5) * width / _FLORENCE_BINS, (y1 + 0.5) * height / _FLORENCE_BINS,
                (x2 + 0.5) * width / _FLORENCE_BINS, (y2 + 0.5) * height / _FLORENCE_BINS,
            ]))
    return found


def parse_boxes(
    text: str,
    image_size: tuple[int, int],
    *,
    box_format: BoxFormat = "auto",
    model_name: str = "",
    default_label: str = "object",
    input_size: tuple[int, int] | None = None,
) -> list[Detection]:
    """The boxes a grounded answer describes, in pixels of the (width, height) image it was asked about.

    Qwen2.5-VL writes JSON with pixel boxes of its resized input (`input_size`, by default what its
    processor makes of `image_size`), Qwen3-VL the same JSON on a 0..1000 scale; Florence-2 and PaliGemma
    write location tokens. Parsing uses supervision's `Detections.from_vlm` where it takes text. An answer
    with no boxes gives an empty list; a malformed one raises a StudioError.
    """
    width, height = image_size
    chosen = detect_box_format(text, model_name) if box_format == "auto" else box_format
    named: list[tuple[str, list[float]]]
    if chosen == "florence-2":
        named = _florence_boxes(text, width, height)
    elif chosen == "auto":
        return []
    else:
        import supervision as sv

        try:
            if chosen == "paligemma":
                xyxy, _, names = sv.detection.vlm.from_paligemma(text, resolution_wh=(width, height))
            elif chosen == "qwen3-vl":
                xyxy, _, names = sv.detection.vlm.from_qwen_3_vl(text, resolution_wh=(width, height))
            else:
                xyxy, _, names = sv.detection.vlm.from_qwen_2_5_vl(
                    text, input_wh=input_size or qwen_input_size(width, height), resolution_wh=(width, height)
                )
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise StudioError(f"the answer is not in {chosen}'s box format ({exc}): {text[:120]!r}") from exc
        named = [(str(name), [float(v) for v in box]) for box, name in zip(xyxy, names, strict=True)]
    detections = []
    for name, (x1, y1, x2, y2) in named:
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        if x2 > x1 and y2 > y1:
            detections.append(Detection(Box(x1, y1, x2, y2), name.strip() or default_label, 1.0))
    return detections
