"""A tiny, randomly initialised Qwen2.5-VL built offline: the stand-in for a real checkpoint in
tests and in the CPU demo, where no hub download is possible.

It has Qwen2.5-VL's architecture (M-RoPE, windowed vision tower, patch merger), a byte-level
BPE tokenizer trained here with `tokenizers` that carries Qwen's special tokens and chat
format, and a `Qwen2_5_VLProcessor`; it loads with `AutoProcessor` /
`AutoModelForImageTextToText` from the folder it is saved to, exactly like the real model.
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.schema import difficulty_of

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip

# Qwen2-VL's chat format: system turn by default, images as <|vision_start|><|image_pad|><|vision_end|>.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}{% set image_count.value = image_count.value + 1 %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "<think> The second image is the first one rotated. </think> <answer>90</answer>",
    "<think> compare the tiles </think> <answer>3,1,4,2</answer>",
    "<answer>0</answer> <answer>180</answer> <answer>270</answer> <answer>45</answer>",
    "<answer>top-left</answer> <answer>top-right</answer> <answer>bottom-left</answer> <answer>bottom-right</answer>",
    "<answer>middle-center</answer> <answer>positive</answer> <answer>negative</answer>",
    "Image 1: Image 2: Tile 1: which angle degrees counter-clockwise rotated crop grid cell",
    "First think about the question step by step, then give only the final answer.",
    "0123456789 ,.;:!?()[]{}<>/-_'\" abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def train_tokenizer(vocab_size: int = 400):
    """Byte-level BPE on a small puzzle-flavoured corpus, with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"},
    )  # fmt: skip


# Sizes of the offline model: `tiny` (~0.2 M parameters) makes tests fast; `small` (~1.3 M) is
# the smallest that learns the shapes puzzles by GRPO from nothing in minutes on a CPU.
SIZES = {
    "tiny": {"text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "mrope_section": [2, 3, 3]},
             "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2}, "max_pixels": 112 * 112},
    "small": {"text": {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 3, "mrope_section": [4, 6, 6]},
              "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 192, "num_heads": 4}, "max_pixels": 168 * 168},
}  # fmt: skip


def make_tiny_qwen2_5_vl(out: str | Path, seed: int = 0, min_pixels: int = 56 * 56, max_pixels: int | None = None, size: str = "tiny") -> Path:
    """Build and save the offline model (`size`: a key of SIZES), tokenizer and processor to
    `out`; returns the folder."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out)
    text = SIZES[size]["text"]
    tokenizer = train_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": text["hidden_size"],
            "intermediate_size": text["intermediate_size"],
            "num_hidden_layers": text["num_hidden_layers"],
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": text["mrope_section"]},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            **SIZES[size]["vision"],
            "out_hidden_size": text["hidden_size"],
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = None
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels or SIZES[size]["max_pixels"])
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def answer_pools(rows) -> dict[tuple[str, str], list[str]]:
    """The ground truths of each (task, difficulty) in the rows, sorted: a warm-start target is
    one of them, so it is a real answer of that kind of puzzle (a jigsaw 3x3 answer for a 3x3
    jigsaw, never a mix manifest key like `rotation:90`)."""
    pools: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        pools.setdefault(_pool_key(row), set()).add(str(row["reward_model"]["ground_truth"]))
    return {key: sorted(answers) for key, answers in pools.items()}


def _pool_key(row) -> tuple[str, str]:
    info = row["extra_info"]
    return info["task"], difficulty_of(info)


def in_answer_format(answer) -> str:
    return f"<think> </think> <answer>{answer}</answer>"


def format_target(rng, row, pools: dict[tuple[str, str], list[str]]) -> str:
    """A response in the answer format with an answer drawn uniformly from the row's pool."""
    return in_answer_format(rng.choice(pools[_pool_key(row)]))


def true_target(row) -> str:
    """The row's own answer in the answer format: supervised targets, for asking whether a model
    can learn a puzzle at all, apart from RL (bench/supervised_probe.py)."""
    return in_answer_format(row["reward_model"]["ground_truth"])


def blank(image):
    """A flat grey canvas the size of `image`: the warm-start's stand-in for every picture."""
    from PIL import Image

    return Image.new("RGB", image.size, (128, 128, 128))


def warm_start(model_dir: str | Path, data_dir: str | Path, steps: int = 80, batch_size: int = 4, lr: float = 3e-3, seed: int = 0, progress: bool = True, grey: bool = False, true_answers: bool = False) -> list[float]:
    """Teach the random model the answer *format* with a few SFT steps on random answers.

    Targets are `<think> </think> <answer>A</answer>` with A drawn uniformly from the answers
    the row's task and level use (`answer_pools`), so the model learns to emit a parseable answer
    but nothing about the puzzle: GRPO then starts near chance with reward variance to learn
    from. `grey`: show every picture as a flat grey canvas of its size. Targets that ignore real
    pictures teach the model to ignore pictures (the image-dependent part of its last hidden
    state shrank 20x in 200 such steps; 7x on canvases, see bench/vision_probe.py), but a short
    warm-start on canvases does not hold its format on real pictures (the demo's 60 steps: no
    answer parsed). `true_answers`: train on each row's own answer instead (supervised: it teaches
    the puzzle, so it is no warm-start for RL). Shows a progress bar (a minute or two on 2 cores). Returns the losses.
    """
    import random

    import torch
    from tqdm import tqdm

    from ssl4rl.chat import load_split
    from ssl4rl.models import is_text_model, load_model, load_processor

    rng = random.Random(seed)
    torch.manual_seed(seed)
    text_only = is_text_model(model_dir)  # the tiny Qwen2 on graph puzzles: its tokenizer, no images
    processor = load_processor(model_dir)
    model = load_model(model_dir, torch.float32)
    data = load_split(data_dir, "train", text_only)

    def encode(texts, images, **kwargs):
        return processor(text=texts, **kwargs) if text_only else processor(text=texts, images=images, **kwargs)

    pools = {} if true_answers else answer_pools(data.select_columns(["reward_model", "extra_info"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    bar = tqdm(range(steps), desc="supervised" if true_answers else "format warm-start", unit="step", disable=not progress, dynamic_ncols=True)
    for _ in bar:
        rows = [data[rng.randrange(len(data))] for _ in range(batch_size)]
        prompts = [processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
        targets = [(true_target(r) if true_answers else format_target(rng, r, pools)) + "<|im_end|>" for r in rows]
        images = None if text_only else [[blank(image) if grey else image for image in r["images"]] for r in rows]
        prompt_lengths = [len(x) for x in encode(prompts, images)["input_ids"]]
        batch = encode([p + t for p, t in zip(prompts, targets)], images, return_tensors="pt", padding=True)
        labels = batch["input_ids"].clone()
        for i, length in enumerate(prompt_lengths):
            labels[i, :length] = -100  # learn the answer only
        labels[batch["attention_mask"] == 0] = -100
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.2f}")
    bar.close()
    model.save_pretrained(model_dir)
    return losses
