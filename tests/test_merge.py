"""`ssl4rl merge` on checkpoints laid out as verl 0.9.1's FSDP actor saves them (every rank's
DTensor shards, the PEFT names and lora_train_meta.json with LoRA, huggingface/ beside them), for
each kind of model, with and without LoRA, on one and two ranks; and what a failed or refused
merge leaves behind: nothing new. tests/test_verl_trainer.py merges real verl runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import lora_fused, saved_actor_weights
from ssl4rl.cli import main

ALPHA, RANK = 8, 4


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    from ssl4rl.tiny_lm import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("lm") / "tiny")


def _auto(kind: str):
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    return AutoModelForCausalLM if kind == "lm" else AutoModelForImageTextToText


def _save_fsdp_checkpoint(state: dict, model_dir: Path, actor: Path, ranks: int, lora: bool, replicas: int = 1) -> None:
    """Write `state` as verl's FSDP2 actor does on `ranks` ranks: one file per rank holding each
    tensor's dim-0 shard as a DTensor, fsdp_config.json, huggingface/ (no weights) and, with
    LoRA, lora_train_meta.json. `replicas` > 1: HSDP, a (ddp, fsdp) mesh of replicas x ranks.
    A fake process group lets one process play every rank."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard
    from torch.testing._internal.distributed.fake_pg import FakeStore

    actor.mkdir(parents=True)
    world = replicas * ranks
    for rank in range(world):
        dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world)
        try:
            if replicas == 1:
                mesh, replicated = init_device_mesh("cpu", (ranks,), mesh_dim_names=("fsdp",)), []
            else:
                mesh, replicated = init_device_mesh("cpu", (replicas, ranks), mesh_dim_names=("ddp", "fsdp")), [Replicate()]
            shards = {
                name: DTensor.from_local(torch.tensor_split(t, ranks)[rank % ranks].clone() if t.dim() else t.clone(), mesh,
                                         [*replicated, Shard(0) if t.dim() else Replicate()], run_check=False, shape=t.shape, stride=t.stride())
                for name, t in state.items()
            }  # fmt: skip
            torch.save(shards, actor / f"model_world_size_{world}_rank_{rank}.pt")
        finally:
            dist.destroy_process_group()
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": world}))
    shutil.copytree(model_dir, actor / "huggingface", ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    if lora:
        (actor / "lora_train_meta.json").write_text(json.dumps({"r": RANK, "lora_alpha": ALPHA, "task_type": "CAUSAL_LM"}))


def _trained_state(model_dir: Path, kind: str, lora: bool, seed: int = 0):
    """A state dict as training leaves it (every weight moved; LoRA: B no longer zero) and, with
    LoRA, PEFT's own merge of it, an oracle independent of ours."""
    from peft import LoraConfig, get_peft_model

    model = _auto(kind).from_pretrained(model_dir)
    torch.manual_seed(seed)
    if lora:
        model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not lora or "lora_" in name:
                parameter.add_(torch.randn_like(parameter) * 0.05)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    oracle = {k: v.detach().clone() for k, v in model.merge_and_unload().state_dict().items()} if lora else None
    return state, oracle


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("kind", ["vlm", "lm"])
def test_merge_turns_every_kind_of_actor_checkpoint_into_a_plain_model(kind, lora, ranks, tiny_model, text_model, tmp_path):
    from transformers import AutoProcessor, AutoTokenizer

    model_dir = tiny_model if kind == "vlm" else text_model
    state, oracle = _trained_state(model_dir, kind, lora)
    run = tmp_path / "run"
    actor = run / "global_step_3" / "actor"
    _save_fsdp_checkpoint(state, model_dir, actor, ranks, lora)
    out = tmp_path / "merged"
    assert main(["merge", str(run), str(out)]) == 0  # the run folder: its newest step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "run"]  # no temporary folder left
    assert not (out / "lora_adapter").exists()

    merged = _auto(kind).from_pretrained(out).state_dict()  # offline: HF_HUB_OFFLINE=1 (conftest)
    (AutoTokenizer if kind == "lm" else AutoProcessor).from_pretrained(out)
    saved = saved_actor_weights(actor)
    expected = lora_fused(saved, RANK, ALPHA) if lora else saved
    plain = _auto(kind).from_pretrained(model_dir).state_dict()
    assert set(merged) == set(expected) == set(plain)  # a plain model: no PEFT names, nothing missing
    for name, tensor in expected.items():
        assert merged[name].dtype == torch.bfloat16 and torch.equal(merged[name], tensor.to(torch.bfloat16)), name
    if lora:
        for name, tensor in oracle.items():  # PEFT's merge_and_unload agrees (to bfloat16 rounding)
            assert torch.allclose(merged[name].float(), tensor, atol=2e-2, rtol=1e-2), name
        changed = {n for n in merged if not torch.equal(merged[n], plain[n].to(torch.bfloat16))}
        assert changed and all(n.endswith("proj.weight") or ".mlp." in n or ".qkv." in n for n in changed)


def test_merge_joins_an_hsdp_checkpoint_from_one_replica(text_model, tmp_path):
    from transformers import AutoModelForCausalLM

    state, _ = _trained_state(text_model, "lm", lora=False)
    actor = tmp_path / "actor"
    _save_fsdp_checkpoint(state, text_model, actor, ranks=2, lora=False, replicas=2)  # fsdp_size=2 on 4 ranks
    assert main(["merge", str(actor), str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").state_dict()
    assert set(merged) == set(state) and all(torch.equal(merged[n], t.to(torch.bfloat16)) for n, t in state.items())


def test_merge_of_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "no such checkpoint folder" in _one_line_error(capsys) and not (tmp_path / "out").exists()


@pytest.fixture
def lm_checkpoint(text_model, tmp_path) -> Path:
    state, _ = _trained_state(text_model, "lm", lora=True)
    actor = tmp_path / "ckpt" / "global_step_1" / "actor"
    _save_fsdp_checkpoint(state, text_model, actor, ranks=2, lora=True)
    return actor


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ssl4rl: error:") and err.count("\n") == 1, err
    return err


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def test_a_failed_merge_leaves_no_folder_behind(lm_checkpoint, tmp_path, capsys):
    shard = lm_checkpoint / "model_world_size_2_rank_1.pt"
    whole = shard.read_bytes()
    shard.write_bytes(whole[:1000])  # a shard cut short (a full disk, a killed copy)
    out = tmp_path / "new" / "deeper" / "merged"
    assert main(["merge", str(lm_checkpoint), str(out)]) == 2
    err = _one_line_error(capsys)
    assert "failed" in err and "not written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # neither OUT, its new parents nor a temporary folder

    shard.write_bytes(whole)
    (lm_checkpoint / "lora_train_meta.json").unlink()  # LoRA weights, but alpha/r unknown
    assert main(["merge", str(lm_checkpoint), str(tmp_path / "merged")]) == 2
    assert "no readable lora_train_meta.json" in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_merge_that_does_not_load_back_equal_is_not_put_in_place(lm_checkpoint, tmp_path, capsys, monkeypatch):
    from safetensors.torch import load_file, save_file
    from transformers import PreTrainedModel

    save = PreTrainedModel.save_pretrained

    def save_one_weight_wrong(self, folder, *args, **kwargs):  # a write that goes wrong silently
        save(self, folder, *args, **kwargs)
        weights = load_file(Path(folder) / "model.safetensors")
        weights["model.norm.weight"] = weights["model.norm.weight"] + 1
        save_file(weights, Path(folder) / "model.safetensors", metadata={"format": "pt"})

    with monkeypatch.context() as patch:
        patch.setattr(PreTrainedModel, "save_pretrained", save_one_weight_wrong)
        assert main(["merge", str(lm_checkpoint), str(tmp_path / "new" / "merged")]) == 2
        err = _one_line_error(capsys)
        assert "model.norm.weight differs" in err and "not written" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no OUT, no parent made for it, no temporary folder

    out = tmp_path / "merged"
    assert main(["merge", str(lm_checkpoint), str(out)]) == 0
    before = _snapshot(out)
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_one_weight_wrong)
    assert main(["merge", str(lm_checkpoint), str(out), "--overwrite"]) == 2
    err = _one_line_error(capsys)
    assert "model.norm.weight differs" in err and "left as it was" in err
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "merged"]


def test_a_model_in_out_is_replaced_only_with_overwrite(lm_checkpoint, text_model, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    shutil.copytree(text_model, out)  # another model already there
    before = _snapshot(out)
    assert main(["merge", str(lm_checkpoint), str(out)]) == 2
    assert "already holds a model: pass --overwrite" in _one_line_error(capsys)
    assert _snapshot(out) == before

    assert main(["merge", str(lm_checkpoint), str(out), "--overwrite"]) == 0
    merged = AutoModelForCausalLM.from_pretrained(out).state_dict()
    expected = lora_fused(saved_actor_weights(lm_checkpoint), RANK, ALPHA)
    assert all(torch.equal(merged[n], t.to(torch.bfloat16)) for n, t in expected.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "merged"]  # the old model is gone, no leftovers

    capsys.readouterr()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    assert main(["merge", str(lm_checkpoint), str(other), "--overwrite"]) == 2  # never replaces what is not a model
    assert "not a model" in _one_line_error(capsys) and (other / "todo.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["merge", str(lm_checkpoint), str(empty)]) == 0 and (empty / "model.safetensors").is_file()
