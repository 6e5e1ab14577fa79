"""A build's settings as the user gives them (the `ssl4rl build` flags, `BuildConfig(...)`), their
checks, and what of them the manifest records. The builder (ssl4rl.build) reads the settings
every build has; a modality (ssl4rl.modalities) reads its own, such as how an image source is
read and how generated images are encoded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ssl4rl.budget import DEFAULT_MAX_PROMPT_TOKENS, TokenBudget
from ssl4rl.errors import UserError
from ssl4rl.images import MAX_PIXELS
from ssl4rl.modalities import MODALITIES
from ssl4rl.sources.common import MAX_FILE_BYTES
from ssl4rl.tasks import TASKS, task_modality
from ssl4rl.uri import is_uri, shown

IMAGE_FORMATS = ("png", "jpeg")


@dataclass
class BuildConfig:
    task: str
    source: str
    out: str
    options: dict = field(default_factory=dict)
    data: str | None = None
    image_columns: list[str] | None = None
    seed: int = 0
    limit: int | None = None  # total rows (train + test); None = the whole source
    test_fraction: float = 0.1
    image_format: str = "png"
    per_image: int = 1  # puzzles made from each source item (an image, a graph node)
    shard_rows: int = 1000
    prompt_file: str | None = None
    tasks: dict[str, float] | None = None  # task == "mix": {task: weight}
    task_options: dict[str, dict] | None = None  # task == "mix": {task: {option: value}}
    difficulty: list[str] | None = None  # levels (easy, medium, hard); None = the task's defaults
    curriculum: str = "mixed"  # with several levels: "mixed" (random per item) or "static" (easy first)
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS  # every row fits (0: no cap); ssl4rl.budget
    patch_size: int = 28  # pixels per visual token side: 28 Qwen2/2.5-VL, 32 Qwen3-VL
    processor: str | None = None  # a processor folder: its patching and exact text tokens
    max_pixels: int = MAX_PIXELS  # larger images are skipped from their header, never decoded
    max_file_bytes: int = MAX_FILE_BYTES  # larger files are skipped from their size, never read

    @property
    def per_item(self) -> int:
        """Puzzles made from each source item: `per_image` keeps its first name (`--per-image`)."""
        return self.per_image

    def check(self) -> None:
        """The settings that need no task or source, so a bad one fails before anything is read."""
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"--image-format must be png or jpeg (got {self.image_format!r})")
        if not 0.0 <= self.test_fraction < 1.0:
            raise UserError(f"--test-fraction must be in [0, 1) (got {self.test_fraction})")
        if self.curriculum not in ("mixed", "static"):
            raise UserError(f"--curriculum must be mixed or static (got {self.curriculum!r})")
        if self.prompt_file and not Path(self.prompt_file).exists():
            raise UserError(f"{self.prompt_file}: no such prompt file or folder")
        if self.prompt_file and self.task == "mix" and not Path(self.prompt_file).is_dir():
            raise UserError("--prompt for a mix is a folder of TASK.txt files, one per task (e.g. configs/prompts/short)")

    def budget(self) -> TokenBudget:
        if self.max_prompt_tokens < 0 or self.patch_size < 1:
            raise UserError(f"--max-prompt-tokens must be >= 0 and --patch-size >= 1 (got {self.max_prompt_tokens}, {self.patch_size})")
        if self.processor is None:  # all-text prompts (graphs): the calibrated estimate, not the byte bound
            names = [name for name in [self.task, *(self.tasks or {})] if name in TASKS]
            estimate = any(MODALITIES[task_modality(name)].TEXT_ESTIMATE for name in names)
            return TokenBudget(self.max_prompt_tokens, self.patch_size, estimate=estimate)
        if not Path(self.processor).is_dir():
            raise UserError(f"{self.processor}: no such processor folder (a model folder saved with its processor)")
        try:
            return TokenBudget.from_processor(str(Path(self.processor).resolve()), self.max_prompt_tokens)
        except (ImportError, OSError, ValueError) as error:
            raise UserError(f"{self.processor}: cannot load its processor ({str(error).strip().splitlines()[0]})") from None

    def identity(self, templates: dict[str, str]) -> dict:
        """What must match for an existing output folder to be resumed or reused."""
        keys = (
            "task", "source", "options", "image_columns", "seed", "limit", "test_fraction", "image_format", "per_image",
            "shard_rows", "tasks", "difficulty", "curriculum", "max_prompt_tokens", "patch_size", "max_pixels", "max_file_bytes",
        )  # fmt: skip
        identity = {k: getattr(self, k) for k in keys}
        if self.task_options:  # absent when unused, so earlier builds still resume
            identity["task_options"] = self.task_options
        if is_uri(self.source):  # a URI's credentials and query never reach the manifest
            identity["source"] = shown(self.source)
        identity["data"] = (shown(self.data) if is_uri(self.data) else str(Path(self.data).resolve())) if self.data else None
        identity["processor"] = str(Path(self.processor).resolve()) if self.processor else None
        identity["template_sha256"] = hashlib.sha256(json.dumps(templates, sort_keys=True).encode()).hexdigest()
        return json.loads(json.dumps(identity))

    def manifest_settings(self) -> dict:
        """Settings the manifest states at its top level, beside the whole `config`, for its readers."""
        return {"image_format": self.image_format}
