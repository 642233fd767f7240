"""A tiny random-init LLaVA with a locally built tokenizer and processor, saved as a model folder.

Built offline in about a second (a 0.1 M-parameter model): the same code path as a real model id or folder,
for tests and bench/ask.py. Its answers are random words; what matters is that they stream and are stored.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}"
    "{% else %}ASSISTANT: {% for c in m['content'] %}{{ c['text'] }} {% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_tiny_llava(folder: Path, *, seed: int = 0) -> Path:
    """Save a tiny LLaVA (CLIP vision tower, Llama text model) with its processor into `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(seed)
    words = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:"] + [f"w{i}" for i in range(60)]
    vocab = {word: i for i, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    text = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       eos_token_id=vocab["</s>"], bos_token_id=vocab["<s>"], pad_token_id=vocab["<pad>"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"], vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = None  # random weights: never stop early, so max_tokens decides
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=fast, patch_size=8,
                               vision_feature_select_strategy="full", chat_template=CHAT_TEMPLATE,
                               num_additional_image_tokens=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
