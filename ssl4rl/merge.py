"""Checkpoint -> plain Hugging Face model.

verl's merger (`python -m verl.model_merger merge --backend fsdp`) turns an FSDP actor
checkpoint into a Hugging Face folder, but leaves a LoRA adapter unfused beside it
(`OUT/lora_adapter`). We fuse it into the weights, so OUT loads with
`AutoModelForImageTextToText.from_pretrained(OUT)` and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ssl4rl.errors import UserError


def find_actor_dir(checkpoint: Path) -> Path:
    """Accept verl's `global_step_N/actor` folder, `global_step_N`, or the run folder (newest step)."""
    if (checkpoint / "fsdp_config.json").exists():
        return checkpoint
    if (checkpoint / "actor" / "fsdp_config.json").exists():
        return checkpoint / "actor"
    steps = sorted(checkpoint.glob("global_step_*/actor/fsdp_config.json"), key=lambda p: int(p.parent.parent.name.split("_")[-1]))
    if steps:
        return steps[-1].parent
    raise UserError(f"{checkpoint}: no verl FSDP checkpoint (fsdp_config.json) found")


def fuse_lora(model_dir: Path) -> bool:
    """Fuse `model_dir/lora_adapter` into the weights in `model_dir`; False when there is none.

    W += scale * B @ A for every adapted module, by name. PEFT's own loader cannot be used: verl
    writes `target_modules` as bare suffixes ("0", "2" from the vision merger's `mlp.0`), which
    PEFT then matches against whole vision blocks and refuses.
    """
    import json
    import math

    import torch
    from transformers import AutoModelForImageTextToText

    adapter = model_dir / "lora_adapter"
    if not (adapter / "adapter_config.json").exists():
        return False
    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("use_dora") or config.get("rank_pattern") or config.get("alpha_pattern"):
        raise UserError(f"{adapter}: DoRA and per-module ranks are not fused here (use PEFT's merge_and_unload)")
    scale = config["lora_alpha"] / (math.sqrt(config["r"]) if config.get("use_rslora") else config["r"])
    weights = _adapter_weights(adapter)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype="auto")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, down in weights.items():
            if not key.endswith(".lora_A.weight"):
                continue
            module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            target = params.get(module + ".weight")
            if target is None:
                raise UserError(f"{adapter}: the adapter has weights for {module}, which the model does not have")
            up = weights[key.replace(".lora_A.", ".lora_B.")]
            delta = up.reshape(up.shape[0], -1).float() @ down.reshape(down.shape[0], -1).float()
            target.copy_((target.float() + scale * delta.reshape(target.shape)).to(target.dtype))
    model.save_pretrained(model_dir)
    shutil.rmtree(adapter)
    return True


def _adapter_weights(adapter: Path) -> dict:
    if (adapter / "adapter_model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(adapter / "adapter_model.safetensors")
    import torch

    return torch.load(adapter / "adapter_model.bin", map_location="cpu", weights_only=True)


def merge(checkpoint: str, out: str) -> Path:
    checkpoint_path, out_path = Path(checkpoint), Path(out)
    if not checkpoint_path.exists():
        raise UserError(f"{checkpoint}: no such checkpoint folder")
    if (checkpoint_path / "config.json").is_file() and not (checkpoint_path / "fsdp_config.json").exists():
        raise UserError(
            f"{checkpoint} is already a Hugging Face model (config.json; TRL runs save these): "
            f"use it directly, e.g. `ssl4rl eval --model {checkpoint}`; merge is for verl FSDP checkpoints"
        )
    actor = find_actor_dir(checkpoint_path)
    command = [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(actor), "--target_dir", str(out_path)]
    if subprocess.call(command) != 0:
        raise UserError(f"verl's model merger failed on {actor}")
    fused = fuse_lora(out_path)
    print(f"{out_path}: Hugging Face model{' (LoRA fused)' if fused else ''}")
    return out_path
