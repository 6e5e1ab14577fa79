"""The verl path: compose `python -m verl.trainer.main_ppo` with our config and launch it.

Our Hydra config (configs/verl_grpo.yaml) extends verl's `ppo_trainer` with the paper's GRPO
settings; this module adds what depends on the run (data files, model, GPU counts, profile,
rollout backend, device) and passes any other Hydra override through unchanged. Every launch
loads ssl4rl.train.verl_plugin into verl's processes (verl's `VERL_USE_EXTERNAL_MODULES` hook),
which adds the `hf` rollout and the CPU mode, and checks before Ray starts what would otherwise
fail after it (the verl version, the model, the memory a CPU run needs).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ssl4rl.curriculum import LEVELS, CurriculumOptions
from ssl4rl.errors import UserError
from ssl4rl.schema import MANIFEST, split_files
from ssl4rl.train.verl_config import CONFIG_NAME, VERL_VERSION, config_dir

CURRICULUM_LOG = "curriculum.jsonl"
PLUGIN = "ssl4rl.train.verl_plugin"
ROLLOUTS = ("vllm", "sglang", "hf")
DEVICES = ("gpu", "cpu")

# Documented starting points; any key can still be overridden on the command line.
PROFILES = {
    # The SSL4RL paper: Qwen2.5-VL-3B-Instruct on one node of 8 GPUs (the config's defaults).
    "paper": [],
    # One 80 GB GPU: LoRA on the actor, smaller batches, parameters offloaded between phases.
    "1gpu": [
        "data.train_batch_size=64",
        "actor_rollout_ref.actor.ppo_mini_batch_size=16",
        "actor_rollout_ref.model.lora_rank=64",
        "actor_rollout_ref.model.lora_alpha=32",
        "actor_rollout_ref.model.target_modules=all-linear",
        "actor_rollout_ref.actor.optim.lr=1e-5",
        "actor_rollout_ref.actor.fsdp_config.param_offload=true",
        "actor_rollout_ref.ref.fsdp_config.param_offload=true",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.5",
    ],
    # The paper's graph runs: a text model (Qwen2.5-3B/7B-Instruct, `--model`) on one node of 8
    # GPUs, the paper's GRPO settings; a graph's nodes and edges need longer prompts (build with
    # `--max-prompt-tokens 2048`).
    "graph": ["data.max_prompt_length=2048"],
    # A laptop or CI runner (`--device cpu`, hf rollout): debug data, reward and logging before a
    # cluster run. A few prompts per step, 2 rollouts, short answers; validation before training
    # and at the last step, a checkpoint at the last step (verl always does both at the end).
    "cpu": [
        "data.train_batch_size=4",
        "data.max_response_length=32",
        "data.dataloader_num_workers=0",
        "actor_rollout_ref.model.use_remove_padding=false",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.ref.strategy=fsdp2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.n=2",
        # fp32 as the hf rollout on CPU (bf16 buys nothing there). The actor recomputes the old
        # log-probs (verl's default) rather than taking the rollout's (bypass mode, ~1 s a step
        # less): the rollout's differ in the last bits with whichever requests share its batch, so
        # runs of one seed went apart after a few steps; with the plugin's row order they repeat.
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=fp32",
        "+actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype=fp32",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "ray_kwargs.ray_init.num_cpus=12",  # logical CPUs: verl's actors ask for more than 2 cores
        "trainer.total_epochs=1",
    ],
}
DEFAULT_GPUS = {"paper": 8, "graph": 8, "1gpu": 1, "cpu": 1}


def _hydra_list(paths: list[Path]) -> str:
    return "[" + ",".join(f"'{p}'" for p in paths) + "]"


def verl_command(
    data_dir: str,
    model: str,
    out_dir: str = "outputs/verl",
    gpus: int = 8,
    nodes: int = 1,
    profile: str = "paper",
    experiment: str | None = None,
    filter_groups: bool = False,
    reward_kwargs: dict | None = None,
    overrides: list[str] = (),
    curriculum: str | CurriculumOptions | None = None,
    rollout: str | None = None,
    device: str = "gpu",
) -> list[str]:
    """The full `python -m verl.trainer.main_ppo ...` command line.

    rollout: None (the config's vLLM), "vllm", "sglang" or "hf" (Hugging Face generate, from
    ssl4rl.train.verl_plugin). device "cpu" runs verl's trainer on the CPU with the hf rollout;
    its Ray resources count `gpus` logical ranks.

    curriculum: None, "adaptive" (default band and window) or CurriculumOptions: the training
    set is served through ssl4rl.curriculum.CurriculumDataset, and the reward appends each
    rollout's outcome to `<run folder>/curriculum.jsonl`, the log the dataset follows.
    """
    data = Path(data_dir).resolve()
    train, test = split_files(data, "train"), split_files(data, "test")
    if not train:
        raise UserError(f"{data_dir}: no train-*.parquet files (build a puzzle set with `ssl4rl build` first)")
    if profile not in PROFILES:
        raise UserError(f"unknown profile '{profile}' (profiles: {', '.join(PROFILES)})")
    if device not in DEVICES:
        raise UserError(f"unknown device '{device}' (devices: {', '.join(DEVICES)})")
    if rollout is not None and rollout not in ROLLOUTS:
        raise UserError(f"unknown rollout '{rollout}' (rollouts: {', '.join(ROLLOUTS)})")
    if device == "cpu" and rollout not in (None, "hf"):
        raise UserError(f"--device cpu needs --rollout hf ({rollout} needs a GPU)")
    if device == "cpu":
        rollout = "hf"
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    name = experiment or f"{data.parent.name}-{data.name}"
    command = [
        sys.executable, "-m", "verl.trainer.main_ppo",
        f"--config-path={config_dir()}", f"--config-name={CONFIG_NAME}",
        f"data.train_files={_hydra_list(train)}",
        f"data.val_files={_hydra_list(test or train)}",
        f"actor_rollout_ref.model.path={model}",
        f"trainer.n_gpus_per_node={gpus}",
        f"trainer.nnodes={nodes}",
        f"trainer.experiment_name={name}",
        f"trainer.default_local_dir={Path(out_dir).resolve() / name}",
    ]  # fmt: skip
    command += PROFILES[profile]
    if rollout:
        command.append(f"actor_rollout_ref.rollout.name={rollout}")
    if rollout == "hf":
        command.append("actor_rollout_ref.model.lora.merge=true")  # the replica takes merged weights
    if device == "cpu":
        command += ["trainer.device=cpu", f"+ray_kwargs.ray_init.num_gpus={gpus}"]
    if filter_groups:
        command += ["algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=acc"]
    if curriculum is not None and curriculum != "off":
        _check_levels(data)
        command += curriculum_overrides(Path(out_dir).resolve() / name / CURRICULUM_LOG, curriculum)
    for key, value in (reward_kwargs or {}).items():
        command.append(f"+reward.custom_reward_function.reward_kwargs.{key}={value}")
    command += list(overrides)
    if curriculum is not None and curriculum != "off":  # each curriculum.jsonl line's step: one step logs batch x n outcomes
        from ssl4rl.train.verl_config import verl_settings

        settings = verl_settings(command)
        try:
            rollouts = int(settings["data.train_batch_size"]) * int(settings["actor_rollout_ref.rollout.n"])
        except (KeyError, TypeError, ValueError):
            rollouts = None
        if rollouts:
            command.append(f"+reward.custom_reward_function.reward_kwargs.curriculum_step_rollouts={rollouts}")
    return command


def _check_levels(data: Path) -> None:
    """Fail before launching when the build has no levels to move between."""
    try:
        specs = json.loads((data / MANIFEST).read_text())["specs"]
    except (OSError, ValueError, KeyError):
        return  # not our manifest: the dataset checks the rows themselves
    levels = {spec.get("difficulty") for spec in specs} & set(LEVELS)
    if len(levels) < 2:
        raise UserError(f"{data}: an adaptive curriculum needs a build with two or more levels (ssl4rl build ... --difficulty easy,medium,hard)")


def curriculum_overrides(log: Path, curriculum: str | CurriculumOptions = "adaptive") -> list[str]:
    """Hydra overrides for the adaptive curriculum (ssl4rl.curriculum).

    verl chooses prompts only through the dataset (its `trainer.v1.sampler.custom_sampler` is a
    replay buffer over finished rollouts), so the curriculum is a dataset class. Dataloader
    workers would prefetch batches at stale levels (2 per worker: up to 16 steps behind with
    verl's 8), so the main process loads the data; the reward writes the log the dataset reads.
    """
    if curriculum == "adaptive":
        curriculum = CurriculumOptions()
    if not isinstance(curriculum, CurriculumOptions):
        raise UserError(f"unknown curriculum {curriculum!r} (curricula: off, adaptive)")
    command = [
        "data.custom_cls.path=pkg://ssl4rl.curriculum",
        "data.custom_cls.name=CurriculumDataset",
        f"+data.curriculum.log={log}",
        f"+data.curriculum.low={curriculum.low}",
        f"+data.curriculum.high={curriculum.high}",
        "+data.curriculum.rollout_n=${actor_rollout_ref.rollout.n}",
        "data.dataloader_num_workers=0",
        f"+reward.custom_reward_function.reward_kwargs.curriculum_log={log}",
    ]
    if curriculum.window:
        command.append(f"+data.curriculum.window={int(curriculum.window)}")
    return command


# Overrides a resumed run may change: how long it runs, how often it saves and validates.
RESUMABLE_KEYS = ("trainer.total_training_steps=", "trainer.total_epochs=", "trainer.save_freq=", "trainer.test_freq=", "trainer.resume_mode=")


def run_identity(command: list[str], data_dir: str, model: str) -> dict:
    """What must match for a run folder to be resumed rather than refused (ssl4rl.train.runs):
    the data (by its manifest), the model and every other argument of the launch."""
    from ssl4rl.train.runs import data_fingerprint

    kept = [arg for arg in command[1:] if not arg.lstrip("+").startswith(RESUMABLE_KEYS)]  # not the interpreter's path
    model = str(Path(model).expanduser().resolve()) if Path(model).expanduser().exists() else model
    return {"backend": "verl", "data": data_fingerprint(data_dir), "model": model, "command": kept}


def run_dir(command: list[str]) -> Path:
    """The run folder: checkpoints, TensorBoard events and the curriculum log."""
    return Path(next(arg for arg in reversed(command) if arg.startswith("trainer.default_local_dir=")).split("=", 1)[1])


def verl_env(command: list[str], device: str = "gpu") -> dict[str, str]:
    """Environment variables the launch adds: verl's processes inherit them from the driver."""
    modules = [m for m in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m and m != PLUGIN]
    env = {
        "VERL_USE_EXTERNAL_MODULES": ",".join([PLUGIN, *modules]),
        "TENSORBOARD_DIR": os.environ.get("TENSORBOARD_DIR") or str(run_dir(command) / "tensorboard"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if device == "cpu":
        env.update({"SSL4RL_VERL_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    if any(arg.startswith("+data.curriculum.log=") for arg in command):
        env["SSL4RL_CURRICULUM"] = "1"  # the plugin logs each task's level per step (curriculum/<task>)
    return env


def check_verl() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("verl")
    except PackageNotFoundError:
        raise UserError(f"verl is not installed: pip install 'ssl4rl[verl]' (verl {VERL_VERSION}; vllm on GPU machines)") from None
    if found != VERL_VERSION:
        raise UserError(f"verl {found} is installed, but ssl4rl's verl path is pinned to {VERL_VERSION}: pip install verl=={VERL_VERSION}")


def _model_config(model: str):
    from transformers import AutoConfig

    local = Path(model).expanduser()
    if not local.exists() and (model.startswith((".", "/", "~")) or model.count("/") != 1):
        raise UserError(f"{model}: no such model folder (give a local folder or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct)")
    try:
        return AutoConfig.from_pretrained(str(local) if local.exists() else model)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{model}: cannot read the model's config ({first})") from None


# Bytes a CPU run holds per parameter: fp32 weights, gradients and two Adam moments (16), the
# reference model (4) and the hf rollout's copy (4), plus a third for activations and overhead.
CPU_BYTES_PER_PARAMETER = 32


def parameter_count(config) -> int:
    """Parameters of the model a config describes, counted on the meta device (no memory used)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    with torch.device("meta"):
        try:
            model = AutoModelForImageTextToText.from_config(config)
        except ValueError:
            model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def preflight(model: str, rollout: str | None, device: str) -> None:
    """What fails after Ray has started, checked before: the verl version, the model, CPU memory."""
    check_verl()
    if rollout != "hf" and device != "cpu":
        return
    config = _model_config(model)
    if device == "cpu":
        needed = parameter_count(config) * CPU_BYTES_PER_PARAMETER
        free = available_memory()
        if needed > free:
            raise UserError(
                f"{model}: training it on the CPU needs about {_size(needed)} (weights, gradients, Adam state, "
                f"reference and rollout copies); {_size(free)} is free: use a smaller model or a GPU"
            )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def launch(command: list[str], dry_run: bool = False, env: dict[str, str] | None = None) -> int:
    env = env or {}
    if dry_run:
        print(shlex.join([f"{k}={v}" for k, v in env.items()] + command))
        return 0
    child = {k: v for k, v in os.environ.items() if not (k == "CUDA_VISIBLE_DEVICES" and env.get("SSL4RL_VERL_DEVICE") == "cpu")}
    return subprocess.call(command, env={**child, **env})
