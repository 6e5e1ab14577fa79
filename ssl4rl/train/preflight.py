"""`ssl4rl check`: what would make a training run fail or waste its GPUs, found before it starts.

verl checks batch arithmetic, the dataloader and the GPU count only after Ray, the workers and
the model are up, and drops over-long prompts without a word; TRL has no prompt limit at all.
Everything here reads only the build folder (manifest and one parquet column) and the settings
the launch would use, so it runs in a second, before anything heavy. `ssl4rl train` runs it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.schema import DATA_SOURCE_PREFIX, MANIFEST, split_files
from ssl4rl.tasks import TASKS
from ssl4rl.train.verl_config import verl_settings


@dataclass
class Plan:
    """The run's shape, and what is wrong with it (errors) or worth a second look (warnings)."""

    train_rows: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{self.train_rows} train rows: {self.steps_per_epoch} steps per epoch, {self.total_steps} steps in all"]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def raise_errors(self) -> None:
        if self.errors:  # one `ssl4rl: error:` line each
            raise UserError("\nssl4rl: error: ".join(self.errors))


def _data_facts(data: Path, plan: Plan) -> dict:
    """Rows per split, the longest prompt and the tasks of a build folder."""
    import pyarrow.parquet as pq

    train = split_files(data, "train")
    if not train:
        plan.errors.append(f"{data}: no train split (train-*.parquet); build one with `ssl4rl build ... --out {data}`")
        return {}
    test = split_files(data, "test")
    plan.train_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in train)
    sources = set()
    for path in train + test:
        sources |= set(pq.read_table(path, columns=["data_source"]).column("data_source").to_pylist())
    unknown = sorted(s for s in sources if str(s).removeprefix(DATA_SOURCE_PREFIX) not in TASKS)
    if unknown:
        plan.errors.append(f"{data}: rows of data_source {', '.join(map(str, unknown))}, which the reward does not know (tasks: {', '.join(TASKS)})")
    try:
        manifest = json.loads((data / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    lengths = [s.get("max", 0) for s in (manifest.get("prompt_tokens") or {}).values()]
    if not lengths:
        plan.warnings.append(f"{data}: no prompt lengths in the manifest (an older build): rebuild to have them checked")
    return {"test_rows": sum(pq.ParquetFile(p).metadata.num_rows for p in test), "longest": max(lengths, default=0)}


def _exact_over(data: Path, model: str, limit: int, plan: Plan, facts: dict) -> str | None:
    """Text rows counted in the model's own tokens (ssl4rl.train.prompt_lengths): what is over
    `limit` ("3 of 102 train rows have more than ... tokens ..."), "" when none is, None when the
    build was not counted this way (rows with images, or a model whose processor does not load:
    then the manifest's count stands)."""
    from ssl4rl.train.prompt_lengths import split_lengths

    try:
        splits = split_lengths(data, model, limit)
    except (OSError, ValueError, ImportError, KeyError, TypeError) as error:
        why = (str(error).splitlines() or [type(error).__name__])[0]
        plan.warnings.append(f"{model}: its tokenizer did not load ({why[:100]}{'...' if len(why) > 100 else ''}): prompt lengths are the build's count only")
        return None
    over = [s for s in splits if s.over]
    if not over:  # rows with images besides: the manifest's count stands for them
        return "" if sum(s.rows for s in splits) == plan.train_rows + facts["test_rows"] else None
    rows = " and ".join(f"{s.over} of {s.rows} {s.split} rows" for s in over)
    return f"{rows} have more than {limit} tokens in {model}'s tokenizer (longest {max(s.longest for s in over)}; the build counted at most {facts['longest']})"


def _model_warning(model: str, plan: Plan, data: Path | None = None) -> None:
    path = Path(model).expanduser()
    if not path.is_dir() and not (model.count("/") == 1 and not model.startswith((".", "/", "~"))):
        plan.warnings.append(f"{model}: neither a local folder nor a hub id (org/name)")
    if data is not None and (path / "config.json").is_file() and _shows_images(data):
        from ssl4rl.models import is_text_model

        if is_text_model(path):
            plan.errors.append(f"{data}: its puzzles show images, and {model} is a text model: train a vision-language model, or build graph puzzles")


def _shows_images(data: Path) -> bool:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        return any(pc.max(pc.list_value_length(pq.read_table(p, columns=["images"]).column("images"))).as_py() for p in split_files(data, "train"))
    except Exception:  # noqa: BLE001 - not our rows: other checks report them
        return False


def _steps(plan: Plan, batch: int, epochs: int, cap: int | None) -> None:
    """verl: one step per batch (the last partial batch dropped), for the epochs, stopped early
    at trainer.total_training_steps (its loop ends with the epochs even when the cap is higher)."""
    plan.steps_per_epoch = plan.train_rows // batch if batch > 0 else 0  # the last partial batch is dropped
    plan.total_steps = plan.steps_per_epoch * epochs
    if cap is not None and cap > 0:
        plan.total_steps = min(plan.total_steps, cap) if plan.total_steps else 0


def _trl_steps(plan: Plan, batch: int, mini: int, epochs: int, max_steps: int) -> None:
    """TRL counts optimizer steps: each batch of prompts is generated once and split into
    batch / mini-batch updates (its steps_per_generation); --max-steps > 0 replaces the epochs
    and cycles the data (transformers' Trainer), so it is the count, not a cap."""
    updates = batch // mini if mini > 0 and batch % mini == 0 else 0
    plan.steps_per_epoch = (plan.train_rows // batch) * updates if batch > 0 else 0
    if not plan.steps_per_epoch:
        plan.total_steps = 0
    else:
        plan.total_steps = max_steps if max_steps > 0 else plan.steps_per_epoch * epochs


def _frequency_warnings(plan: Plan, **frequencies: int | None) -> None:
    for name, value in frequencies.items():
        if value and value > 0 and plan.total_steps and value > plan.total_steps:
            plan.warnings.append(f"{name}={value} is more than the run's {plan.total_steps} steps: it fires only at the last step")


# ---------------------------------------------------------------- verl
def _int(settings: dict, key: str, plan: Plan) -> int:
    value = settings.get(key)
    if isinstance(value, str) and value.startswith("${"):
        value = settings.get(value[2:-1])
    try:
        return int(value)
    except (TypeError, ValueError):
        plan.errors.append(f"{key}={value!r} is not a whole number")
        return 1


def check_verl_run(data_dir: str, command: list[str], model: str, device: str = "gpu", visible_gpus: int | None = None) -> Plan:
    """The launch's settings against the build and verl 0.9.1's batch rules."""
    plan = Plan()
    data = Path(data_dir)
    facts = _data_facts(data, plan)
    s = verl_settings(command)
    get = lambda key: _int(s, key, plan)  # noqa: E731
    batch, n = get("data.train_batch_size"), get("actor_rollout_ref.rollout.n")
    gpus, nodes = get("trainer.n_gpus_per_node"), get("trainer.nnodes")
    mini, micro = get("actor_rollout_ref.actor.ppo_mini_batch_size"), get("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu")
    world = max(1, gpus * nodes)
    if facts:
        if plan.train_rows < batch:
            plan.errors.append(
                f"{data}: {plan.train_rows} train rows, fewer than one batch (data.train_batch_size={batch}): verl would stop with "
                f"'Train dataloader is empty'; build more rows (--per-image, a larger source) or lower data.train_batch_size"
            )
        limit = get("data.max_prompt_length")
        over = _exact_over(data, model, limit, plan, facts)
        if over:
            plan.errors.append(
                f"{data}: {over}, over data.max_prompt_length={limit}: verl would drop them without a word; "
                f"rebuild with --processor {model} --max-prompt-tokens {limit} or raise data.max_prompt_length"
            )
        elif over is None and facts["longest"] > limit:
            plan.errors.append(
                f"{data}: its longest prompt has {facts['longest']} tokens, over data.max_prompt_length={limit}: verl would drop such "
                f"rows; rebuild with --max-prompt-tokens {limit} or raise data.max_prompt_length"
            )
        validation = s.get("data.val_files") or []
        if not facts["test_rows"] and any("train-" in Path(str(f)).name for f in ([validation] if isinstance(validation, str) else validation)):
            plan.warnings.append(f"{data}: no test split: validation runs on the training data")
    if device == "gpu" and nodes == 1 and visible_gpus == 0:
        plan.errors.append("no GPU is visible: run on a GPU machine, or debug on this one with --device cpu")
    elif device == "gpu" and nodes == 1 and visible_gpus is not None and gpus > visible_gpus:
        plan.errors.append(f"the run asks for {gpus} GPUs (trainer.n_gpus_per_node) and this machine has {visible_gpus}: pass --gpus {visible_gpus} (or --profile 1gpu)")
    if (batch * n) % world:
        plan.errors.append(f"data.train_batch_size x rollout.n = {batch} x {n} must divide over the {world} GPUs (trainer.n_gpus_per_node x nnodes)")
    if mini > batch or batch % mini:
        plan.errors.append(f"data.train_batch_size={batch} must be a multiple of actor.ppo_mini_batch_size={mini}")
    elif (mini * n) % world or (mini * n // world) % micro:
        plan.errors.append(
            f"each GPU's share of a mini-batch (ppo_mini_batch_size x n / GPUs = {mini} x {n} / {world}) must be a whole multiple "
            f"of actor.ppo_micro_batch_size_per_gpu={micro}"
        )
    per_rank = batch * n // world
    for key in ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu"):
        size = s.get(key)
        if size and per_rank % int(size):
            plan.errors.append(f"each GPU's {per_rank} samples per step (batch x n / GPUs) must be a whole multiple of {key}={size}")
    _steps(plan, batch, get("trainer.total_epochs"), s.get("trainer.total_training_steps"))
    _frequency_warnings(plan, **{"trainer.save_freq": s.get("trainer.save_freq"), "trainer.test_freq": s.get("trainer.test_freq")})
    _model_warning(model, plan, data)
    return plan


def visible_gpus() -> int | None:
    """CUDA devices this process sees; None when torch is not installed (nothing to check)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.device_count()


# ---------------------------------------------------------------- TRL
def check_trl_run(data_dir: str, cfg, model: str) -> Plan:
    """TRL's GRPO settings against the build; TRL has no prompt limit, so the model's context is it."""
    plan = Plan()
    data = Path(data_dir)
    facts = _data_facts(data, plan)
    if cfg.mini_batch_size < 1 or cfg.batch_size % cfg.mini_batch_size:
        plan.errors.append(f"--batch-size {cfg.batch_size} must be a multiple of --mini-batch-size {cfg.mini_batch_size}")
    if facts:
        if plan.train_rows < cfg.batch_size:
            plan.errors.append(f"{data}: {plan.train_rows} train rows, fewer than one batch (--batch-size {cfg.batch_size}): build more rows or lower --batch-size")
        context = _context_length(model)
        over = _exact_over(data, model, context - cfg.max_response_length, plan, facts) if context else None
        if over:
            plan.errors.append(
                f"{data}: {over}, and with --max-response-length {cfg.max_response_length} exceed the model's context of {context}: "
                f"rebuild with --processor {model} and a smaller --max-prompt-tokens, or lower --max-response-length"
            )
        elif over is None and context and facts["longest"] + cfg.max_response_length > context:
            plan.errors.append(
                f"{data}: its longest prompt ({facts['longest']} tokens) plus --max-response-length {cfg.max_response_length} exceeds the "
                f"model's context of {context}: rebuild with a smaller --max-prompt-tokens or lower --max-response-length"
            )
    _trl_steps(plan, cfg.batch_size, cfg.mini_batch_size, cfg.total_epochs, cfg.max_steps)
    _frequency_warnings(plan, **{"--save-freq": cfg.save_freq})
    _model_warning(model, plan, data)
    return plan


def _context_length(model: str) -> int | None:
    config = Path(model).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    return (data.get("text_config") or {}).get("max_position_embeddings") or data.get("max_position_embeddings")
