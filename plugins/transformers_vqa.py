"""Local vision-language models through transformers: Qwen2.5-VL, SmolVLM, LLaVA, PaliGemma and the like.

A model is a Hugging Face model id (downloaded into the Hugging Face cache on first use on a user's
machine) or a local folder holding a saved model and processor. `AutoModelForImageTextToText` and
`AutoProcessor` pick the architecture. With `HF_HUB_OFFLINE=1` (or `STUDIO_OFFLINE=1`) nothing is
downloaded: a model missing from the cache is one clear error. Tokens stream through transformers'
`TextIteratorStreamer` while `generate` runs on its own thread; closing the answer's generator sets a
stopping criterion, so generation ends within one token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.shapes import Box
from studio.models.protocols import DEFAULT_ASK_PARAMS, AskParams, ChatTurn, PluginSpec, WeightsFile
from studio.models.vqa import conversation, region_view
from studio.models.weights import WeightsError

DEFAULT_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"
DTYPES = ("auto", "float32", "float16", "bfloat16")
FIRST_TOKEN_TIMEOUT_S = 600.0
"""How long the streamer waits for the next token before giving up on a stalled generate thread."""


def _offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "STUDIO_OFFLINE"))


def _dtype(name: str, device: str) -> Any:
    import torch

    if name not in DTYPES:
        raise StudioError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


class TransformersVQA:
    """A loaded image-text-to-text model with its processor; one answer at a time (a lock guards generate)."""

    def __init__(self, model: Any, processor: Any, *, device: str, model_name: str) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.model_name = model_name
        self._lock = threading.Lock()

    def inputs(self, image: np.ndarray, question: str, history: Sequence[ChatTurn]) -> Any:
        """Model inputs: through the processor's chat template when it has one (history included), else the
        plain prompt after the image (PaliGemma's "detect cat", Florence's task tokens)."""
        import cv2
        from PIL import Image

        picture = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        if getattr(self.processor, "chat_template", None):
            (role, first), *later = conversation(question, history)
            messages: list[dict[str, Any]] = [
                {"role": role, "content": [{"type": "image", "image": picture}, {"type": "text", "text": first}]}
            ]
            messages += [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in later]
            inputs = self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
            )
        else:
            if history:
                raise StudioError(f"{self.model_name} has no chat template, so it cannot take follow-up questions")
            inputs = self.processor(images=picture, text=question, return_tensors="pt")
        return inputs.to(self.device, dtype=self.model.dtype)

    def generate_kwargs(self, inputs: Any, params: AskParams) -> dict[str, Any]:
        """What `generate` gets: greedy at temperature 0, sampling above."""
        kwargs: dict[str, Any] = {**inputs, "max_new_tokens": params.max_tokens}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature)
        else:
            kwargs.update(do_sample=False)
        return kwargs

    def ask(
        self,
        image: np.ndarray,
        question: str,
        *,
        region: Box | None = None,
        history: Sequence[ChatTurn] = (),
        params: AskParams = DEFAULT_ASK_PARAMS,
    ) -> Generator[str, None, None]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer, set_seed

        view = region_view(image, region, params)
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=FIRST_TOKEN_TIMEOUT_S)
        failure: list[BaseException] = []

        def run() -> None:
            import torch

            # the processor runs here too, not on the caller's thread: its torch ops would hold up the GUI, and
            # on a busy CPU torch ran several times slower on the main thread than on a worker (bench/ask.py)
            try:
                with self._lock, torch.inference_mode():
                    kwargs = self.generate_kwargs(self.inputs(view, question, history), params)
                    kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]))
                    if params.seed is not None:
                        set_seed(params.seed)
                    self.model.generate(**kwargs)
            except BaseException as exc:  # re-raised on the caller's thread below
                failure.append(exc)
                streamer.end()  # unblock the reader

        return self._stream(threading.Thread(target=run, name="vqa-generate", daemon=True), streamer, stop, failure)

    def _stream(
        self, thread: threading.Thread, streamer: Any, stop: threading.Event, failure: list[BaseException]
    ) -> Generator[str, None, None]:
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            thread.join()
        if failure:
            if isinstance(failure[0], StudioError):
                raise failure[0]
            raise StudioError(f"{self.model_name} failed while generating: {failure[0]}") from failure[0]


def load(*, weights: str | None = None, device: str | None = None, dtype: str = "auto", **_options: Any) -> TransformersVQA:
    """Load a model id or local folder (`weights`; default DEFAULT_MODEL) on `device`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar would garble the streamed answer
    source = weights or DEFAULT_MODEL
    chosen = device or "cpu"
    local = Path(source).expanduser()
    if local.exists() and not local.is_dir():
        raise WeightsError(f"{source} is a file; a transformers model is a folder (config.json, weights, processor)")
    local_only = local.is_dir() or _offline()
    torch_dtype = _dtype(dtype, chosen)
    try:
        processor = AutoProcessor.from_pretrained(str(local) if local.is_dir() else source, local_files_only=local_only)
        model = AutoModelForImageTextToText.from_pretrained(
            str(local) if local.is_dir() else source, dtype=torch_dtype, local_files_only=local_only
        )
    except (OSError, ValueError, KeyError) as exc:
        if local.is_dir():
            raise WeightsError(f"{source} does not hold a transformers vision-language model ({exc})") from exc
        if _offline():
            raise WeightsError(
                f"{source} is not in the Hugging Face cache and offline mode is on (HF_HUB_OFFLINE/STUDIO_OFFLINE); "
                "download it once online, or pass a local model folder"
            ) from exc
        raise WeightsError(f"could not load {source} from the Hugging Face hub ({str(exc).splitlines()[0]})") from exc
    return TransformersVQA(model.to(chosen).eval(), processor, device=chosen, model_name=source)


SPECS = (
    PluginSpec(
        id="transformers-vqa",
        family="transformers",
        task="ask",
        title="Vision-language models through transformers (Qwen2.5-VL, SmolVLM, LLaVA, PaliGemma, ...)",
        load=load,
        weights=(
            WeightsFile(DEFAULT_MODEL, url=f"https://huggingface.co/{DEFAULT_MODEL}",
                        description="SmolVLM 256M instruct: small enough for a CPU; any image-text-to-text model id works"),
        ),
        devices=("cpu", "cuda", "mps"),
        options={"dtypes": list(DTYPES)},
    ),
)
