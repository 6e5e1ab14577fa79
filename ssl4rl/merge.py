"""Checkpoint -> plain Hugging Face model, written atomically.

Any actor checkpoint `ssl4rl train --backend verl` writes (a vision-language or a text model,
full or LoRA, one or many FSDP ranks) becomes a folder that loads with its Auto class and
nothing else: LoRA fused, bfloat16 (as verl's own merger writes). The model is written to a
hidden folder beside OUT, loaded back and compared tensor for tensor with what the checkpoint
holds, and only then renamed to OUT, so a failed merge never leaves a folder that loads as a
model but is not the trained one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.fsdp_checkpoint import find_actor_dir, fuse_lora, load_full_state
from ssl4rl.models import auto_model_class, load_processor

__all__ = ["find_actor_dir", "merge"]
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def merge(checkpoint: str, out: str, overwrite: bool = False) -> Path:
    checkpoint_path, out_path = Path(checkpoint), Path(out)
    if not checkpoint_path.exists():
        raise UserError(f"{checkpoint}: no such checkpoint folder")
    if (checkpoint_path / "config.json").is_file() and not (checkpoint_path / "fsdp_config.json").exists():
        raise UserError(
            f"{checkpoint} is already a Hugging Face model (config.json; TRL runs save these): "
            f"use it directly, e.g. `ssl4rl eval --model {checkpoint}`; merge is for verl FSDP checkpoints"
        )
    actor = find_actor_dir(checkpoint_path)
    _check_target(out_path, overwrite)
    try:
        import torch

        state, fused = fuse_lora(load_full_state(actor), actor)
        for key in state:  # one tensor at a time: never a whole float32 and a whole bfloat16 copy
            state[key] = state[key].to(torch.bfloat16)
        _write_atomically(out_path, lambda folder: _write_and_verify(folder, actor / "huggingface", state))
    except UserError as error:
        raise UserError(f"{error} ({out} {_untouched(out_path)})") from None
    except Exception as error:  # a corrupt shard, a full disk, ...: one line, nothing half-written
        cause = (str(error).strip().splitlines() or [""])[0]
        raise UserError(f"merging {actor} failed: {type(error).__name__}: {cause} ({out} {_untouched(out_path)})") from None
    print(f"{out_path}: Hugging Face model{' (LoRA fused)' if fused else ''}")
    return out_path


def _untouched(out: Path) -> str:
    return "left as it was" if out.exists() else "not written"


def _check_target(out: Path, overwrite: bool) -> None:
    """OUT may be new or an empty folder; a model only with --overwrite; anything else never."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder for the model")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not any((out / name).exists() for name in MODEL_FILES):
        raise UserError(f"{out} is a folder of other files, not a model: choose a new or empty folder")
    if not overwrite:
        raise UserError(f"{out} already holds a model: pass --overwrite to replace it")


def _write_atomically(out: Path, write) -> None:
    """`write(folder)` into a hidden folder beside OUT, then rename it to OUT; on failure remove it."""
    missing = [parent for parent in [out.parent, *out.parent.parents] if not parent.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        write(work)
        _usual_permissions(work)
        if out.is_dir() and any(out.iterdir()):  # --overwrite: swap, so OUT is never half old, half new
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)
            try:
                os.replace(work, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out)  # also replaces an empty folder
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for parent in missing:  # nearest first: folders this call made
            try:
                parent.rmdir()
            except OSError:
                break
        raise


def _usual_permissions(folder: Path) -> None:
    """mkdtemp makes a private folder; the model gets the modes any other new folder would."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def _write_and_verify(folder: Path, hf_dir: Path, state: dict) -> None:
    """Save `state` as a Hugging Face model with verl's config and tokenizer files, then load it
    back with its Auto class and check every tensor."""
    from transformers.utils import logging as hf_logging

    model_class = auto_model_class(hf_dir)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a tiny write and read: the result line (or the error) is the output
    try:
        _write(folder, hf_dir, state, model_class)
        _verify(folder, state, model_class)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _write(folder: Path, hf_dir: Path, state: dict, model_class) -> None:
    import torch
    from transformers import AutoConfig

    with torch.device("meta"):  # no memory, no random init: only the class, config and names
        model = model_class.from_config(AutoConfig.from_pretrained(hf_dir), dtype=torch.bfloat16)
    expected = set(model.state_dict())
    if set(state) != expected:
        extra, missing = sorted(set(state) - expected), sorted(expected - set(state))
        raise UserError(f"the checkpoint's weights do not fit its config ({len(extra)} unknown, e.g. {extra[:1]}; {len(missing)} missing, e.g. {missing[:1]})")
    model.load_state_dict(state, assign=True)  # the tensors themselves, not copies
    model.save_pretrained(folder)
    for file in hf_dir.iterdir():  # tokenizer, processor, chat template, generation config
        if file.is_file() and file.name != "config.json":
            shutil.copy2(file, folder / file.name)


def _verify(folder: Path, state: dict, model_class) -> None:
    import torch

    loaded = model_class.from_pretrained(folder, dtype="auto").state_dict()
    if set(loaded) != set(state):
        raise UserError(f"the written model loads with other weights' names than the checkpoint's ({sorted(set(loaded) ^ set(state))[:1]})")
    for key, tensor in state.items():
        if loaded[key].dtype != tensor.dtype or not torch.equal(loaded[key], tensor):
            raise UserError(f"the written model's {key} differs from the checkpoint's after loading it back")
    load_processor(folder)
