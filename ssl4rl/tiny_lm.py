"""A tiny, randomly initialised Qwen2 text model built offline: the stand-in for Qwen2.5-3B/7B-
Instruct in tests of the graph path, where no hub download is possible.

Qwen2's architecture (the text half of Qwen2.5-VL), the same offline byte-level BPE tokenizer as
the tiny VLM (Qwen's special tokens and chat format); it loads with `AutoTokenizer` /
`AutoModelForCausalLM` from the folder it is saved to, like the real model.
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.tiny_vlm import SPECIAL_TOKENS, train_tokenizer


def make_tiny_qwen2(out: str | Path, seed: int = 0) -> Path:
    """Build and save the tiny text model and its tokenizer to `out`; returns the folder."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    tokenizer = train_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=None, eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out

