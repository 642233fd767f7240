"""open_clip (mlfoundations/open_clip): CLIP and SigLIP image and text towers for search and zero-shot tagging.

Each spec names one architecture (`clip-vit-b-32`, `clip-vit-l-14`, `siglip-vit-b-16`); its weights files are
the official pretrained tags of that architecture (OpenAI's, LAION-2B's, WebLI's), downloaded and checked by
Studio's weights manager, never by open_clip itself. Preprocessing (mean, std, resize mode) and QuickGELU follow
open_clip's own record of each tag. `--weights` also takes a local checkpoint (state dict, open_clip training
checkpoint, OpenAI TorchScript archive) or a folder saved in open_clip's `local-dir` layout
(`open_clip_config.json` + weights), which is how `clip-local` loads any architecture, e.g. one trained here.
MobileCLIP is left out: Apple publishes its weights under a research-only licence.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from studio.models.protocols import PluginSpec, WeightsFile

_HF = "https://huggingface.co/{repo}/resolve/main/{file}"
_OPENAI = "https://openaipublic.azureedge.net/clip/models/{sha}/{arch}.pt"
CONFIG_FILE = "open_clip_config.json"


@dataclass(frozen=True, slots=True)
class Pretrained:
    """One official pretrained tag of an architecture and the file Studio stores it under."""

    tag: str
    file: WeightsFile


def _openai(arch: str, sha256: str) -> Pretrained:
    # OpenAI's release URLs carry the file's sha256 (their clip package checks it the same way)
    url = _OPENAI.format(sha=sha256, arch=arch)
    return Pretrained("openai", WeightsFile(f"{arch}.pt", url, sha256, None, f"OpenAI CLIP {arch} (TorchScript archive)"))


def _hub(arch: str, tag: str, repo: str, description: str) -> Pretrained:
    file = "open_clip_model.safetensors"
    return Pretrained(tag, WeightsFile(f"{arch}-{tag}.safetensors", _HF.format(repo=repo, file=file), None, None, description))


ARCHITECTURES: dict[str, tuple[str, tuple[Pretrained, ...]]] = {
    "clip-vit-b-32": ("ViT-B-32", (
        _openai("ViT-B-32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
        _hub("ViT-B-32", "laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "OpenCLIP ViT-B-32 on LAION-2B"),
    )),
    "clip-vit-l-14": ("ViT-L-14", (
        _openai("ViT-L-14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"),
        _hub("ViT-L-14", "laion2b_s32b_b82k", "laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "OpenCLIP ViT-L-14 on LAION-2B"),
    )),
    "siglip-vit-b-16": ("ViT-B-16-SigLIP", (
        _hub("ViT-B-16-SigLIP", "webli", "timm/ViT-B-16-SigLIP", "SigLIP ViT-B-16 on WebLI (Google); its tokenizer "
             "comes from the Hugging Face hub on first use"),
    )),
}


class OpenClipEmbedder:
    """The Embedder protocol over an open_clip model: BGR uint8 images and strings in, unit float32 rows out."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str) -> None:
        import torch

        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.model.to(device=device, dtype=self.dtype).eval()
        self._lock = threading.Lock()  # one model, many workers (GUI queries while a job embeds)
        self.dim = 0
        self.dim = int(self.embed_texts(["a"]).shape[1])

    def preprocess_images(self, images: Sequence[np.ndarray]) -> Any:
        """The model's input tensor (N, 3, S, S) for BGR images, made exactly as open_clip's transform makes it."""
        import torch
        from PIL import Image

        return torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(im[:, :, ::-1]))) for im in images])

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32, L2-normalised, for N BGR uint8 images (any sizes)."""
        return self.embed_pixels(self.preprocess_images(images))

    def embed_pixels(self, pixels: Any) -> np.ndarray:
        """(N, dim) float32 unit rows for an already preprocessed batch (see `preprocess_images`)."""
        import torch

        if len(pixels) == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._lock, torch.inference_mode():
            features = self.model.encode_image(pixels.to(self.device, self.dtype), normalize=True)
        return features.float().cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 unit rows for N strings."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self.tokenizer(list(texts)).to(self.device)
        with self._lock, torch.inference_mode():
            features = self.model.encode_text(tokens, normalize=True)
        return features.float().cpu().numpy()

    def embed_classes(self, class_names: Sequence[str]) -> np.ndarray:
        """(C, dim) unit rows: each class's text embedding averaged over the 80 ImageNet prompt templates that
        CLIP's authors used for zero-shot classification ("a photo of a {}.", "a sketch of a {}.", ...)."""
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        rows = []
        for name in class_names:
            prompts = self.embed_texts([template(name) for template in OPENAI_IMAGENET_TEMPLATES])
            mean = prompts.mean(axis=0)
            rows.append(mean / np.linalg.norm(mean))
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)


def _open_clip() -> Any:
    import open_clip

    return open_clip


def _from_local_dir(folder: Path, device: str) -> OpenClipEmbedder:
    from studio.models.weights import WeightsError

    open_clip = _open_clip()
    if not (folder / CONFIG_FILE).is_file():
        raise WeightsError(f"{folder} is a folder without {CONFIG_FILE}; pass a checkpoint file or an open_clip model folder")
    name = f"local-dir:{folder}"
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, device="cpu")
        tokenizer = open_clip.get_tokenizer(name)
    except (ValueError, RuntimeError, FileNotFoundError, KeyError) as exc:
        raise WeightsError(f"{folder} is not a loadable open_clip model ({' '.join(str(exc).split())[:300]})") from exc
    return OpenClipEmbedder(model, preprocess, tokenizer, device)


def load(*, plugin_id: str, weights: str | None = None, device: str | None = None) -> OpenClipEmbedder:
    """Build the architecture and load its weights: an official tag's file, a local file, or a model folder."""
    from studio.models.weights import OFFLINE_ENV, WeightsError, resolve_weights

    device = device or "cpu"
    if weights is not None and Path(weights).expanduser().is_dir():
        return _from_local_dir(Path(weights).expanduser(), device)
    spec = SPECS_BY_ID[plugin_id]
    if plugin_id not in ARCHITECTURES:
        if weights is not None and not Path(weights).expanduser().exists():
            raise WeightsError(f"weights folder {weights} not found")
        raise WeightsError(f"{plugin_id} needs --weights FOLDER holding {CONFIG_FILE} and the model's weights")
    arch, tags = ARCHITECTURES[plugin_id]
    path = resolve_weights(spec, weights)
    official = next((p for p in tags if p.file.name == path.name), tags[0])  # a local file: the default tag's recipe
    open_clip = _open_clip()
    recipe = open_clip.get_pretrained_cfg(arch, official.tag)
    model, _, preprocess = open_clip.create_model_and_transforms(
        arch, pretrained=None, device="cpu", force_quick_gelu=bool(recipe.get("quick_gelu", False)),
        image_mean=recipe.get("mean"), image_std=recipe.get("std"),
        image_interpolation=recipe.get("interpolation"), image_resize_mode=recipe.get("resize_mode"),
    )
    try:
        open_clip.load_checkpoint(model, str(path), weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a wrong or damaged file
        raise WeightsError(f"{path} does not fit {arch} ({' '.join(str(exc).split())[:300]})") from exc
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        os.environ["HF_HUB_OFFLINE"] = "1"  # SigLIP's tokenizer comes from the hub: offline means offline there too
    return OpenClipEmbedder(model, preprocess, open_clip.get_tokenizer(arch), device)


def _spec(plugin_id: str, title: str) -> PluginSpec:
    tags = ARCHITECTURES.get(plugin_id, ("", ()))[1]
    return PluginSpec(
        id=plugin_id,
        family="open_clip",
        task="embed",
        title=title,
        load=partial(load, plugin_id=plugin_id),
        weights=tuple(p.file for p in tags),
        devices=("cpu", "cuda", "mps"),
        options={"architecture": ARCHITECTURES[plugin_id][0] if tags else "from the model folder",
                 "pretrained": [p.tag for p in tags]},
    )


SPECS = (
    _spec("clip-vit-b-32", "CLIP ViT-B/32 (open_clip: openai, laion2b_s34b_b79k)"),
    _spec("clip-vit-l-14", "CLIP ViT-L/14 (open_clip: openai, laion2b_s32b_b82k)"),
    _spec("siglip-vit-b-16", "SigLIP ViT-B/16 (open_clip: webli)"),
    _spec("clip-local", "any open_clip model from a folder (open_clip_config.json + weights)"),
)
SPECS_BY_ID = {spec.id: spec for spec in SPECS}
