"""Checkpoint -> plain Hugging Face model.

verl's merger (`python -m verl.model_merger merge --backend fsdp`) turns an FSDP actor
checkpoint into a Hugging Face folder, but leaves a LoRA adapter unfused beside it
(`OUT/lora_adapter`). We fuse it with PEFT's `merge_and_unload`, so OUT loads with
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
    """Fuse `model_dir/lora_adapter` into the weights in `model_dir`; False when there is none."""
    adapter = model_dir / "lora_adapter"
    if not (adapter / "adapter_config.json").exists():
        return False
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16)
    fused = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    fused.save_pretrained(model_dir)
    shutil.rmtree(adapter)
    return True


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
