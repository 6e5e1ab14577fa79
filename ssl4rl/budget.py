"""The prompt-token budget: every row's text and image tokens fit the trainer's prompt length.

verl drops a row longer than `data.max_prompt_length` without a word (or crashes on it with
`truncation: error`), so the builder counts each row the way a Qwen-VL processor will see it and
downscales the source image just enough when a row is over the budget.

Image tokens follow Qwen2-VL's `smart_resize` (also qwen-vl-utils' and verl's): each side
rounded to a multiple of the patch factor (28 px for Qwen2-VL / Qwen2.5-VL: 14 px patches
merged 2x2; 32 for Qwen3-VL), the area clamped to [min_pixels, max_pixels], one token per
factor x factor cell, plus `<|vision_start|>` and `<|vision_end|>`.

Text tokens: exact with a processor folder (its tokenizer and chat template). Without one, image
builds use an upper bound: a byte-level BPE (Qwen's) never makes more tokens than the text has
UTF-8 bytes, plus Qwen's default chat template around one user turn (system prompt included, 57
tokens at most). The bound is about 4x too high on English, which starved graph prompts (mostly
text), so graph builds use a calibrated estimate instead (`estimate_text_tokens`): Qwen's
pre-tokenizer splits numbers into single digits, so digits, punctuation and newlines count one
token each, a word of n letters ceil(n / 3) tokens, other characters one per UTF-8 byte. On the
words of graph prompts that is 3.0 characters per token where the published ratio of the
cl100k-style BPE Qwen's tokenizer starts from is about 4, so it errs high by about a third
(docs/graphs.md has the measured figures); `--processor` is exact.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from ssl4rl.tasks.common import IMAGE_PLACEHOLDER

DEFAULT_MAX_PROMPT_TOKENS = 1024  # what a build fits by default: configs/verl_grpo.yaml's data.max_prompt_length

# "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" ...
# "<|im_end|>\n<|im_start|>assistant\n": 5 special tokens and 52 bytes of text.
CHAT_TEMPLATE_TOKENS = 57
VISION_MARKERS = 2  # <|vision_start|> ... <|vision_end|> around each image's pad tokens
LETTERS_PER_TOKEN = 3  # the estimate's word cost: ceil(letters / 3); English averages about 4 per token
_PIECES = re.compile(r"[A-Za-z]+|[0-9]|\n|[ \t]+|[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]|[^\x00-\x7f]+|.", re.S)


def estimate_text_tokens(text: str) -> int:
    """A calibrated count of a byte-level BPE's tokens without its vocabulary (see the module
    docstring): words ceil(letters / 3), digits, punctuation and newlines one each, spaces free
    (BPE merges them into the next word), other characters one per UTF-8 byte.

    >>> estimate_text_tokens("12: a telescope, then 7-8")
    13
    """
    total = 0
    for piece in _PIECES.findall(text):
        first = piece[0]
        if first.isascii() and first.isalpha():
            total += -(-len(piece) // LETTERS_PER_TOKEN)
        elif first in " \t":
            continue
        else:
            total += len(piece.encode("utf-8"))
    return total


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The size a Qwen-VL processor resizes an image to (qwen-vl-utils' rule).

    >>> smart_resize(500, 375, 28, 3136, 12845056)
    (504, 364)
    >>> smart_resize(10, 10, 28, 3136, 12845056)
    (56, 56)
    """
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class TokenBudget:
    """How a row is counted and the most tokens it may have (0: no cap, lengths still counted)."""

    max_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    factor: int = 28
    min_pixels: int = 4 * 28 * 28  # qwen-vl-utils' and verl's defaults
    max_pixels: int = 16384 * 28 * 28
    processor: str | None = None  # a processor folder: exact text tokens
    estimate: bool = False  # without a processor: the calibrated estimate (graphs), not the byte bound

    @classmethod
    def from_processor(cls, path: str, max_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> "TokenBudget":
        """Patching and pixel limits from a processor folder (offline); a text model's folder (a
        tokenizer only, for graph puzzles) keeps the defaults, which its rows never use."""
        image_processor = getattr(_processor(path), "image_processor", None)
        patch = getattr(image_processor, "patch_size", 14)
        merge = getattr(image_processor, "merge_size", 2)
        size = getattr(image_processor, "size", None) or {}
        min_pixels = getattr(image_processor, "min_pixels", None) or size.get("shortest_edge") or cls.min_pixels
        max_pixels = getattr(image_processor, "max_pixels", None) or size.get("longest_edge") or cls.max_pixels
        return cls(max_tokens, patch * merge, int(min_pixels), int(max_pixels), str(path))

    def image_tokens(self, width: int, height: int) -> int:
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        return (h // self.factor) * (w // self.factor) + VISION_MARKERS

    def text_tokens(self, prompt: str) -> int:
        """Tokens of everything but the images' own tokens: the prompt in the chat template."""
        if self.processor is None and self.estimate:
            return estimate_text_tokens(prompt.replace(IMAGE_PLACEHOLDER, "")) + CHAT_TEMPLATE_TOKENS
        if self.processor is None:
            return len(prompt.replace(IMAGE_PLACEHOLDER, "").encode("utf-8")) + CHAT_TEMPLATE_TOKENS
        processor = _processor(self.processor)
        tokenizer = getattr(processor, "tokenizer", processor)  # a text model's folder loads as its tokenizer
        images = prompt.count(IMAGE_PLACEHOLDER)
        content = prompt.replace(IMAGE_PLACEHOLDER, "<|vision_start|><|image_pad|><|vision_end|>")
        text = tokenizer.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) - 3 * images

    def count(self, prompt: str, sizes: list[tuple[int, int]]) -> int:
        """The row's prompt length as the trainer sees it; sizes are (width, height) per image."""
        return self.text_tokens(prompt) + sum(self.image_tokens(w, h) for w, h in sizes)

    def fits(self, tokens: int) -> bool:
        return self.max_tokens <= 0 or tokens <= self.max_tokens


@functools.lru_cache(maxsize=4)
def _processor(path: str):
    try:
        from transformers import AutoProcessor
    except ImportError:
        raise ImportError("--processor needs transformers: pip install 'ssl4rl[train]'") from None
    return AutoProcessor.from_pretrained(path)


def length_stats(histogram: dict) -> dict:
    """min / median / p99 / max of a {tokens: rows} histogram (nearest rank).

    >>> length_stats({100: 98, 300: 1, 900: 1})
    {'min': 100, 'median': 100, 'p99': 300, 'max': 900}
    """
    counts = sorted((int(k), int(v)) for k, v in histogram.items() if int(v) > 0)
    total = sum(v for _, v in counts)
    if not total:
        return {}

    def rank(q: float) -> int:
        target, seen = max(1, math.ceil(q * total)), 0
        for tokens, n in counts:
            seen += n
            if seen >= target:
                return tokens
        return counts[-1][0]

    return {"min": counts[0][0], "median": rank(0.5), "p99": rank(0.99), "max": counts[-1][0]}
