"""Generation backends for evaluation: batched Hugging Face `generate` (CPU or GPU) and vLLM.

Both take prompts whose `<image>` markers are filled by each row's images, apply the model's
chat template, decode greedily and return the response text.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ssl4rl.chat import to_trl_prompt
from ssl4rl.errors import UserError
from ssl4rl.models import is_text_model, load_model, load_processor, vision_token_ids


def _check_model(model_path: str) -> None:
    local = Path(model_path).expanduser()
    looks_local = model_path.startswith((".", "/", "~")) or model_path.count("/") != 1
    if looks_local and not local.exists():
        raise UserError(f"{model_path}: no such model folder (give a local path or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct)")
    if local.exists() and not (local / "config.json").exists():
        raise UserError(f"{model_path}: not a Hugging Face model folder (no config.json)")


class HFBackend:
    """transformers generate in batches; left padding so every prompt ends where generation starts."""

    name = "hf"

    def __init__(self, model_path: str, max_new_tokens: int = 1024, min_pixels: int | None = None, max_pixels: int | None = None):
        _check_model(model_path)
        import torch

        self.torch = torch
        self.max_new_tokens = max_new_tokens
        self.text_only = is_text_model(model_path)
        if self.text_only:  # graph puzzles and graph evaluation: the tokenizer, nothing to suppress
            self.processor, self.suppress = load_processor(model_path, padding_side="left"), []
        else:
            self.processor = load_processor(model_path)
            image_processor = self.processor.image_processor
            if min_pixels:
                image_processor.min_pixels = min_pixels
                image_processor.size["shortest_edge"] = min_pixels
            if max_pixels:
                image_processor.max_pixels = max_pixels
                image_processor.size["longest_edge"] = max_pixels
            self.processor.tokenizer.padding_side = "left"
            self.suppress = vision_token_ids(self.processor.tokenizer)
        cuda = torch.cuda.is_available()
        self.model = load_model(model_path, torch.bfloat16 if cuda else torch.float32)
        self.model.to("cuda" if cuda else "cpu").eval()

    @property
    def can_score(self) -> bool:
        """Likelihood ranking (`score_completions`): text models only."""
        return self.text_only

    def score_completions(self, prompt: str, completions: list[str], batch_size: int = 64) -> list[float]:
        """log p(completion | prompt) of each completion as the whole answer (ssl4rl.eval.likelihood)."""
        from ssl4rl.eval.likelihood import score_completions

        text = self.processor.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
        return score_completions(self.model, self.processor, text, completions, batch_size)

    def generate(self, prompts: list[str], images: list[list[Image.Image]]) -> list[str]:
        if self.text_only:
            if any(images):
                raise ValueError("a text model cannot answer a question with images")
            texts = [self.processor.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False) for p in prompts]
            inputs = self.processor(texts, padding=True, return_tensors="pt", add_special_tokens=False).to(self.model.device)
            with self.torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        texts = [self.processor.apply_chat_template(to_trl_prompt(p), add_generation_prompt=True, tokenize=False) for p in prompts]
        flat = [image for row in images for image in row]
        inputs = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt").to(self.model.device)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, suppress_tokens=self.suppress or None)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


class VLLMBackend:
    """vLLM offline inference (GPU machines with `pip install vllm`)."""

    name = "vllm"

    def __init__(self, model_path: str, max_new_tokens: int = 1024, min_pixels: int | None = None, max_pixels: int | None = None, max_images: int = 4):
        _check_model(model_path)
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        self.processor = AutoProcessor.from_pretrained(model_path)
        self.llm = LLM(model=model_path, limit_mm_per_prompt={"image": max_images}, mm_processor_kwargs=pixels or None)
        self.sampling = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)

    def generate(self, prompts: list[str], images: list[list[Image.Image]]) -> list[str]:
        requests = []
        for prompt, row_images in zip(prompts, images):
            text = self.processor.apply_chat_template(to_trl_prompt(prompt), add_generation_prompt=True, tokenize=False)
            requests.append({"prompt": text, "multi_modal_data": {"image": row_images}} if row_images else {"prompt": text})
        return [output.outputs[0].text for output in self.llm.generate(requests, self.sampling, use_tqdm=False)]


def resolve_backend(name: str) -> str:
    """'auto' is vLLM when it is installed (and a GPU is there), else Hugging Face ('hf')."""
    if name != "auto":
        return name
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return "hf"
    return "vllm" if torch.cuda.is_available() else "hf"


def make_backend(name: str, model_path: str, **kwargs):
    """The backend `resolve_backend(name)` names, loaded."""
    name = resolve_backend(name)
    if name == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserError("--backend vllm needs vllm installed (pip install vllm)") from None
        return VLLMBackend(model_path, **kwargs)
    kwargs.pop("max_images", None)
    return HFBackend(model_path, **kwargs)
