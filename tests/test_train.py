"""Training joints without a GPU: the tiny model, TRL end to end, and stock verl 0.9.1 pieces
(config schema, dataset, reward hook and manager, GRPO advantages) on our data."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from ssl4rl.cli import main
from ssl4rl.models import VISION_TOKENS, vision_token_ids
from ssl4rl.reward import compute_score
from ssl4rl.train.verl_launch import PROFILES, config_dir, verl_command


# ---------------------------------------------------------------- tiny model
def test_tiny_model_loads_offline_and_expands_image_tokens(tiny_model, rotation_set):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ssl4rl.train.trl_grpo import load_split

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    row = load_split(rotation_set, "test")[0]
    text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    inputs = processor(text=[text], images=row["images"], return_tensors="pt")
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merged_patches = int(inputs["image_grid_thw"].prod(dim=1).sum()) // 4  # spatial merge 2x2
    assert int((inputs["input_ids"] == image_pad).sum()) == merged_patches
    generated = model.generate(**inputs, max_new_tokens=24, do_sample=False, suppress_tokens=vision_token_ids(processor.tokenizer))
    new_tokens = generated[0, inputs["input_ids"].shape[1] :].tolist()
    assert not set(new_tokens) & set(vision_token_ids(processor.tokenizer)) and len(VISION_TOKENS) == 5
    answer = processor.decode(new_tokens, skip_special_tokens=True)
    assert "<answer>" in answer  # the warm start taught the format


# ---------------------------------------------------------------- TRL end to end
def test_trl_backend_runs_grpo_steps_and_saves_a_loadable_model(tiny_model, rotation_set, tmp_path, capsys):
    from transformers import AutoModelForImageTextToText

    code = main([
        "train", "--backend", "trl", "--data", str(rotation_set), "--model", str(tiny_model), "--out", str(tmp_path),
        "--batch-size", "4", "--mini-batch-size", "4", "--rollout-n", "4", "--lr", "5e-3", "--max-steps", "2",
        "--max-response-length", "24",
    ])  # fmt: skip
    assert code == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert len(printed) == 2 and all("rotation acc" in line for line in printed)
    final = tmp_path / "trl" / "final"
    trained = AutoModelForImageTextToText.from_pretrained(final)
    before = AutoModelForImageTextToText.from_pretrained(tiny_model)
    changed = [n for (n, a), (_, b) in zip(trained.named_parameters(), before.named_parameters()) if not torch.equal(a, b)]
    assert changed, "two GRPO steps with reward variance must move some weights"
    assert list((tmp_path / "trl").rglob("events.out.tfevents.*")), "TensorBoard scalars are written"


# ---------------------------------------------------------------- verl config
def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def _has_key(cfg, dotted: str) -> bool:
    """True when the key exists, even with verl's mandatory '???' value."""
    parent, _, last = dotted.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is not None and OmegaConf.is_dict(node) and last in node.keys()


def _is_config_field(cfg, dotted: str) -> bool:
    """True when `dotted` names a field of the dataclass its section instantiates (`_target_`):
    an optional field such as fsdp_config.mixed_precision that verl's yaml leaves out."""
    import dataclasses
    import importlib

    section, _, name = dotted.rpartition(".")
    target = OmegaConf.select(cfg, f"{section}._target_")
    if not target:
        return False
    module, _, cls = target.rpartition(".")
    return name in {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}


def _compose(overrides=()):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return compose(config_name="verl_grpo", overrides=list(overrides))


def _verl_base():
    import verl
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose(config_name="ppo_trainer")


def test_every_key_of_our_config_exists_in_verls_schema():
    assert not _has_key(_verl_base(), "actor_rollout_ref.actor.no_such_key")  # the check can fail
    ours = yaml.safe_load((config_dir() / "verl_grpo.yaml").read_text())
    ours.pop("hydra"), ours.pop("defaults")
    base = _verl_base()
    for key, _ in _leaves(ours):
        assert _has_key(base, key), f"{key} is not a verl 0.9.1 key"
    for profile, overrides in PROFILES.items():
        for override in overrides:
            key = override.split("=")[0]
            if key.startswith("+"):  # an addition: its parent is a verl key or a field of the section's config class
                parent = key[1:].rpartition(".")[0]
                assert (_has_key(base, parent) or _is_config_field(base, parent)) and not _has_key(base, key[1:]), f"profile {profile}: {key}"
            else:
                assert _has_key(base, key), f"profile {profile}: {key} is not a verl 0.9.1 key"


def test_config_has_the_paper_settings():
    cfg = _compose()
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.actor_rollout_ref.rollout.n == 5
    assert cfg.actor_rollout_ref.actor.optim.lr == 1e-6
    assert cfg.actor_rollout_ref.actor.use_kl_loss and cfg.actor_rollout_ref.actor.kl_loss_coef == 0.01
    assert cfg.actor_rollout_ref.actor.kl_loss_type == "low_var_kl"
    assert cfg.data.train_batch_size == 512 and cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 128
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (1024, 2048)
    assert cfg.actor_rollout_ref.rollout.name == "vllm" and cfg.actor_rollout_ref.rollout.gpu_memory_utilization == 0.6
    assert cfg.data.image_key == "images" and "tensorboard" in cfg.trainer.logger
    assert (cfg.trainer.save_freq, cfg.trainer.total_epochs) == (50, 20)
    assert cfg.actor_rollout_ref.model.path == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert cfg.reward.custom_reward_function.path == "pkg://ssl4rl.reward"


@pytest.mark.parametrize("profile", list(PROFILES))
def test_launcher_command_composes_under_verls_schema(rotation_set, tmp_path, profile):
    command = verl_command(
        str(rotation_set), "Qwen/Qwen2.5-VL-3B-Instruct", str(tmp_path), gpus=2, nodes=3, profile=profile,
        filter_groups=True, reward_kwargs={"format_weight": 0.1, "strict_format": True}, overrides=["trainer.total_epochs=3"],
    )  # fmt: skip
    assert command[1:3] == ["-m", "verl.trainer.main_ppo"]
    cfg = _compose([arg for arg in command[3:] if not arg.startswith("--config")])  # a dead key raises here
    assert list(cfg.data.train_files) == [str(p) for p in sorted(rotation_set.glob("train-*.parquet"))]
    assert list(cfg.data.val_files) == [str(p) for p in sorted(rotation_set.glob("test-*.parquet"))]
    assert (cfg.trainer.n_gpus_per_node, cfg.trainer.nnodes, cfg.trainer.total_epochs) == (2, 3, 3)
    assert cfg.algorithm.filter_groups.enable and cfg.algorithm.filter_groups.metric == "acc"
    assert cfg.reward.custom_reward_function.reward_kwargs.format_weight == 0.1
    assert cfg.reward.custom_reward_function.reward_kwargs.strict_format is True  # a bool, as compute_score requires
    if profile == "1gpu":
        assert cfg.actor_rollout_ref.model.lora_rank == 64


def test_dry_run_prints_the_command(rotation_set, capsys):
    assert main(["train", "--backend", "verl", "--data", str(rotation_set), "--gpus", "4", "--dry-run", "trainer.total_epochs=1"]) == 0
    printed = capsys.readouterr().out
    assert "verl.trainer.main_ppo" in printed and "trainer.n_gpus_per_node=4" in printed and printed.strip().endswith("trainer.total_epochs=1")


# ---------------------------------------------------------------- verl data, reward, advantages
def test_verl_rlhf_dataset_reads_our_parquet_and_expands_images(tiny_model, rotation_set):
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    processor = AutoProcessor.from_pretrained(tiny_model)
    # verl's length filter forks a datasets pool, which deadlocks beside torch threads on CPU;
    # the same processor path is exercised below on the rows themselves.
    data_config = _compose(["data.filter_overlong_prompts=false"]).data
    files = [str(p) for p in sorted(rotation_set.glob("train-*.parquet"))]
    dataset = RLHFDataset(files, processor.tokenizer, data_config, processor)
    manifest = json.loads((rotation_set / "manifest.json").read_text())
    assert len(dataset) == manifest["rows"]["train"]
    item = dataset[0]
    content = item["raw_prompt"][0]["content"]
    assert [part["type"] for part in content].count("image") == 2
    images, _, _ = RLHFDataset._process_multi_modal_info(item["raw_prompt"], image_patch_size=14, config=data_config)
    assert len(images) == 2 and all(image.width % 28 == 0 for image in images)
    text = processor.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    assert inputs["image_grid_thw"].shape == (2, 3)
    batch = collate_fn([dataset[0], dataset[1]])
    assert list(batch["data_source"]) == ["ssl4rl/rotation"] * 2


def _proto(tokenizer, responses: list[str], rows: list[dict]):
    from verl import DataProto

    prompt = tokenizer("<|im_start|>user\npuzzle<|im_end|>\n", return_tensors="pt")["input_ids"]
    encoded = [tokenizer(r)["input_ids"] for r in responses]
    width = max(map(len, encoded))
    response_ids = torch.full((len(responses), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        response_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
    prompts = prompt.repeat(len(responses), 1)
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": response_ids, "attention_mask": torch.cat([torch.ones_like(prompts), mask], 1)},
        non_tensors={
            "data_source": np.array([r["data_source"] for r in rows], dtype=object),
            "reward_model": np.array([r["reward_model"] for r in rows], dtype=object),
            "extra_info": np.array([dict(r["extra_info"]) for r in rows], dtype=object),
        },
    )


def test_verls_reward_manager_calls_our_compute_score_with_reward_kwargs(tiny_model, rotation_set):
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    cfg = _compose(["+reward.custom_reward_function.reward_kwargs.format_weight=0.5"])
    reward_fn = get_custom_reward_fn(cfg)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rows = pq.read_table(next(rotation_set.glob("train-*.parquet"))).to_pylist()[:3]
    truths = [r["reward_model"]["ground_truth"] for r in rows]
    responses = [f"<think> ok </think> <answer>{truths[0]}</answer>", f"<answer>{truths[1]}</answer>", "<think>x</think><answer>7</answer>"]
    asyncio.set_event_loop(asyncio.new_event_loop())
    manager = resolve_reward_manager_cls(cfg)(config=cfg, tokenizer=tokenizer, compute_score=reward_fn)
    data = _proto(tokenizer, responses, rows)
    results = [asyncio.get_event_loop().run_until_complete(manager.run_single(data[i : i + 1])) for i in range(3)]
    assert [r["reward_score"] for r in results] == [1.0, 0.5, 0.5]  # acc/format mixed half and half
    assert [r["reward_extra_info"]["acc"] for r in results] == [1.0, 1.0, 0.0]
    assert {r["reward_extra_info"]["task"] for r in results} == {"rotation"}
    expected = [compute_score(rows[i]["data_source"], responses[i], truths[i], rows[i]["extra_info"], format_weight=0.5)["score"] for i in range(3)]
    assert [r["reward_score"] for r in results] == expected


def test_grpo_advantages_from_verl_normalise_puzzle_rewards_within_each_prompt():
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    responses = ["<answer>90</answer>", "<answer>0</answer>", "<answer>90</answer>", "<answer>180</answer>"] * 2
    truths = ["90"] * 4 + ["0"] * 4
    scores = torch.tensor([compute_score("ssl4rl/rotation", r, t)["score"] for r, t in zip(responses, truths)])
    rewards = torch.zeros(8, 5)
    rewards[:, -1] = scores
    advantages, _ = compute_grpo_outcome_advantage(rewards, torch.ones(8, 5), np.array(["a"] * 4 + ["b"] * 4, dtype=object))
    first = advantages[:4, 0]
    assert torch.all(first[[0, 2]] > 0) and torch.all(first[[1, 3]] < 0)  # right answers pushed up within group a
    assert torch.isclose(advantages[4:, 0].sum(), torch.tensor(0.0), atol=1e-5) and advantages[5, 0] > 0


class HFGenerateClient:
    """verl's LLM server client, in process: Hugging Face generate on the tiny model (no vLLM)."""

    def __init__(self, model_dir: Path):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.model = AutoModelForImageTextToText.from_pretrained(model_dir)
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.prompts: list[list[int]] = []

    async def generate(self, request_id, prompt_ids, sampling_params, image_data=None, **_):
        from verl.workers.rollout.replica import TokenOutput

        self.prompts.append(list(prompt_ids))
        vision = dict(self.processor.image_processor(images=image_data, return_tensors="pt")) if image_data else {}
        ids = torch.tensor([prompt_ids])
        out = self.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), **vision, max_new_tokens=12, do_sample=True,
            suppress_tokens=vision_token_ids(self.processor.tokenizer),
        )  # fmt: skip
        return TokenOutput(token_ids=out[0, ids.shape[1] :].tolist(), extra_fields={"global_steps": 0})


def test_verl_agent_loop_expands_image_placeholders_and_builds_multi_modal_inputs(tiny_model, rotation_set):
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    cfg = _compose([
        f"actor_rollout_ref.model.path={tiny_model}", "data.max_response_length=16", "data.filter_overlong_prompts=false",
        "actor_rollout_ref.rollout.calculate_log_probs=false",
    ])  # fmt: skip
    asyncio.set_event_loop(asyncio.new_event_loop())  # verl's worker captures the current loop
    client = HFGenerateClient(tiny_model)
    worker = AgentLoopWorker(cfg, llm_client=client)
    dataset = RLHFDataset([str(p) for p in sorted(rotation_set.glob("train-*.parquet"))], client.processor.tokenizer, cfg.data, client.processor)
    batch = DataProto.from_single_dict(collate_fn([dataset[0], dataset[1]]))
    out = asyncio.get_event_loop().run_until_complete(worker.generate_sequences(batch))

    image_pad = client.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for i, inputs in enumerate(out.non_tensor_batch["multi_modal_inputs"]):
        grid = inputs["image_grid_thw"]
        assert grid.shape == (2, 3)  # both images of the rotation puzzle
        assert inputs["pixel_values"].shape[0] == int(grid.prod(dim=1).sum())
        assert client.prompts[i].count(image_pad) == int(grid.prod(dim=1).sum()) // 4
        assert int((out.batch["prompts"][i] == image_pad).sum()) == client.prompts[i].count(image_pad)
    assert out.batch["position_ids"].shape[:2] == (2, 4)  # Qwen2.5-VL's M-RoPE: text + 3 vision axes
    assert out.batch["response_mask"].sum() > 0
    assert list(out.non_tensor_batch["data_source"]) == ["ssl4rl/rotation"] * 2
