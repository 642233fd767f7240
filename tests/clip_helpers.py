"""Tiny open_clip models built offline: random-init ones, and one trained here on coloured shapes.

Both are saved in open_clip's `local-dir` layout (open_clip_config.json + weights), the layout Studio's
`clip-local` plugin (and `--weights FOLDER` of every CLIP plugin) loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IMAGE_SIZE = 32
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
COLOURS = {"red": (0, 0, 230), "green": (0, 200, 0), "blue": (230, 0, 0), "yellow": (0, 220, 230)}
"""BGR, as OpenCV writes them."""
SHAPES = ("circle", "square", "triangle")
CLASSES = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]


def save_model(model, folder: Path) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}))
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def random_clip(folder: Path, *, seed: int = 0) -> Path:
    """A tiny CLIP with random weights, saved as a model folder."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CONFIG)
    return save_model(model, folder)


def draw_shape(colour: str, shape: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A BGR image of one coloured shape at a random place and size on grey noise."""
    import cv2

    image = rng.integers(90, 150, (size, size, 3), dtype=np.uint8)
    radius = int(rng.integers(size // 4, size // 3 + 2))
    cx, cy = (int(v) for v in rng.integers(radius + 1, size - radius - 1, 2))
    bgr = tuple(int(c) for c in COLOURS[colour])
    if shape == "circle":
        cv2.circle(image, (cx, cy), radius, bgr, -1)
    elif shape == "square":
        cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), bgr, -1)
    else:
        points = np.array([[cx, cy - radius], [cx - radius, cy + radius], [cx + radius, cy + radius]], np.int32)
        cv2.fillPoly(image, [points], bgr)
    return image


def write_shapes(folder: Path, per_class: int, *, seed: int) -> dict[str, str]:
    """`per_class` images of each coloured shape; returns the class of each file name."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(per_class):
        for name in CLASSES:
            colour, shape = name.split()
            file = f"{colour}-{shape}-{i}.png"
            cv2.imwrite(str(folder / file), draw_shape(colour, shape, rng))
            truth[file] = name
    return truth


def train_shapes_clip(folder: Path, *, steps: int = 400, seed: int = 0) -> Path:
    """Train the tiny CLIP contrastively on generated shapes with captions ("a red circle"): 1-2 min of CPU."""
    import open_clip
    import torch
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    from PIL import Image

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = open_clip.CLIP(**TINY_CONFIG)
    preprocess = open_clip.image_transform(IMAGE_SIZE, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=TINY_CONFIG["text_cfg"]["context_length"])
    loss_fn = open_clip.ClipLoss()
    # the 49,408-token embedding table is most of the parameters but only ~10 tokens occur: frozen at its
    # random init it still tells the words apart, and each step costs a third
    model.token_embedding.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    # half the captions are CLIP's zero-shot prompts ("a photo of the red circle."), so that the prompt
    # ensemble of zero-shot tagging speaks a language the model knows
    templates = [lambda c: f"a {c}", *OPENAI_IMAGENET_TEMPLATES]
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread costs more than it gives, most on a busy machine
    try:
        for _ in range(steps):
            names = [CLASSES[i] for i in rng.permutation(len(CLASSES))]  # one per class: no caption twice
            images = [draw_shape(*name.split(), rng) for name in names]
            pixels = torch.stack([preprocess(Image.fromarray(im[:, :, ::-1])) for im in images])
            captions = [templates[0 if rng.random() < 0.5 else int(rng.integers(1, len(templates)))](n) for n in names]
            image_features, text_features, logit_scale = model(pixels, tokenizer(captions))
            loss = loss_fn(image_features, text_features, logit_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return save_model(model, folder)
