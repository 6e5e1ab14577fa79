"""Read a verl FSDP actor checkpoint back into one plain state dict, LoRA fused.

verl 0.9.1 saves each rank's shard of every parameter (`model_world_size_W_rank_R.pt`, DTensors
cut along one dimension) plus, with LoRA, the PEFT-wrapped names (`base_model.model.`,
`.base_layer.`, `.lora_A/B.<adapter>.`) and `lora_train_meta.json` (r, alpha). We read them
ourselves rather than through verl's merger: it casts every shard to bfloat16 before fusing
could happen, so a fused weight could not equal base + alpha/r * B @ A of the saved tensors.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from ssl4rl.errors import UserError

LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<part>A|B)\.(?:(?P<adapter>[^.]+)\.)?weight$")
PEFT_PREFIX = "base_model.model."


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


def load_full_state(actor: Path) -> dict:
    """Every rank's shards joined into whole tensors, in the dtype they were saved in."""
    import torch

    try:
        world = int(json.loads((actor / "fsdp_config.json").read_text())["world_size"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{actor / 'fsdp_config.json'}: no world_size ({error})") from None
    files = [actor / f"model_world_size_{world}_rank_{rank}.pt" for rank in range(world)]
    for file in files:
        if not file.is_file():
            raise UserError(f"{actor}: the checkpoint has {world} ranks but {file.name} is missing")
    quiet = logging.getLogger("torch.distributed.device_mesh")  # "unpickled before the PGs were created": expected here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        ranks = [torch.load(file, map_location="cpu", weights_only=False) for file in files]
    finally:
        quiet.setLevel(level)
    full = {}
    for key in list(ranks[0]):  # popped as joined: the shards are freed as the whole tensors grow
        parts = [shards.pop(key, None) for shards in ranks]
        first = parts[0]
        if any(part is None for part in parts):
            raise UserError(f"{actor}: {key} is missing from some ranks' shards")
        full[key] = _join(key, parts) if hasattr(first, "to_local") else _replicated(key, parts)
    extra = next((key for shards in ranks for key in shards), None)
    if extra is not None:
        raise UserError(f"{actor}: {extra} is missing from rank 0's shards")
    return full


def _join(key: str, parts: list):
    """Whole tensor from one DTensor per rank: shards concatenated, a replicated copy taken once."""
    import torch

    first = parts[0]
    placements, mesh = tuple(first.placements), first.device_mesh.mesh
    if mesh.dim() == 2 and placements[0].is_replicate():  # HSDP (ddp, fsdp): one replica's shards
        mesh, placements = mesh[0], placements[1:]
    if mesh.dim() != 1 or len(placements) != 1:
        raise UserError(f"{key}: sharded over a {tuple(first.device_mesh.mesh.shape)} mesh as {placements}; only FSDP (and HSDP) checkpoints are merged")
    local = [parts[rank].to_local() for rank in mesh.tolist()]
    placement = placements[0]
    if placement.is_replicate():
        tensor = local[0]
    elif placement.is_shard():
        tensor = torch.cat(local, dim=placement.dim)
    else:
        raise UserError(f"{key}: placement {placement} cannot be merged")
    if tuple(tensor.shape) != tuple(first.shape):
        raise UserError(f"{key}: its shards join to {tuple(tensor.shape)}, the checkpoint says {tuple(first.shape)}")
    return tensor


def _replicated(key: str, parts: list):
    import torch

    if any(part.shape != parts[0].shape or not torch.equal(part, parts[0]) for part in parts[1:]):
        raise UserError(f"{key}: a plain (unsharded) tensor that differs between ranks")
    return parts[0]


def fuse_lora(state: dict, actor: Path) -> tuple[dict, bool]:
    """The plain model's state dict: PEFT names unwrapped, W + alpha/r * B @ A for every adapted
    layer (in float32). Returns it and whether there was an adapter."""
    adapters = {key: LORA_KEY.match(key) for key in state if ".lora_" in key}
    plain = {key.removeprefix(PEFT_PREFIX).replace(".base_layer.", "."): tensor for key, tensor in state.items() if key not in adapters}
    if not adapters:
        return plain, False
    odd = sorted(key for key, match in adapters.items() if match is None)
    if odd:
        raise UserError(f"{actor}: LoRA weights of a kind not fused here ({odd[0]}); only linear layers' lora_A/lora_B")
    if len({match["adapter"] for match in adapters.values()}) > 1:
        raise UserError(f"{actor}: more than one LoRA adapter in the checkpoint")
    try:
        meta = json.loads((actor / "lora_train_meta.json").read_text())
        rank, alpha = int(meta["r"]), float(meta["lora_alpha"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{actor}: LoRA weights but no readable lora_train_meta.json (r, lora_alpha): the scale alpha/r is unknown") from None
    for key, match in adapters.items():
        if match["part"] != "A":
            continue
        down, up = state[key], state.get(key.replace(".lora_A.", ".lora_B."))
        target = match["module"].removeprefix(PEFT_PREFIX) + ".weight"
        if up is None or target not in plain:
            raise UserError(f"{actor}: {key} has no matching lora_B or base weight {target}")
        if down.shape[0] != rank:
            raise UserError(f"{key}: rank {down.shape[0]}, but lora_train_meta.json says r={rank}")
        base = plain[target]
        delta = up.float() @ down.float()
        if delta.shape != base.shape:
            raise UserError(f"{key}: B @ A is {tuple(delta.shape)}, the weight {target} is {tuple(base.shape)}")
        plain[target] = (base.float() + (alpha / rank) * delta).to(base.dtype)
    return plain, True
