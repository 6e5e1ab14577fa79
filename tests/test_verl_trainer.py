"""verl's real trainer, run whole on the CPU: `python -m verl.trainer.main_ppo` with our config,
parquet, curriculum dataset, reward and the hf rollout of ssl4rl.train.verl_plugin; then resume,
merge and evaluate the checkpoint it wrote. Each launch costs about a minute of start-up on two
cores, so one test carries the whole golden path, one more the LoRA variant and one the graph
puzzles with a text model, LoRA and two FSDP ranks (tests/test_merge.py covers every other
combination on checkpoints written the same way)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from conftest import lora_fused, saved_actor_weights
from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.models import vision_token_ids

STEP_LINE = re.compile(r"step:(\d+) - .*training/global_step:")


@pytest.fixture(scope="module")
def mix_build(tmp_path_factory) -> Path:
    """Two tasks at two levels from the bundled photos; jigsaw shows 4 tiles at easy."""
    out = tmp_path_factory.mktemp("mix") / "data"
    build(BuildConfig(task="mix", source="samples", out=str(out), tasks={"rotation": 1, "jigsaw": 1}, difficulty=["easy", "medium"]), progress_bar=False)
    return out


def _train(data: Path, model: Path, out: Path, *args: str) -> str:
    """`ssl4rl train --backend verl --device cpu ...` in a fresh process; returns its log."""
    command = [sys.executable, "-m", "ssl4rl", "train", "--backend", "verl", "--device", "cpu", "--data", str(data), "--model", str(model), "--out", str(out), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


def _scalars(run: Path) -> dict[str, list[int]]:
    """TensorBoard tag -> steps, over every event file in the run folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, list[int]] = {}
    for events in sorted(run.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            tags.setdefault(tag, []).extend(event.step for event in accumulator.Scalars(tag))
    return tags


def _actor_weights(step_dir: Path) -> dict[str, torch.Tensor]:
    """The FSDP actor's whole tensors, joined from the shards its ranks saved."""
    return saved_actor_weights(step_dir / "actor")


def _assert_fused(merged: dict, run: Path, r: int, alpha: int) -> None:
    """The merged model is the actor's base + alpha/r * B @ A, tensor for tensor (in bfloat16),
    and the adapter trained (B is no longer zero), so the fused weights differ from the base."""
    saved = _actor_weights(run)
    fused = lora_fused(saved, r, alpha)
    assert set(merged) == set(fused)  # a plain model: no PEFT wrappers or adapter keys
    for name, tensor in fused.items():
        assert torch.equal(merged[name], tensor.to(merged[name].dtype)), name
    base = {k.removeprefix("base_model.model.").replace(".base_layer.", "."): v for k, v in saved.items() if ".lora_" not in k}
    assert any(not torch.equal(merged[n], base[n].to(merged[n].dtype)) for n in merged), "the adapter did not change any weight"


def _tasks(data: Path, split: str) -> set[str]:
    return {row["task"] for row in pq.read_table(next(data.glob(f"{split}-*.parquet")), columns=["extra_info"]).column("extra_info").to_pylist()}


def test_golden_path_train_resume_merge_eval_on_cpu(mix_build, tiny_model, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = tmp_path / "outputs"
    # An entropy bonus moves the weights at every step, even when a group's rollouts all tie
    # (zero advantage): then the merged model below can only equal the actor at step 3.
    train = ["--curriculum", "adaptive", "actor_rollout_ref.actor.entropy_coeff=0.01"]
    log = _train(mix_build, tiny_model, out, *train, "trainer.total_training_steps=2")
    run = out / "verl" / f"{mix_build.parent.name}-{mix_build.name}"
    assert [int(s) for s in STEP_LINE.findall(log)] == [1, 2]
    assert (run / "global_step_2" / "actor").is_dir()

    tags = _scalars(run)
    assert tags["critic/score/mean"] == [1, 2]  # the training reward, every step
    for task in _tasks(mix_build, "test"):  # per-task validation before training and at the end
        assert sorted(tags[f"val-core/ssl4rl/{task}/acc/mean@1"]) == [0, 2]
        assert f"val-aux/ssl4rl/{task}/format/mean@1" in tags  # our reward's extra info
    outcomes = [json.loads(line) for line in (run / "curriculum.jsonl").read_text().splitlines()]
    assert len(outcomes) == 2 * 4 * 2  # steps x prompts per step x rollouts (the cpu profile)
    assert {o["task"] for o in outcomes} <= _tasks(mix_build, "train") and {o["level"] for o in outcomes} <= {"easy", "medium"}

    log = _train(mix_build, tiny_model, out, *train, "trainer.total_training_steps=3")
    assert "Resuming from" in log and [int(s) for s in STEP_LINE.findall(log)] == [3]
    assert len((run / "curriculum.jsonl").read_text().splitlines()) == 3 * 4 * 2

    merged = tmp_path / "merged"
    assert main(["merge", str(run), str(merged)]) == 0  # the run folder: its newest step, 3
    model = AutoModelForImageTextToText.from_pretrained(merged)
    AutoProcessor.from_pretrained(merged)
    actor = _actor_weights(run / "global_step_3")
    state = model.state_dict()
    assert set(state) == set(actor)
    for name, tensor in state.items():
        assert torch.equal(tensor, actor[name].to(tensor.dtype)), name
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()
    assert any(not torch.equal(actor[name], initial[name]) for name in actor), "three steps moved no weight"
    step2 = _actor_weights(run / "global_step_2")
    assert any(not torch.equal(actor[name], step2[name]) for name in actor), "the resumed step 3 moved no weight"

    assert main(["eval", "--model", str(merged), "--puzzles", str(mix_build), "--out", str(tmp_path / "eval"), "--backend", "hf", "--max-new-tokens", "32"]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["questions"] == json.loads((mix_build / "manifest.json").read_text())["rows"]["test"]


def test_lora_actor_trains_on_cpu_and_merge_fuses_the_adapter(mix_build, tiny_model, tmp_path):
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "outputs"
    lora = ["actor_rollout_ref.model.lora_rank=8", "actor_rollout_ref.model.lora_alpha=16", "actor_rollout_ref.actor.optim.lr=1e-3"]
    # the entropy bonus gives the adapter a gradient even when every rollout of a group ties
    _train(mix_build, tiny_model, out, *lora, "actor_rollout_ref.actor.entropy_coeff=0.01", "trainer.total_training_steps=2")
    run = out / "verl" / f"{mix_build.parent.name}-{mix_build.name}"
    assert (run / "global_step_2" / "actor" / "lora_train_meta.json").exists()
    merged = tmp_path / "merged"
    assert main(["merge", str(run), str(merged)]) == 0
    assert not (merged / "lora_adapter").exists()
    fused = AutoModelForImageTextToText.from_pretrained(merged).state_dict()
    _assert_fused(fused, run / "global_step_2", r=8, alpha=16)
    base_model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    base = base_model.state_dict()
    assert set(fused) == set(base)
    linear = {f"{name}.weight" for name, module in base_model.named_modules() if isinstance(module, torch.nn.Linear)}
    changed = {name for name in fused if not torch.equal(fused[name], base[name].to(fused[name].dtype))}
    assert changed and changed <= linear  # the fused deltas, on the adapted linear layers only


def test_graph_puzzles_train_a_text_model_with_lora_on_two_ranks_then_merge_and_evaluate(tmp_path):
    """The same trainer, reward, curriculum and merge with a text model (AutoModelForCausalLM in
    the hf rollout) on a mix of the three graph puzzles, as the paper's graph runs fit one GPU:
    LoRA on the actor; two FSDP ranks, so the merge joins shards."""
    from transformers import AutoModelForCausalLM

    from ssl4rl.tiny_lm import make_tiny_qwen2

    data = tmp_path / "graphs"
    model = make_tiny_qwen2(tmp_path / "lm")
    # counted with the model's own tokenizer: the tiny one spends far more tokens per character
    # than the estimate made for real tokenizers, and verl drops prompts over its limit
    build(BuildConfig(task="mix", source="synthetic", out=str(data), tasks={"masking": 1, "neighbour": 1, "link": 1}, difficulty=["easy", "medium"], processor=str(model)), progress_bar=False)
    out = tmp_path / "outputs"
    lora = ["actor_rollout_ref.model.lora_rank=8", "actor_rollout_ref.model.lora_alpha=16", "actor_rollout_ref.actor.optim.lr=1e-3"]
    args = ("--gpus", "2", "--curriculum", "adaptive", *lora, "actor_rollout_ref.actor.entropy_coeff=0.01", "trainer.total_training_steps=2")
    log = _train(data, model, out, *args)
    run = out / "verl" / f"{data.parent.name}-{data.name}"
    assert sorted(p.name for p in (run / "global_step_2" / "actor").glob("model_world_size_*")) == [
        "model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"]
    steps = [int(s) for s in STEP_LINE.findall(log)]
    assert steps == [1, 2]
    planned = re.search(r"train rows: \d+ steps per epoch, (\d+) steps in all", log)
    assert planned and int(planned.group(1)) == len(steps)  # the preflight's count is the steps verl ran
    tags = _scalars(run)
    for task in _tasks(data, "test"):
        assert sorted(tags[f"val-core/ssl4rl/{task}/acc/mean@1"]) == [0, 2]
    outcomes = [json.loads(line) for line in (run / "curriculum.jsonl").read_text().splitlines()]
    assert len(outcomes) == 2 * 4 * 2 and {o["task"] for o in outcomes} <= {"masking", "neighbour", "link"}
    assert [o["step"] for o in outcomes] == [1] * 8 + [2] * 8  # every line names its step
    for task in {o["task"] for o in outcomes}:  # each task's level, every step it is served from on, in TensorBoard and the step line
        first = min(o["step"] for o in outcomes if o["task"] == task)  # 4 prompts of 3 tasks: a task may miss step 1
        assert sorted(tags[f"curriculum/{task}"]) == list(range(first, 3))
        assert len(re.findall(rf"curriculum/{task}:[0-9.]+", log)) == 3 - first
    again = _train(data, model, out, *args)  # finished: one line, no launch
    assert "finished at step 2 of 2" in again and not STEP_LINE.findall(again)
    merged = tmp_path / "merged"
    assert main(["merge", str(run), str(merged)]) == 0
    assert not (merged / "lora_adapter").exists()
    _assert_fused(AutoModelForCausalLM.from_pretrained(merged).state_dict(), run / "global_step_2", r=8, alpha=16)
    assert main(["eval", "--model", str(merged), "--graph-task", "link-prediction", "--source", "synthetic", "--out", str(tmp_path / "eval"),
                 "--backend", "hf", "--max-new-tokens", "16", "--limit", "8"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["questions"] == 8


def test_hf_rollout_server_serves_a_text_model(tmp_path):
    from ssl4rl.tiny_lm import make_tiny_qwen2
    from ssl4rl.train.verl_plugin import HFGenerateServer

    server = HFGenerateServer(str(make_tiny_qwen2(tmp_path / "lm")), response_length=8)
    assert server.processor is None
    tokens, log_probs = server._generate([1, 2, 3, 4], {"temperature": 1.0, "logprobs": True}, None)
    assert 1 <= len(tokens) <= 8 and len(log_probs) == len(tokens) and all(lp <= 0 for lp in log_probs)
    with pytest.raises(ValueError, match="text model was given images"):
        server._generate([1, 2], {}, ["an image"])


# ---------------------------------------------------------------- the plugin's pieces, in process
def test_hf_rollout_server_never_samples_vision_tokens_and_reports_its_weights_step(tiny_model, rotation_set):
    from ssl4rl.train.trl_grpo import load_split
    from ssl4rl.train.verl_plugin import HFGenerateServer

    server = HFGenerateServer(str(tiny_model), response_length=24)
    row = load_split(rotation_set, "test")[0]
    prompt = server.processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    ids = server.processor(text=[prompt], images=row["images"])["input_ids"][0]
    torch.manual_seed(0)
    random_state = {name: torch.randn_like(p) for name, p in server.model.named_parameters()}  # a policy that samples anything
    assert server.load_weights(random_state, global_steps=7) == len(random_state)
    forbidden = set(vision_token_ids(server.processor.tokenizer))
    for _ in range(3):
        tokens, log_probs = server._generate(ids, {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}, row["images"])
        assert tokens and not forbidden & set(tokens) and len(log_probs) == len(tokens) and max(log_probs) <= 0
    out = __import__("asyncio").run(server.generate("r", prompt_ids=ids, sampling_params={"temperature": 0}, image_data=row["images"]))
    assert out.extra_fields["global_steps"] == 7 and out.log_probs is None
    with pytest.raises(RuntimeError, match="does not have"):
        server.load_weights({"no.such.weight": torch.zeros(1)})


def test_plugin_refuses_another_verl_version(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.8.0" if name == "verl" else "1.0")
    spec = importlib.util.find_spec("ssl4rl.train.verl_plugin")
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(RuntimeError, match="written for verl 0.9.1, found 0.8.0"):
        spec.loader.exec_module(module)


# ---------------------------------------------------------------- bad input: one line, exit 2, before Ray
def _train_main(data, model, tmp_path, *args):
    return main(["train", "--backend", "verl", "--data", str(data), "--model", str(model), "--out", str(tmp_path / "out"), *args])


def test_another_verl_version_stops_before_ray(rotation_set, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.10.0" if name == "verl" else "1.0")
    assert _train_main(rotation_set, tiny_model, tmp_path, "--device", "cpu") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "verl 0.10.0 is installed" in err and "pip install verl==0.9.1" in err
    assert not (tmp_path / "out").exists()


def test_missing_model_for_the_hf_rollout_stops_before_ray(rotation_set, tmp_path, capsys):
    assert _train_main(rotation_set, tmp_path / "no-model", tmp_path, "--device", "cpu", "--rollout", "hf") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such model folder" in err
    assert not (tmp_path / "out").exists()


def test_model_too_large_for_cpu_memory_stops_before_ray(rotation_set, tiny_model, tmp_path, capsys, monkeypatch):
    from ssl4rl.train import verl_launch

    from transformers import AutoModelForImageTextToText

    params = sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(tiny_model).parameters())
    assert verl_launch.parameter_count(verl_launch._model_config(str(tiny_model))) == params
    monkeypatch.setattr(verl_launch, "available_memory", lambda: params * verl_launch.CPU_BYTES_PER_PARAMETER - 1)
    capsys.readouterr()
    assert _train_main(rotation_set, tiny_model, tmp_path, "--device", "cpu") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is free: use a smaller model or a GPU" in err
    monkeypatch.setattr(verl_launch, "available_memory", lambda: params * verl_launch.CPU_BYTES_PER_PARAMETER)
    verl_launch.preflight(str(tiny_model), "hf", "cpu")  # just enough memory: no error


def test_cpu_mode_refuses_a_gpu_rollout(rotation_set, tiny_model, tmp_path, capsys):
    assert _train_main(rotation_set, tiny_model, tmp_path, "--device", "cpu", "--rollout", "vllm") == 2
    assert "--device cpu needs --rollout hf" in capsys.readouterr().err


def test_cpu_dry_run_sets_the_plugin_platform_and_profile(rotation_set, tiny_model, tmp_path, capsys):
    assert _train_main(rotation_set, tiny_model, tmp_path, "--device", "cpu", "--dry-run", "trainer.total_training_steps=5") == 0
    printed = capsys.readouterr().out
    assert "VERL_USE_EXTERNAL_MODULES=ssl4rl.train.verl_plugin" in printed and "SSL4RL_VERL_DEVICE=cpu" in printed
    assert "actor_rollout_ref.rollout.name=hf" in printed and "trainer.device=cpu" in printed and "+ray_kwargs.ray_init.num_gpus=1" in printed
    assert f"TENSORBOARD_DIR={(tmp_path / 'out' / 'verl').resolve()}" in printed


def test_hf_rollout_samples_from_the_model_the_actor_trains(tiny_model, rotation_set):
    """The rollout's log-probabilities equal those of one forward pass over the prompt and its
    response as the processor encodes them (image tokens on their M-RoPE grid). Without the
    image tokens' types, generation placed them as text and sampled from another model."""
    from ssl4rl.train.trl_grpo import load_split
    from ssl4rl.train.verl_plugin import HFGenerateServer

    server = HFGenerateServer(str(tiny_model), response_length=12)
    row = load_split(rotation_set, "test")[0]
    prompt = server.processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    ids = server.processor(text=[prompt], images=row["images"])["input_ids"][0]
    torch.manual_seed(0)
    tokens, log_probs = server._generate(ids, {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}, row["images"])
    assert torch.allclose(torch.tensor(log_probs), forward_log_probs(server, prompt, row["images"], tokens), atol=1e-4)


def forward_log_probs(server, prompt: str, images, tokens: list[int]) -> torch.Tensor:
    """The log-probabilities of `tokens` after `prompt` in one forward pass of the server's model,
    the prompt encoded by its processor (image tokens on their M-RoPE grid)."""
    batch = server.processor(text=[prompt], images=images, return_tensors="pt")
    full = torch.cat([batch["input_ids"], torch.tensor([tokens])], 1)
    kinds = torch.cat([batch["mm_token_type_ids"], torch.zeros(1, len(tokens), dtype=batch["mm_token_type_ids"].dtype)], 1)
    with torch.no_grad():
        logits = server.model(input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=kinds,
                              pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"]).logits[0, batch["input_ids"].shape[1] - 1 : -1]  # fmt: skip
    return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(tokens)[:, None])[:, 0]


def test_hf_rollout_batches_concurrent_requests_and_each_row_keeps_its_own_model(tiny_model, rotation_set):
    """Requests that arrive together are answered by one `generate` over left-padded prompts of
    different lengths; each row's log-probabilities still equal a forward pass over that row
    alone, and greedy answers equal those of one request at a time."""
    import asyncio

    from ssl4rl.train.trl_grpo import load_split
    from ssl4rl.train.verl_plugin import HFGenerateServer

    server = HFGenerateServer(str(tiny_model), response_length=10)
    rows = [load_split(rotation_set, "train")[i] for i in range(3)]
    prompts = [server.processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
    prompts[1] = prompts[1].replace("Image 2", "The second image, Image 2,")  # rows of different lengths: padding is exercised
    requests = [(server.processor(text=[p], images=r["images"])["input_ids"][0], r["images"]) for p, r in zip(prompts, rows)]
    assert len({len(ids) for ids, _ in requests}) > 1
    torch.manual_seed(0)
    sampled = server._generate_batch(requests, {"temperature": 1.0, "logprobs": True})
    for (_, images), prompt, (tokens, log_probs) in zip(requests, prompts, sampled):
        assert torch.allclose(torch.tensor(log_probs), forward_log_probs(server, prompt, images, tokens), atol=1e-4)

    calls = []
    one_batch = server._generate_batch
    server._generate_batch = lambda reqs, params, seeds=None: calls.append(len(reqs)) or one_batch(reqs, params, seeds)

    async def together():
        return await asyncio.gather(*[server.generate(str(i), prompt_ids=ids, sampling_params={"temperature": 0}, image_data=images)
                                      for i, (ids, images) in enumerate(requests)])  # fmt: skip

    outputs = asyncio.run(together())
    assert calls == [len(requests)]
    assert [o.token_ids for o in outputs] == [one_batch([request], {"temperature": 0})[0][0] for request in requests]


def test_seeded_sampling_draws_from_the_warped_softmax():
    """Gumbel noise from each row's seed, then the argmax: a draw from softmax(logits / T) after
    top-k / top-p, and the same draw for the same seed whatever rows share the batch."""
    from ssl4rl.train.verl_plugin import SeededSampling

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    seeds = list(range(20000))
    for temperature, top_k, kept in ((1.0, -1, 4), (0.5, 2, 2)):
        draws = [int(SeededSampling([seed], temperature, top_k)(None, logits).argmax()) for seed in seeds]
        counts = torch.bincount(torch.tensor(draws), minlength=4).double() / len(seeds)
        expected = torch.zeros(4, dtype=torch.double)
        expected[:kept] = torch.softmax(logits[0, :kept].double() / temperature, -1)
        assert torch.allclose(counts, expected, atol=0.012), (temperature, counts, expected)
    together = SeededSampling([3, 5], 1.0)(None, logits.repeat(2, 1)).argmax(-1).tolist()
    alone = [int(SeededSampling([seed], 1.0)(None, logits).argmax()) for seed in (3, 5)]
    assert together == alone


def test_hf_rollout_replies_follow_the_rollout_seed_not_arrival_order(tiny_model, rotation_set):
    """A prompt's n rollouts are n identical requests in no fixed order: the group's replies are
    the same whichever order and batches they come in, change with the rollout seed and with
    the weights' step, and differ within a group (verl runs on the hf rollout repeat)."""
    import asyncio
    from collections import Counter

    from ssl4rl.train.trl_grpo import load_split
    from ssl4rl.train.verl_plugin import HFGenerateServer

    train = load_split(rotation_set, "train")
    rows = [train[0], next(train[i] for i in range(len(train)) if train[i]["extra_info"]["source_hash"] != train[0]["extra_info"]["source_hash"])]

    def replies(seed: int, order: list[int], step: int = 1) -> list[Counter]:
        server = HFGenerateServer(str(tiny_model), response_length=8, seed=seed)
        server.global_steps = step
        torch.manual_seed(0)
        server.load_weights({n: torch.randn_like(p) for n, p in server.model.named_parameters()}, global_steps=step)  # a policy that samples widely
        requests = []
        for r in rows:
            prompt = server.processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            requests.append((server.processor(text=[prompt], images=r["images"])["input_ids"][0], r["images"]))

        async def send():
            return await asyncio.gather(*[server.generate(str(i), prompt_ids=requests[i][0], sampling_params={"temperature": 1.0}, image_data=requests[i][1]) for i in order])

        groups = [Counter(), Counter()]
        for i, out in zip(order, asyncio.run(send())):
            groups[i][tuple(out.token_ids)] += 1
        return groups

    first = replies(0, [0, 0, 0, 1, 1, 1])
    assert replies(0, [1, 0, 1, 0, 1, 0]) == first
    assert all(len(group) > 1 for group in first)
    assert replies(1, [0, 0, 0, 1, 1, 1]) != first
    assert replies(0, [0, 0, 0, 1, 1, 1], step=2) != first


def test_a_steps_rollouts_reach_the_update_in_row_and_reply_order_whatever_order_they_finished(monkeypatch):
    """verl hands a step's rollouts over in the order they finished, and the actor cuts its
    mini-batches from that order; with the plugin loaded the order is by puzzle set, row and reply
    (two runs of one seed then train on the same mini-batches), and each tag stays with its key."""
    import random

    import transfer_queue
    from verl.trainer.ppo.v1 import replay_buffer

    import ssl4rl.train.verl_plugin  # noqa: F401  (loading it installs the order)

    rows = {"c3": ("ssl4rl/rotation", 7), "9f": ("ssl4rl/rotation", 2), "e1": ("ssl4rl/position", 2)}
    replies = {f"{uid}_{session}_0": [session % 2, 5] for uid in rows for session in range(4)}

    def kv_batch_get(keys, partition_id, select_fields):
        assert partition_id == "train"
        return {
            "data_source": [rows[key.split("_")[0]][0] for key in keys],
            "index": torch.tensor([rows[key.split("_")[0]][1] for key in keys]),
            "responses": [torch.tensor(replies[key]) for key in keys],
        }

    monkeypatch.setattr(transfer_queue, "kv_batch_get", kv_batch_get)
    monkeypatch.setattr(replay_buffer.tq, "kv_clear", lambda **_: None)
    orders = set()
    for seed in range(6):
        finished = list(replies)
        random.Random(seed).shuffle(finished)
        snapshot = {key: {"seq_len": len(replies[key]), "key": key} for key in finished}
        batch = replay_buffer.ReplayBuffer._materialize_batch(None, "train", list(rows), snapshot)
        assert [tag["key"] for tag in batch.tags] == batch.keys
        orders.add(tuple(batch.keys))
    assert len(orders) == 1
    (order,) = orders
    groups = [key.split("_")[0] for key in order]
    assert groups == ["e1"] * 4 + ["9f"] * 4 + ["c3"] * 4  # position before rotation, then row 2 before row 7
    assert [replies[key][0] for key in order] == [0, 0, 1, 1] * 3


@pytest.mark.parametrize("reply_lengths", [[16, 16, 16, 12], [16, 16, 16, 16]])
def test_mrope_position_ids_of_equal_length_rows_split_into_micro_batches(reply_lengths):
    """verl 0.9.1 crashed splitting a batch whose rows all have the same length (fixed-length
    prompts, same-length replies: "size of tensor a (4) must match ... (3)"). With the plugin,
    every batch nests each row's (4, length) position ids along the sequence, survives Ray's
    pickling and verl's own fix-up, splits, and each row's slice is that row's positions."""
    import pickle

    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils import padding

    import ssl4rl.train.verl_plugin  # noqa: F401 - installs the conversion

    rows, prompt, width = len(reply_lengths), 20, 16
    mask = torch.zeros(rows, prompt + width, dtype=torch.long)
    for i, length in enumerate(reply_lengths):
        mask[i, : prompt + length] = 1
    positions = torch.arange(prompt + width).expand(rows, 4, prompt + width) * torch.tensor([1, 2, 3, 4]).view(1, 4, 1)
    data = TensorDict({"input_ids": torch.ones(rows, prompt + width, dtype=torch.long), "attention_mask": mask,
                       "response_mask": mask[:, prompt:].clone(), "position_ids": positions.clone()}, batch_size=[rows])  # fmt: skip
    data = pickle.loads(pickle.dumps(padding.left_right_2_no_padding(data)))
    tu.maybe_fix_3d_position_ids(data)
    halves = tu.chunk_tensordict(data, 2)
    for half, first in zip(halves, (0, rows // 2)):
        nested = half["position_ids"]
        offsets = nested.offsets().tolist()
        for j in range(rows // 2):
            row, length = first + j, prompt + reply_lengths[first + j]
            assert torch.equal(nested._values[:, offsets[j] : offsets[j + 1]], positions[row, :, :length])
