"""The verl path: compose `python -m verl.trainer.main_ppo` with our config and launch it.

Our Hydra config (configs/verl_grpo.yaml) extends verl's `ppo_trainer` with the paper's GRPO
settings; this module adds what depends on the run (data files, model, GPU counts, profile)
and passes any other Hydra override through unchanged.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path

from ssl4rl.curriculum import LEVELS, CurriculumOptions
from ssl4rl.errors import UserError

CURRICULUM_LOG = "curriculum.jsonl"

CONFIG_NAME = "verl_grpo"

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
}


def config_dir() -> Path:
    return Path(str(resources.files("ssl4rl.configs")))


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
) -> list[str]:
    """The full `python -m verl.trainer.main_ppo ...` command line.

    curriculum: None, "adaptive" (default band and window) or CurriculumOptions: the training
    set is served through ssl4rl.curriculum.CurriculumDataset, and the reward appends each
    rollout's outcome to `<run folder>/curriculum.jsonl`, the log the dataset follows.
    """
    data = Path(data_dir).resolve()
    train, test = sorted(data.glob("train-*.parquet")), sorted(data.glob("test-*.parquet"))
    if not train:
        raise UserError(f"{data_dir}: no train-*.parquet files (build a puzzle set with `ssl4rl build` first)")
    if profile not in PROFILES:
        raise UserError(f"unknown profile '{profile}' (profiles: {', '.join(PROFILES)})")
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
    if filter_groups:
        command += ["algorithm.filter_groups.enable=true", "algorithm.filter_groups.metric=acc"]
    if curriculum is not None and curriculum != "off":
        _check_levels(data)
        command += curriculum_overrides(Path(out_dir).resolve() / name / CURRICULUM_LOG, curriculum)
    for key, value in (reward_kwargs or {}).items():
        command.append(f"+reward.custom_reward_function.reward_kwargs.{key}={value}")
    return command + list(overrides)


def _check_levels(data: Path) -> None:
    """Fail before launching when the build has no levels to move between."""
    try:
        specs = json.loads((data / "manifest.json").read_text())["specs"]
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


def launch(command: list[str], dry_run: bool = False) -> int:
    if dry_run:
        print(shlex.join(command))
        return 0
    try:
        import verl  # noqa: F401
    except ImportError:
        raise UserError("verl is not installed: pip install 'ssl4rl[verl]' (and vllm on GPU machines)") from None
    return subprocess.call(command)
