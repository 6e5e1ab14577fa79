"""Loading a model by what it is: a text model (graph puzzles) loads with AutoModelForCausalLM and
its tokenizer, a vision-language model with AutoModelForImageTextToText and its processor.

TRL training, the hf evaluation backend, the verl hf rollout, `ssl4rl check`, merge and the
tiny models' warm start all ask the same two questions (which kind, which vision tokens to keep
out of sampling), so the answers live here once.
"""

from __future__ import annotations

import json
from pathlib import Path

# Tokens a policy must never sample: Qwen2.5-VL's forward fails on stray vision tokens.
VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def is_text_model(model: str | Path) -> bool:
    """A model without a vision tower (read from its config; a hub id is read from the hub cache)."""
    config = Path(model).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        try:
            from transformers import AutoConfig

            return not hasattr(AutoConfig.from_pretrained(str(model)), "vision_config")
        except (OSError, ValueError):
            return False
    return "vision_config" not in data


def auto_model_class(model: str | Path):
    """The Auto class a model folder loads with: AutoModelForCausalLM for a text model,
    AutoModelForImageTextToText for a vision-language one (what `is_text_model` tells apart)."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    return AutoModelForCausalLM if is_text_model(model) else AutoModelForImageTextToText


def processor_class(model: str | Path):
    """AutoTokenizer for a text model (it has no processor), AutoProcessor for a vision-language one."""
    from transformers import AutoProcessor, AutoTokenizer

    return AutoTokenizer if is_text_model(model) else AutoProcessor


def load_model(model: str | Path, dtype):
    """The model with its Auto class, in `dtype`."""
    return auto_model_class(model).from_pretrained(model, dtype=dtype)


def load_processor(model: str | Path, **kwargs):
    """The tokenizer of a text model, the processor of a vision-language one."""
    return processor_class(model).from_pretrained(model, **kwargs)


def tokenizer_of(processor):
    """A processor's tokenizer; a text model's processing class is its tokenizer already."""
    return getattr(processor, "tokenizer", processor)


def vision_token_ids(tokenizer) -> list[int]:
    """Ids to suppress during sampling (see VISION_TOKENS), those the tokenizer has."""
    vocab = tokenizer.get_vocab()
    return [vocab[token] for token in VISION_TOKENS if token in vocab]
