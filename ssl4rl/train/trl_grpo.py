"""GRPO on one machine (CPU or one GPU) with TRL's GRPOTrainer, on the same parquet and the same
reward as the verl path: for debugging rewards and data before spending a cluster.

The verl row becomes TRL's conversational format: `<image>` markers in the prompt text turn
into image parts in place, `images` is decoded as a list of images (a text model on graph
puzzles: plain text turns, no images column, AutoModelForCausalLM), and the reward reads
`data_source`, `reward_model` and `extra_info` from the columns TRL passes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ssl4rl.chat import load_split
from ssl4rl.curriculum import AdaptiveRows, CurriculumOptions, default_window
from ssl4rl.errors import UserError
from ssl4rl.models import is_text_model, load_model, load_processor, tokenizer_of, vision_token_ids
from ssl4rl.reward import compute_score
from ssl4rl.schema import DATA_SOURCE_PREFIX


@dataclass
class LocalGRPOConfig:
    """Names follow the verl config where one exists (data.train_batch_size -> batch_size, ...)."""

    batch_size: int = 8  # prompts per step (verl: data.train_batch_size)
    mini_batch_size: int = 8  # prompts per optimizer update (verl: actor.ppo_mini_batch_size)
    rollout_n: int = 4  # completions per prompt (verl: actor_rollout_ref.rollout.n)
    lr: float = 1e-6  # (verl: actor.optim.lr)
    lr_warmup_steps: int = 0  # the rate rises linearly over the first N steps (verl: actor.optim.lr_warmup_steps)
    kl_loss_coef: float = 0.01  # (verl: actor.kl_loss_coef); TRL's beta
    max_response_length: int = 2048
    temperature: float = 1.0
    total_epochs: int = 1
    max_steps: int = -1  # > 0 stops after this many steps
    save_freq: int = 50  # checkpoint every N steps (verl: trainer.save_freq)
    seed: int = 0
    format_weight: float = 0.0
    strict_format: bool = False
    jigsaw_scoring: str = "permutation"
    logger: str = "tensorboard"  # or "none"


def _text(completion) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] if isinstance(m.get("content"), str) else "" for m in completion)


def make_reward_functions(tasks: list[str], format_weight: float, jigsaw_scoring: str, curriculum_log: str | None = None, step_of=None, strict_format: bool = False):
    """The training reward plus zero-weight metric functions: accuracy and format per task.

    TRL logs every reward function's mean (`rewards/<name>/mean`); a metric returns None for rows
    of other tasks, so each task's accuracy is averaged over its own rows only. TRL hands every
    function of a step the same completions list: they are scored once, by the first function
    called, and the others read that pass. With a curriculum log, that pass appends each outcome
    to it (once per completion), with the step `step_of()` names.
    """
    scored: dict = {}  # the step's completions list (held, so its identity is not reused) and its scores

    def scores(completions, data_source, reward_model, extra_info):
        if scored.get("completions") is not completions:
            step = step_of() if curriculum_log and step_of else None
            scored["scores"] = [
                compute_score(
                    source, _text(c), truth["ground_truth"], extra, format_weight=format_weight, jigsaw_scoring=jigsaw_scoring,
                    strict_format=strict_format, curriculum_log=curriculum_log, curriculum_step=step,
                )
                for c, source, truth, extra in zip(completions, data_source, reward_model, extra_info)
            ]  # fmt: skip
            scored["completions"] = completions
        return scored["scores"]

    def puzzle_reward(completions, data_source, reward_model, extra_info, **_):
        return [s["score"] for s in scores(completions, data_source, reward_model, extra_info)]

    functions = [puzzle_reward]
    for task in tasks:
        for key in ("acc", "format"):

            def metric(completions, data_source, reward_model, extra_info, _task=task, _key=key, **_):
                return [r[_key] if r["task"] == _task else None for r in scores(completions, data_source, reward_model, extra_info)]

            metric.__name__ = f"{task}_{key}"
            functions.append(metric)
    return functions


def _known(value) -> bool:
    """A logged value that means something: TRL logs None (or NaN) for a task with no row in the step."""
    return value is not None and not (isinstance(value, float) and value != value)


def step_line(step: int, logs: dict, tasks: list[str]) -> str:
    """One step's line: the reward and each task's accuracy, `-` for a task absent from the step.

    >>> step_line(3, {"reward": 0.5, "rewards/rotation_acc/mean": 0.25}, ["jigsaw", "rotation"])
    'step    3  reward 0.500  jigsaw acc -  rotation acc 0.250'
    """
    accuracy = "  ".join(
        f"{t} acc {logs[f'rewards/{t}_acc/mean']:.3f}" if _known(logs.get(f"rewards/{t}_acc/mean")) else f"{t} acc -" for t in tasks
    )
    return f"step {step:4d}  reward {logs['reward']:.3f}  {accuracy}"


# Settings a resumed run may change: how long it runs, how often it saves, where it logs.
RESUMABLE = ("max_steps", "total_epochs", "save_freq", "logger")


def run_identity(data_dir: str, model_path: str, cfg: LocalGRPOConfig, curriculum: CurriculumOptions | None) -> dict:
    """What must match for OUT/trl to be resumed rather than refused (ssl4rl.train.runs)."""
    from dataclasses import asdict

    from ssl4rl.train.runs import data_fingerprint

    model = str(Path(model_path).resolve()) if Path(model_path).exists() else model_path
    config = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE}
    return {"backend": "trl", "data": data_fingerprint(data_dir), "model": model, **config,
            "curriculum": asdict(curriculum) if curriculum is not None else None}  # fmt: skip


def train_trl(
    data_dir: str, model_path: str, out_dir: str, cfg: LocalGRPOConfig, print_steps: bool = True, curriculum: CurriculumOptions | None = None,
    resume_from: str | None = None,
) -> list[dict]:
    """Run GRPO; returns the log history (one dict per logged step).

    curriculum: serve the split through the adaptive curriculum (ssl4rl.curriculum.AdaptiveRows):
    the reward appends outcomes to OUT/curriculum.jsonl (started afresh) and each item is a row
    of its task at the task's current level; levels are logged as `curriculum/<task>` (0 = the
    easiest) and printed on each step's line.
    resume_from: a checkpoint-N folder of this run (`ssl4rl train` passes the newest): training
    continues from it, the curriculum log kept.
    """
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    if not Path(model_path).exists() and "/" not in model_path:
        raise UserError(f"{model_path}: no such model folder (give a local path or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct)")
    if cfg.batch_size % cfg.mini_batch_size:
        raise UserError(f"batch size {cfg.batch_size} must be a multiple of the mini-batch size {cfg.mini_batch_size}")
    text_only = is_text_model(model_path)
    train = load_split(data_dir, "train", text_only)
    tasks = sorted({s.removeprefix(DATA_SOURCE_PREFIX) for s in train.unique("data_source")})
    rows = log = None
    if curriculum is not None:
        log = Path(out_dir) / "curriculum.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        if resume_from is None:
            log.unlink(missing_ok=True)  # a new run starts its curriculum from the easiest level
        window = curriculum.window or default_window(cfg.batch_size * cfg.rollout_n, len(tasks))
        try:
            rows = AdaptiveRows(train, log, curriculum.low, curriculum.high, window)
        except ValueError as error:
            raise UserError(f"{data_dir}: {error}") from None
    # left padding, as TRL pads prompts itself: a right-padded processor output puts the image
    # token types of shorter rows off by the padding (M-RoPE then sees an image cut short)
    cuda = torch.cuda.is_available()
    processor = load_processor(model_path, padding_side="left")  # a text model's processing class is its tokenizer
    model = load_model(model_path, torch.bfloat16 if cuda else torch.float32)
    vision_ids = vision_token_ids(tokenizer_of(processor))  # never sampled: they crash the forward
    running: dict = {}  # the trainer, once made: the curriculum log's step is its next step

    def step_of() -> int | None:
        return running["trainer"].state.global_step + 1 if "trainer" in running else None

    rewards = make_reward_functions(tasks, cfg.format_weight, cfg.jigsaw_scoring, curriculum_log=str(log) if log else None, step_of=step_of, strict_format=cfg.strict_format)
    args = GRPOConfig(
        output_dir=out_dir,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant_with_warmup",  # verl's actor.optim defaults: a constant rate, AdamW decay 0.01, clip 1.0
        warmup_steps=cfg.lr_warmup_steps,
        weight_decay=0.01,
        max_grad_norm=1.0,
        beta=cfg.kl_loss_coef,
        num_generations=cfg.rollout_n,
        per_device_train_batch_size=cfg.mini_batch_size * cfg.rollout_n,
        steps_per_generation=cfg.batch_size // cfg.mini_batch_size,
        max_completion_length=cfg.max_response_length,
        temperature=cfg.temperature,
        num_train_epochs=cfg.total_epochs,
        max_steps=cfg.max_steps,
        save_steps=cfg.save_freq,
        logging_steps=1,
        seed=cfg.seed,
        bf16=cuda,
        use_cpu=not cuda,
        report_to=[] if cfg.logger == "none" else [cfg.logger],
        reward_weights=[1.0] + [0.0] * (len(rewards) - 1),
        generation_kwargs={"suppress_tokens": vision_ids} if vision_ids else None,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    class PrintReward(TrainerCallback):
        def on_log(self, _args, state, _control, logs=None, **__):
            if print_steps and logs and "reward" in logs:
                levels = ""
                if rows is not None:
                    levels = "  level " + " ".join(f"{t}={rows.index.levels[int(logs[f'curriculum/{t}'])]}" for t in rows.index.tasks)
                print(step_line(state.global_step, logs, tasks) + levels, flush=True)

    class DropUnknown(TrainerCallback):
        """First of the callbacks: a task with no row in the step has no accuracy (TRL logs None),
        so the key goes before TensorBoard's callback warns about it and drops it."""

        def on_log(self, _args, _state, _control, logs=None, **__):
            for key in [k for k, v in (logs or {}).items() if not _known(v)]:
                del logs[key]

    class Trainer(GRPOTrainer):
        def get_train_dataloader(self):
            if rows is None:
                return super().get_train_dataloader()
            # TRL accepts only a datasets.Dataset as train_dataset; its dataloader takes any map-style one.
            self.train_dataset = rows
            try:
                return super().get_train_dataloader()
            finally:
                self.train_dataset = train

        def log(self, logs, start_time=None):
            if rows is not None and self.model.training:
                levels = rows.levels()
                logs = {**logs, **{f"curriculum/{t}": float(rows.index.levels.index(levels[t])) for t in rows.index.tasks}}
            super().log(logs, start_time)

    trainer = Trainer(model=model, reward_funcs=rewards, args=args, train_dataset=train, processing_class=processor, callbacks=[PrintReward()])
    running["trainer"] = trainer
    for noisy in (PrinterCallback, ProgressCallback):  # our one line per step replaces raw log dicts
        trainer.remove_callback(noisy)
    trainer.callback_handler.callbacks.insert(0, DropUnknown())
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(Path(out_dir) / "final"))
    processor.save_pretrained(str(Path(out_dir) / "final"))
    return [{k: v for k, v in entry.items() if _known(v)} for entry in trainer.state.log_history if "reward" in entry]
