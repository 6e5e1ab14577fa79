"""The `ssl4rl` command: thin argparse sub-commands over the library."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, fields

from ssl4rl.budget import DEFAULT_MAX_PROMPT_TOKENS
from ssl4rl.errors import UserError
from ssl4rl.tasks import TASKS


# Task options keep their own names; these give their value a readable placeholder.
METAVARS = {
    "granularity": "DEGREES", "grid": "K", "gap": "FRACTION", "min_crop": "FRACTION", "max_crop": "FRACTION",
    "preset": "PRESET", "size": "PX", "candidates": "K", "hole": "FRACTION", "cross_image": "SHARE",
    "strength": "0..1", "mode": "MODE", "min_distance": "FRACTION", "separator": "PX", "patch": "FRACTION",
    "axis": "AXIS", "min_asymmetry": "LEVEL", "hops": "H", "max_nodes": "N", "text_chars": "CHARS", "distance": "DISTANCE",
    "negatives": "KIND", "pool": "POOL",
}  # fmt: skip
WORDS = ("default", "strong", "affine", "perspective", "random", "horizontal", "vertical", "any", "two", "mixed", "relation")


def option_help(task_class) -> dict[str, str]:
    """Each option's help: the comment beside its field in the task's source (one place to edit)."""
    import inspect
    import re

    try:
        source = inspect.getsource(task_class)
    except (OSError, TypeError):  # no source shipped: plain names
        return {}
    comments = {}
    for line in source.splitlines():
        match = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.+)", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def option_choices(task_class, name: str, default) -> list | None:
    """The values the task accepts, when they are a short list that does not depend on the other
    options (found by trying them with the defaults and with every difficulty preset)."""
    if isinstance(default, (bool, float)):
        return None
    candidates = WORDS if isinstance(default, str) else range(0, 361)
    found = []
    for preset in [{}, *getattr(task_class, "DIFFICULTY", {}).values()]:
        others = {k: v for k, v in preset.items() if k != name}
        valid = []
        for value in candidates:
            try:
                task_class(**others, **{name: value})
            except (ValueError, TypeError):
                continue
            valid.append(value)
        found.append(valid)
    valid = found[0]
    if any(other != valid for other in found) or not 0 < len(valid) <= 30 or (isinstance(default, int) and 360 in valid and 359 in valid):
        return None  # depends on other options, or an open range (e.g. size >= 28)
    return valid


def _listed(choices: list) -> str:
    """'2..6' for a run of integers, else the values."""
    if all(isinstance(c, int) for c in choices) and len(choices) > 2 and choices == list(range(choices[0], choices[-1] + 1)):
        return f"{choices[0]}..{choices[-1]}"
    return ", ".join(map(str, choices))


def _add_task_options(parser, task_class) -> None:
    """One flag per field of the task's dataclass: --granularity DEGREES, --no-square, ..."""
    comments = option_help(task_class)
    for option in fields(task_class):
        flag = "--" + option.name.replace("_", "-")
        default = option.default if option.default is not MISSING else None
        text = comments.get(option.name, option.name.replace("_", " "))
        # Unset flags stay None, so a --difficulty preset is only overridden by what the user typed.
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f"task_{option.name}", action=argparse.BooleanOptionalAction, default=None, help=f"{text} (default: {default})")
            continue
        choices = option_choices(task_class, option.name, default)
        listed = f"; one of {_listed(choices)}" if choices else ""
        # Listed, not enforced here: the task checks its options together (one-line error).
        parser.add_argument(
            flag, dest=f"task_{option.name}", type=type(default), default=None,
            metavar=METAVARS.get(option.name, option.name.upper()), help=f"{text} (default: {default}{listed})",
        )  # fmt: skip


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown for every option that has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default == argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line like every other user error: `ssl4rl: error: ...`, exit 2."""

    def error(self, message):
        self.exit(2, f"ssl4rl: error: {message} (see `{self.prog} --help`)\n")


def _command(commands, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command parser without prefix matching (`--gpu` is not `--gpus`)."""
    return commands.add_parser(name, allow_abbrev=False, formatter_class=_Formatter, **kwargs)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """The options of `train`, shared by `check` so it checks exactly what train would launch."""
    parser.add_argument("--backend", choices=["verl", "trl"], default="verl", help="verl: Ray + FSDP + vLLM/SGLang; trl: one machine, CPU or one GPU")
    parser.add_argument("--model", help="hub id or local path (default: Qwen/Qwen2.5-VL-3B-Instruct; Qwen/Qwen2.5-3B-Instruct with --profile graph; --device cpu needs one)")
    parser.add_argument("--out", default="outputs", help="checkpoints and logs")
    parser.add_argument("--overwrite", action="store_true", help="start afresh: empty the run's folder (OUT/trl or OUT/verl/EXPERIMENT) even if it holds another run")
    parser.add_argument("--gpus", type=int, help="verl: GPUs per node, or FSDP ranks with --device cpu (default: 8; 1 with --profile 1gpu or cpu)")
    parser.add_argument("--nodes", type=int, default=1, help="verl: nodes")
    parser.add_argument("--profile", choices=["paper", "graph", "1gpu", "cpu"], help="verl: settings preset (default: paper; cpu with --device cpu; graph: a text model, 2048-token prompts)")
    parser.add_argument("--rollout", choices=["vllm", "sglang", "hf"], help="verl: rollout engine (default: the config's vllm; hf = Hugging Face generate, no vLLM needed)")
    parser.add_argument("--device", choices=["gpu", "cpu"], help="verl: cpu runs the real trainer on the CPU with the hf rollout, for debugging (default: gpu; cpu with --profile cpu)")
    parser.add_argument("--filter-groups", action="store_true", help="verl: drop prompts whose rollouts all got the same accuracy")
    parser.add_argument("--format-weight", type=float, default=0.0, help="reward = (1-w)*acc + w*format (default: 0, as the paper)")
    parser.add_argument("--strict-format", action="store_true", help="reward 0 for a response that is not exactly <think>...</think> <answer>...</answer> (a cut-off or rambling one included), whatever its answer")
    parser.add_argument("--jigsaw-scoring", choices=["permutation", "parity"], default="permutation", help="permutation: partial credit only for a valid permutation; parity: the reference's parser and per-position credit")
    parser.add_argument(
        "--curriculum", choices=["off", "adaptive"], default="off",
        help="adaptive: keep each task's accuracy inside --band by serving easier/harder levels (needs a build with --difficulty easy,medium,hard)",
    )  # fmt: skip
    parser.add_argument("--band", default="0.2,0.8", help="adaptive curriculum: LOW,HIGH accuracy band (default: %(default)s)")
    parser.add_argument("--window", type=int, help="adaptive curriculum: outcomes per decision (default: one step's rollouts of a task)")
    local = parser.add_argument_group("trl backend (names follow verl's)")
    for option in fields(_local_config()):
        if option.name in ("format_weight", "strict_format", "jigsaw_scoring"):
            continue
        local.add_argument("--" + option.name.replace("_", "-"), dest=f"local_{option.name}", type=type(option.default), default=option.default, help=f"trl: {option.name.replace('_', ' ')} (default: {option.default})")
    parser.add_argument("overrides", nargs="*", help="verl: extra Hydra overrides, e.g. trainer.total_epochs=5")


def build_parser() -> argparse.ArgumentParser:
    from ssl4rl import __version__
    from ssl4rl.eval.extract import MATCHERS
    from ssl4rl.eval.graph import GRAPH_EVAL_TASKS
    from ssl4rl.eval.questions import BENCHMARKS
    from ssl4rl.eval.ranking import PROTOCOLS

    parser = _Parser(prog="ssl4rl", description="Self-supervised visual puzzles as verifiable RL rewards for VLMs.", allow_abbrev=False, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"ssl4rl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = _command(commands, "build", help="build a puzzle dataset (verl RLHF parquet)", description="Build a puzzle dataset: TASK is mix or one puzzle; `ssl4rl build TASK --help` lists its options.")
    tasks = build.add_subparsers(dest="task", required=True, metavar="TASK", help=f"mix or one of: {', '.join(TASKS)}")
    for name, task_class in [("mix", None), *TASKS.items()]:
        summary = "several tasks in one interleaved dataset" if task_class is None else (task_class.__doc__ or "").strip().splitlines()[0]
        task_parser = _command(tasks, name, help=summary, description=summary)
        task_parser.add_argument("--source", required=True, help="samples, a preset name (see `ssl4rl sources`), a path (TSV file, parquet/HF folder, image folder, .tar) or a quoted glob ('DIR/*.tar' WebDataset shards, 'DIR/*.parquet'), also as a pyarrow.fs URI ('s3://bucket/dir/*.tar'), streamed; graph tasks: a bundled graph, a graph preset or a graph folder")
        task_parser.add_argument("--data", metavar="PATH", help="with a preset: the downloaded files (TSV file or folder)")
        task_parser.add_argument("--out", required=True, metavar="DIR", help="output folder for train-*.parquet, test-*.parquet, manifest.json (or a pyarrow.fs URI: s3://bucket/dir)")
        task_parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="worker processes (default: %(default)s; output is identical for any number)")
        task_parser.add_argument("--engine", choices=["local", "ray"], default="local", help="local: a process pool on this machine; ray: tasks on a Ray cluster (same output bytes; docs/scale.md)")
        task_parser.add_argument("--ray-address", metavar="ADDRESS", help="with --engine ray: the cluster to join (auto: the one `ray start` runs here; default: a private Ray on this machine with --workers CPUs)")
        task_parser.add_argument("--seed", type=int, default=0, help="global seed: every random choice derives from (seed, task, sample id)")
        task_parser.add_argument("--limit", type=int, metavar="N", help="stop after this many rows (train + test) (default: the whole source)")
        task_parser.add_argument("--test-fraction", type=float, default=0.1, metavar="F", help="share of images (by content hash) in the test split")
        task_parser.add_argument("--image-format", choices=["png", "jpeg"], default="png", help="generated images: lossless png or jpeg")
        task_parser.add_argument("--per-image", type=int, default=1, metavar="R", help="puzzles made from each source image")
        task_parser.add_argument("--shard-rows", type=int, default=1000, metavar="N", help="rows per parquet shard")
        task_parser.add_argument("--image-column", action="append", metavar="COL", help="image column(s) of a TSV/parquet source, repeatable (default: detected)")
        task_parser.add_argument("--prompt", metavar="FILE", help="a prompt template file (default: configs/prompts/<task>.txt), or a folder of <task>.txt files (a mix needs one); the shared answer-format line is appended unless the file shows <answer> itself")
        task_parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")
        task_parser.add_argument("--quiet", action="store_true", help="no progress bar")
        task_parser.add_argument("--difficulty", metavar="LEVELS", help="easy, medium, hard or several comma-separated, spread over the images (default: the task's own defaults)")
        task_parser.add_argument("--curriculum", choices=["mixed", "static"], default="mixed", help="with several levels: a random level per image (mixed), or easy first (static)")
        task_parser.add_argument("--max-prompt-tokens", type=int, default=DEFAULT_MAX_PROMPT_TOKENS, metavar="N", help="every row's prompt (text + image tokens) fits N tokens: sources are downscaled just enough (0: no cap); match the trainer's data.max_prompt_length")
        task_parser.add_argument("--patch-size", type=int, default=28, metavar="P", help="pixels per visual token side: 28 for Qwen2-VL/Qwen2.5-VL, 32 for Qwen3-VL")
        task_parser.add_argument("--processor", metavar="PATH", help="a model/processor folder (offline): its patching and its tokenizer for exact text tokens (default: an upper bound)")
        task_parser.add_argument("--max-megapixels", type=float, default=50, metavar="MP", help="skip larger images, from their header, before decoding")
        task_parser.add_argument("--max-file-mb", type=float, default=256, metavar="MB", help="skip larger files, from their size, before reading them")
        if task_class is None:
            task_parser.add_argument(
                "--tasks", required=True, metavar="TASK:WEIGHT[:OPTION=VALUE...],...",
                help="tasks, their weights and options, e.g. rotation:2,position:1,jigsaw:1:grid=3 (options: `ssl4rl build TASK --help`)",
            )  # fmt: skip
        else:
            _add_task_options(task_parser.add_argument_group(f"{name} options"), task_class)

    show = _command(commands, "show", help="render a contact sheet of built puzzles with their answers")
    show.add_argument("folder", help="a build folder")
    show.add_argument("--n", type=int, default=16, help="puzzles to show (from distinct source images)")
    show.add_argument("--split", choices=["train", "test"], default="test", help="which split to show (test falls back to train when there is none)")
    show.add_argument("--out", default="sheet.png", metavar="PNG", help="output image")

    audit = _command(commands, "audit", help="probe a build for shortcuts: rules that find the answer without the visual skill")
    audit.add_argument("folder", help="a build folder")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")

    paper = _command(commands, "paper", help="build the SSL4RL paper's four puzzle sets from one benchmark's files")
    paper.add_argument("preset", help="a preset name, e.g. mmbench or seedbench (see `ssl4rl sources`)")
    paper.add_argument("--data", required=True, metavar="PATH", help="the downloaded benchmark files (TSV file or folder)")
    paper.add_argument("--out", default="datasets", metavar="DIR", help="root folder; each task goes to OUT/PRESET/TASK")
    paper.add_argument("--tasks", default="rotation,jigsaw,position,contrastive", help="comma-separated subset")
    paper.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    paper.add_argument("--seed", type=int, default=0, help="global seed")

    _command(commands, "sources", help="list the named image sources and where to download them")

    train = _command(commands, "train", help="GRPO on a puzzle set: verl (GPU clusters) or trl (one machine)")
    train.add_argument("--data", required=True, help="a build folder (train-*.parquet, test-*.parquet)")
    _add_train_options(train)
    train.add_argument("--dry-run", action="store_true", help="verl: print the command instead of running it (no checks: see `ssl4rl check`)")

    check = _command(
        commands, "check", help="preflight: what would make a training run fail, checked in a second before it starts",
        description="Check a build against the settings `ssl4rl train` would launch with (same options and overrides): "
        "errors exit 2, one line each; warnings are printed; the run's steps per epoch and total steps are shown.",
    )  # fmt: skip
    check.add_argument("data", help="a build folder (train-*.parquet, test-*.parquet)")
    _add_train_options(check)

    tiny = _command(commands, "tiny-model", help="make the tiny offline Qwen2.5-VL (or, with --text, Qwen2) used by tests and the demo")
    tiny.add_argument("out", help="folder to write the model, tokenizer and processor to")
    tiny.add_argument("--warm-start", metavar="DATA", help="teach it the answer format on this build folder (a few minutes on CPU)")
    tiny.add_argument("--seed", type=int, default=0, help="initialisation and warm-start seed")
    tiny.add_argument("--text", action="store_true", help="a text-only Qwen2 (AutoModelForCausalLM), for graph puzzles")
    tiny.add_argument("--size", choices=["tiny", "small"], default="tiny", help="tiny: ~0.2 M parameters (tests); small: ~1 M, 168-px pictures (the learning benchmark) (default: %(default)s)")
    tiny.add_argument("--pixels", type=int, metavar="PX", help="pictures are shrunk to at most PX x PX (a multiple of 28, at least 56; default: 112 tiny, 168 small): 56 gives 4 tokens a picture, the fastest to learn from")
    tiny.add_argument("--warm-start-steps", type=int, default=80, metavar="N", help="format warm-start steps (default: %(default)s)")
    tiny.add_argument("--warm-start-grey", action="store_true", help="warm-start on grey canvases in place of the pictures (keeps more of the model's view of them; needs more steps)")
    tiny.add_argument("--overwrite", action="store_true", help="replace what OUT holds (a non-empty OUT is refused otherwise)")

    merge = _command(commands, "merge", help="verl FSDP checkpoint -> Hugging Face model (LoRA fused; any model, any number of ranks)")
    merge.add_argument("checkpoint", help="global_step_N/actor, global_step_N, or the run folder (newest step); TRL runs save Hugging Face models already")
    merge.add_argument("out", help="folder for the Hugging Face model (written whole or not at all)")
    merge.add_argument("--overwrite", action="store_true", help="replace a model already in OUT")

    evaluate = _command(commands, "eval", help="multiple-choice benchmark or puzzle accuracy of a model")
    evaluate.add_argument("--model", required=True, help="local model folder or hub id")
    target = evaluate.add_mutually_exclusive_group(required=True)
    target.add_argument("--data", metavar="FILE", help="benchmark file: a VLMEvalKit TSV or a Hugging Face parquet file/folder")
    target.add_argument("--puzzles", metavar="DIR", help="a build folder: score its test split with the training verifiers")
    target.add_argument("--graph-task", choices=GRAPH_EVAL_TASKS,
                        help="graph evaluation on --source: node labels of the test split, held-out edges / KG triples, or KG triples ranked (filtered MRR, Hits@1/3/10)")
    evaluate.add_argument("--source", metavar="GRAPH", help="--graph-task: a bundled graph (see `ssl4rl sources`), a graph preset with --source-data, or a graph folder")
    evaluate.add_argument("--source-data", metavar="PATH", help="--graph-task with a graph preset: its downloaded folder")
    evaluate.add_argument("--ranking", choices=list(PROTOCOLS),
                          help="--graph-task link-ranking: likelihood scores every entity's name as the answer (hf backend, text model; the default there), list ranks the names the model lists (any backend; the default elsewhere)")
    evaluate.add_argument("--test-fraction", type=float, default=0.1, metavar="F", help="--graph-task node-classification: the builds' --test-fraction; its test nodes are asked")
    evaluate.add_argument("--bench", choices=[*BENCHMARKS, "caparena"], help="the benchmark --data holds (mmbench turns on circular scoring; caparena: captions judged in pairs, docs/captioning.md)")
    evaluate.add_argument("--heldout", nargs="+", metavar="PUZZLE_DIR", help="also score only the questions none of whose images (graph: nodes) are in these builds' train splits")
    evaluate.add_argument("--matcher", choices=MATCHERS, default="ssl4rl", help="ssl4rl: VLMEvalKit's rules on the <answer> block, refusals never matched; vlmevalkit: its exact matcher on the whole response")
    evaluate.add_argument("--out", required=True, metavar="DIR", help="folder for predictions.jsonl, summary.json, report.md")
    evaluate.add_argument("--backend", choices=["auto", "hf", "vllm"], default="auto", help="auto: vLLM when installed with a GPU, else Hugging Face")
    evaluate.add_argument("--batch-size", type=int, default=8, help="prompts per generate call")
    evaluate.add_argument("--limit", type=int, metavar="N", help="only the first N questions (default: all)")
    evaluate.add_argument("--max-new-tokens", type=int, default=1024, help="generation budget per answer")
    evaluate.add_argument("--min-pixels", type=int, metavar="P", help="image processor's min_pixels (default: the model's)")
    evaluate.add_argument("--max-pixels", type=int, metavar="P", help="image processor's max_pixels (default: the model's)")
    evaluate.add_argument("--circular", action=argparse.BooleanOptionalAction, default=None, help="MMBench circular evaluation (default: on for mmbench)")
    evaluate.add_argument("--prompt", metavar="FILE", help="a template file (default: configs/prompts/mcq.txt)")
    evaluate.add_argument("--overwrite", action="store_true", help="start afresh in --out even if it holds predictions of another model or other questions")
    evaluate.add_argument("--name", help="the model's name in reports (default: the model folder, with its parent for names like final)")
    caparena = evaluate.add_argument_group("--bench caparena (--data: caparena_auto_600.json or its folder; docs/captioning.md)")
    caparena.add_argument("--judge", "--judge-url", dest="judge", metavar="URL|DIR", help="an OpenAI-compatible server (http://HOST:PORT/v1, key from $OPENAI_API_KEY) or a local model folder")
    caparena.add_argument("--judge-model", metavar="NAME", help="the model name the judge server serves (e.g. gpt-4o-2024-08-06, CapArena's judge)")
    caparena.add_argument("--judge-orders", choices=["both", "one"], default="both", help="both: judge each battle with the model's caption first and second; one: CapArena's single random order (half the cost)")
    caparena.add_argument("--judge-timeout", type=float, default=120.0, metavar="S", help="seconds to wait for the judge server's reply")
    caparena.add_argument("--judge-retries", type=int, default=4, metavar="N", help="retries of a timed-out or failing (429, 5xx) judge request, then the battle is recorded as failed")
    caparena.add_argument("--judge-backoff", type=float, default=2.0, metavar="S", help="wait before the first retry, doubled before each next")
    caparena.add_argument("--judge-max-tokens", type=int, default=1500, metavar="N", help="the judge's reply budget (CapArena: 1500)")
    caparena.add_argument("--images", metavar="DIR", help="the release's images (default: all_images/ beside caparena_auto_600.json)")

    report = _command(commands, "report", help="compare eval folders: a table and a bar chart per category")
    report.add_argument("folders", nargs="+", metavar="EVAL_DIR", help="folders written by `ssl4rl eval --out`")
    report.add_argument("--out", default="report.png", metavar="PNG", help="the chart")

    demo = _command(commands, "demo", help="the whole loop on CPU in a few minutes: build, show, tiny model, GRPO, held-out accuracy before and after")
    demo.add_argument("--out", default="outputs/demo", metavar="DIR", help="folder for the data, model, runs and pictures")
    demo.add_argument("--steps", type=int, default=40, help="GRPO steps (default: %(default)s)")
    return parser


def parse_tasks(text: str) -> tuple[dict[str, float], dict[str, dict]]:
    """'rotation:2,jigsaw:1:grid=3:gap=0.1,position' -> weights and each task's options.

    >>> parse_tasks("rotation:2,jigsaw:1:grid=3:gap=0.1,position")
    ({'rotation': 2.0, 'jigsaw': 1.0, 'position': 1.0}, {'jigsaw': {'grid': 3, 'gap': 0.1}})
    """
    weights, options = {}, {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, *rest = [piece.strip() for piece in item.split(":")]
        if name not in TASKS:
            raise UserError(f"--tasks: unknown task '{name}' (tasks: {', '.join(TASKS)})")
        weight = rest.pop(0) if rest and "=" not in rest[0] else ""
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"--tasks: bad weight in {item!r} (use task:number[:option=value...])") from None
        if rest:
            options[name] = dict(_task_option(name, setting, item) for setting in rest)
    return weights, options


def _task_option(task: str, setting: str, item: str) -> tuple[str, object]:
    """'grid=3' -> ('grid', 3), typed like the task's option."""
    key, _, value = setting.partition("=")
    key = key.strip().replace("-", "_")
    known = {option.name: option.default for option in fields(TASKS[task])}
    if key not in known or not value:
        raise UserError(f"--tasks: bad option {setting!r} in {item!r} ({task} options: {', '.join(known)})")
    default = known[key]
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return key, value.lower() in ("true", "1", "yes")
        return key, type(default)(value)
    except ValueError:
        raise UserError(f"--tasks: {key} of {task} takes a {type(default).__name__} (got {value!r})") from None


class _NoPandas:
    """An import hook under which `import pandas` fails."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name=name)
        return None


def _pyarrow_without_pandas() -> None:
    """pyarrow imports pandas (about 0.2 s) the first time it makes an array, only to ask whether
    its input is a DataFrame; a build never passes one. Tell it once that pandas is absent: in
    this process only, which ends with the build."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    hook = _NoPandas()
    sys.meta_path.insert(0, hook)  # pyarrow now records "no pandas" for this process
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(hook)


def _run_build(args) -> None:
    from ssl4rl.build import BuildConfig, build
    from ssl4rl.uri import is_uri, shown

    _pyarrow_without_pandas()

    if args.workers < 1 or args.per_image < 1 or args.shard_rows < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--workers, --per-image, --shard-rows and --limit must be positive")
    if not args.max_megapixels > 0 or not args.max_file_mb > 0:
        raise UserError("--max-megapixels and --max-file-mb must be positive")
    options = {k[len("task_"):]: v for k, v in vars(args).items() if k.startswith("task_") and v is not None}
    mix = parse_tasks(args.tasks) if args.task == "mix" else None
    cfg = BuildConfig(
        task=args.task, source=args.source, out=args.out, options=options, data=args.data,
        image_columns=args.image_column, seed=args.seed, limit=args.limit, test_fraction=args.test_fraction,
        image_format=args.image_format, per_image=args.per_image, shard_rows=args.shard_rows, prompt_file=args.prompt,
        tasks=mix[0] if mix else None, task_options=mix[1] if mix else None,
        difficulty=[level.strip() for level in args.difficulty.split(",") if level.strip()] if args.difficulty else None,
        curriculum=args.curriculum, max_prompt_tokens=args.max_prompt_tokens, patch_size=args.patch_size, processor=args.processor,
        max_pixels=int(args.max_megapixels * 1e6), max_file_bytes=int(args.max_file_mb * 2**20),
    )  # fmt: skip
    if args.ray_address and args.engine != "ray":
        raise UserError("--ray-address needs --engine ray")
    manifest = build(cfg, workers=args.workers, overwrite=args.overwrite, progress_bar=not args.quiet, engine=args.engine, ray_address=args.ray_address)
    rows = manifest["rows"]
    skipped = ", ".join(f"{k} {v}" for k, v in manifest["skipped"].items()) or "none"
    longest = max((stats.get("max", 0) for stats in manifest["prompt_tokens"].values()), default=0)
    downscaled = sum(stats["downscaled_images"] for stats in manifest["prompt_tokens"].values())
    print(f"{shown(args.out) if is_uri(args.out) else args.out}: {rows['train']} train + {rows['test']} test rows of '{manifest['task']}'; skipped: {skipped}; "
          f"longest prompt {longest} tokens, {downscaled} images downscaled to fit")  # fmt: skip
    if not rows["test"] and args.test_fraction > 0:
        from ssl4rl.eval.runner import no_test_reason

        print(f"note: no test split ({no_test_reason(args.out)})")


def _run_show(args) -> None:
    from ssl4rl.show import contact_sheet

    print(contact_sheet(args.folder, args.out, args.n, args.split))


def _run_audit(args) -> int:
    """Exit status 1 when a probe is flagged, so CI can fail on a shortcut."""
    import json

    from ssl4rl.audit import audit, format_report

    report = audit(args.folder)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 1 if report["flagged"] else 0


def _run_paper(args) -> None:
    from ssl4rl.paper import PAPER_TASKS, build_paper_datasets
    from ssl4rl.sources import PRESETS

    if args.preset not in PRESETS:
        raise UserError(f"unknown preset '{args.preset}' (presets: {', '.join(PRESETS)})")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in PAPER_TASKS]
    if unknown:
        raise UserError(f"unknown paper task(s) {', '.join(unknown)} (tasks: {', '.join(PAPER_TASKS)})")
    build_paper_datasets(args.preset, args.data, args.out, args.workers, tasks, seed=args.seed)


def _local_config():
    from ssl4rl.train.trl_grpo import LocalGRPOConfig

    return LocalGRPOConfig


def _curriculum(args):
    from ssl4rl.curriculum import CurriculumOptions

    if args.curriculum == "off":
        return None
    try:
        low, high = CurriculumOptions.parse_band(args.band)
        return CurriculumOptions(low, high, args.window)
    except ValueError as error:
        raise UserError(str(error)) from None


def _resolve_profile(args) -> None:
    """Defaults that follow the profile instead of contradicting it: the cpu profile runs on the
    CPU (the hf rollout), the graph profile trains a text model; a CPU run names its (small) model."""
    if args.backend == "verl" and args.profile == "cpu":
        if args.device == "gpu":
            raise UserError("--profile cpu runs verl on the CPU: drop --device gpu or choose another --profile")
        args.device = "cpu"
    args.device = args.device or "gpu"
    if args.model is None:
        if args.backend == "verl" and args.device == "cpu":
            raise UserError("--device cpu needs --model: a small local model, e.g. `ssl4rl tiny-model outputs/tiny` (a 3B model does not train on a CPU)")
        args.model = "Qwen/Qwen2.5-3B-Instruct" if args.backend == "verl" and args.profile == "graph" else "Qwen/Qwen2.5-VL-3B-Instruct"


def _run_train(args, check_only: bool = False) -> None:
    """Compose the run, check it (ssl4rl.train.preflight), then launch it unless check_only."""
    from ssl4rl.train.preflight import check_trl_run, check_verl_run, visible_gpus

    _resolve_profile(args)
    reward_kwargs = {"format_weight": args.format_weight, "jigsaw_scoring": args.jigsaw_scoring, **({"strict_format": True} if args.strict_format else {})}
    curriculum = _curriculum(args)
    if args.backend == "verl":
        from ssl4rl.train.verl_launch import DEFAULT_GPUS, launch, preflight, verl_command, verl_env

        profile = args.profile or ("cpu" if args.device == "cpu" else "paper")
        gpus = args.gpus or DEFAULT_GPUS[profile]
        rollout = "hf" if args.device == "cpu" and args.rollout is None else args.rollout
        command = verl_command(
            args.data, args.model, f"{args.out}/verl", gpus, args.nodes, profile,
            filter_groups=args.filter_groups, reward_kwargs=reward_kwargs, overrides=args.overrides, curriculum=curriculum,
            rollout=rollout, device=args.device,
        )  # fmt: skip
        env = verl_env(command, args.device)
        if getattr(args, "dry_run", False):
            launch(command, dry_run=True, env=env)
            return
        plan = check_verl_run(args.data, command, args.model, args.device, visible_gpus() if args.device == "gpu" else None)
        plan.raise_errors()
        preflight(args.model, rollout, args.device)
        print(plan.report())
        if check_only:
            return
        from ssl4rl.train.runs import claim, newest_step
        from ssl4rl.train.verl_launch import run_dir, run_identity

        run = run_dir(command)
        resumed = claim(run, run_identity(command, args.data, args.model), args.overwrite, "verl")
        step, _ = newest_step(run, "global_step_")
        if resumed and step and step >= plan.total_steps:
            print(f"{run}: this run finished at step {step} of {plan.total_steps}; nothing to launch "
                  "(raise trainer.total_training_steps to continue it, or --overwrite to start again)")  # fmt: skip
            return
        code = launch(command, env=env)
        if code:
            raise UserError(f"verl exited with status {code}")
        return
    from ssl4rl.train.trl_grpo import train_trl

    if args.overrides:
        raise UserError(f"Hydra overrides are for --backend verl (got {' '.join(args.overrides)})")
    options = {k[len("local_"):]: v for k, v in vars(args).items() if k.startswith("local_")}
    cfg = _local_config()(**options, **reward_kwargs)
    plan = check_trl_run(args.data, cfg, args.model)
    plan.raise_errors()
    print(plan.report())
    if check_only:
        return
    from ssl4rl.train.runs import claim, newest_step
    from ssl4rl.train.trl_grpo import run_identity

    out = f"{args.out}/trl"
    resumed = claim(out, run_identity(args.data, args.model, cfg, curriculum), args.overwrite, "TRL")
    step, checkpoint = newest_step(out, "checkpoint-") if resumed else (0, None)
    if step and step >= plan.total_steps:
        print(f"{out}: this run finished at step {step} of {plan.total_steps}; nothing to train (raise --max-steps to continue it, or --overwrite to start again)")
        return
    if checkpoint:
        print(f"resuming {out} from {checkpoint.name}")
    train_trl(args.data, args.model, out, cfg, curriculum=curriculum, resume_from=str(checkpoint) if checkpoint else None)


def _run_check(args) -> None:
    _run_train(args, check_only=True)


def _run_tiny_model(args) -> None:
    from ssl4rl.tiny_lm import make_tiny_qwen2
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start

    import shutil
    from pathlib import Path

    if args.text and (args.size != "tiny" or args.pixels):
        raise UserError("--size and --pixels are for the vision-language model (the text model sees no pictures)")
    if args.pixels is not None and (args.pixels < 56 or args.pixels % 28):
        raise UserError(f"--pixels {args.pixels}: give a multiple of 28 from 56 up (a visual token covers 28 x 28 pixels)")
    target = Path(args.out)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not args.overwrite:
            raise UserError(f"{target} is not empty (a model?); pass --overwrite to replace it or choose another folder")
        shutil.rmtree(target)
    out = make_tiny_qwen2(args.out, seed=args.seed) if args.text else make_tiny_qwen2_5_vl(args.out, seed=args.seed, size=args.size, max_pixels=args.pixels * args.pixels if args.pixels else None)
    if args.warm_start:
        losses = warm_start(out, args.warm_start, steps=args.warm_start_steps, seed=args.seed, grey=args.warm_start_grey)
        print(f"format warm-start loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print(out)


def _run_merge(args) -> None:
    from ssl4rl.merge import merge

    merge(args.checkpoint, args.out, overwrite=args.overwrite)


def _run_eval(args) -> None:
    from pathlib import Path

    from ssl4rl.eval.backends import make_backend
    from ssl4rl.eval.heldout import train_image_hashes
    from ssl4rl.eval.runner import benchmark_items, model_fingerprint, puzzle_items, run

    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--batch-size and --limit must be positive")
    if args.bench == "caparena" or args.judge or args.judge_model or args.images:
        return _run_caparena(args)
    if args.heldout and args.puzzles:
        raise UserError("--heldout is for benchmarks (--data); a build's test split is held out by construction")
    if args.graph_task and not args.source:
        raise UserError("--graph-task needs --source (a bundled graph, a graph preset with --source-data, or a graph folder)")
    if args.source and not args.graph_task:
        raise UserError("--source is for --graph-task")
    if args.ranking and args.graph_task != "link-ranking":
        raise UserError("--ranking is for --graph-task link-ranking")
    if args.puzzles:
        items = puzzle_items(args.puzzles, args.limit)
    elif args.graph_task:
        from ssl4rl.eval.graph import graph_items

        from ssl4rl.eval.heldout import train_graph_pairs

        hashes = train_image_hashes(args.heldout) if args.heldout else None
        pairs = train_graph_pairs(args.heldout) if args.heldout and args.graph_task != "node-classification" else None
        ranking = _ranking_protocol(args) if args.graph_task == "link-ranking" else "list"
        items = graph_items(args.graph_task, args.source, args.source_data, args.limit, args.test_fraction, hashes, train_pairs=pairs, ranking=ranking)
    else:
        hashes = train_image_hashes(args.heldout) if args.heldout else None
        items = benchmark_items(args.data, args.limit, args.prompt, args.matcher, hashes)
    circular = args.circular if args.circular is not None else "mmbench" in (args.bench or args.data or "").lower()
    backend = make_backend(args.backend, args.model, max_new_tokens=args.max_new_tokens, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    name = args.name or run_name(args.model)
    identity = {  # the questions' fingerprint is added by run(); paths only inform
        "model": model_fingerprint(args.model),
        "model_path": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
        "data_path": str(Path(args.puzzles or args.data).resolve()) if not args.graph_task else f"{args.graph_task}:{args.source}:{args.source_data}",
        "max_new_tokens": args.max_new_tokens, "min_pixels": args.min_pixels, "max_pixels": args.max_pixels,
    }  # fmt: skip
    summary = run(items, backend, args.out, args.batch_size, puzzles=bool(args.puzzles), circular=circular, label=name, identity=identity, overwrite=args.overwrite)
    extra = f", circular {100 * summary['circular']['accuracy']:.2f}" if "circular" in summary else ""
    if "heldout" in summary:
        held = summary["heldout"]
        extra += f"; held out {100 * held['accuracy']:.2f} on {held['questions']} ({held['excluded']} seen in training)"
    if "ranking" in summary:
        extra += "; " + ", ".join(f"{k} {v:.4f}" for k, v in summary["ranking"].items() if k not in ("questions", "protocol"))
        extra += f" ({summary['ranking'].get('protocol')} ranking)"
    print(f"{name}: accuracy {100 * summary['accuracy']:.2f} on {summary['questions']} questions{extra} -> {args.out}/report.md")


def _ranking_protocol(args) -> str:
    """link-ranking: the standard likelihood protocol where the backend can score text, else the list."""
    from ssl4rl.eval.backends import resolve_backend
    from ssl4rl.models import is_text_model

    scores = resolve_backend(args.backend) == "hf" and is_text_model(args.model)
    if args.ranking == "likelihood" and not scores:
        raise UserError(f"--ranking likelihood needs the hf backend and a text model ({args.model} with --backend {args.backend} can only generate): use --ranking list")
    return args.ranking or ("likelihood" if scores else "list")


def _run_caparena(args) -> None:
    """`eval --bench caparena`: caption the release's images, judge the battles, score as CapArena."""
    from pathlib import Path

    from ssl4rl.eval.backends import make_backend
    from ssl4rl.eval.captioning import DEFAULT_PROMPT, run_caparena
    from ssl4rl.eval.judge import make_judge
    from ssl4rl.eval.runner import model_fingerprint

    if args.bench != "caparena":
        raise UserError("--judge, --judge-model and --images are for --bench caparena")
    if not args.data or not args.judge:
        raise UserError("--bench caparena needs --data (caparena_auto_600.json or its folder) and --judge (a server URL or a model folder)")
    if args.heldout or args.circular or args.matcher != "ssl4rl":
        raise UserError("--heldout, --circular and --matcher are for multiple-choice benchmarks, not --bench caparena")
    if args.judge_retries < 0 or args.judge_timeout <= 0 or args.judge_backoff < 0 or args.judge_max_tokens < 1:
        raise UserError("--judge-retries and --judge-backoff must be 0 or more, --judge-timeout and --judge-max-tokens positive")
    prompt = DEFAULT_PROMPT
    if args.prompt:
        try:
            prompt = Path(args.prompt).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--prompt {args.prompt}: {error}") from None
        if not prompt:
            raise UserError(f"--prompt {args.prompt}: empty file")
    from ssl4rl.eval.caparena import read_release

    read_release(args.data, args.images, args.limit)  # a broken release fails before any model loads
    judge = make_judge(args.judge, args.judge_model, timeout=args.judge_timeout, retries=args.judge_retries,
                       backoff=args.judge_backoff, max_tokens=args.judge_max_tokens)  # fmt: skip
    backend = make_backend(args.backend, args.model, max_new_tokens=args.max_new_tokens, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    name = args.name or run_name(args.model)
    identity = {
        "model": model_fingerprint(args.model),
        "model_path": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
        "data_path": str(Path(args.data).resolve()),
        "max_new_tokens": args.max_new_tokens, "min_pixels": args.min_pixels, "max_pixels": args.max_pixels,
    }  # fmt: skip
    summary = run_caparena(args.data, args.images, backend, judge, args.out, prompt=prompt, orders=args.judge_orders, batch_size=args.batch_size,
                           limit=args.limit, label=name, identity=identity, overwrite=args.overwrite)  # fmt: skip
    undecided = summary["malformed"] + summary["failed"] + summary["missing"]
    print(f"{name}: CapArena score {summary['score']:.2f} over {summary['battles']} battles ({undecided} without verdict), "
          f"{summary['words']} words per caption -> {args.out}/report.md")  # fmt: skip


def run_name(model: str) -> str:
    """A model's name in reports: its folder, with the parent for generic folder names
    (`outputs/trl/final` and `outputs/demo/grpo/final` are `trl/final` and `grpo/final`).

    >>> run_name("outputs/trl/final"), run_name("Qwen/Qwen2.5-VL-3B-Instruct"), run_name("ckpt/global_step_50/actor")
    ('trl/final', 'Qwen2.5-VL-3B-Instruct', 'global_step_50/actor')
    """
    from pathlib import Path

    path = Path(model.rstrip("/"))
    generic = path.name in ("final", "actor", "huggingface", "merged", "model", "checkpoint") or path.name.startswith(("checkpoint-", "global_step_"))
    return f"{path.parent.name}/{path.name}" if generic and path.parent.name else path.name


def _run_report(args) -> None:
    from ssl4rl.eval.report import comparison_chart

    print(comparison_chart(args.folders, args.out))


def _run_demo(args) -> None:
    from ssl4rl.demo import run_demo

    run_demo(args.out, args.steps)


def _run_sources(args) -> None:
    from ssl4rl.sources import PRESETS

    from ssl4rl.sources.graph_samples import BUNDLED

    print("samples: photos bundled with scikit-image (no download)")
    print("shapes[:N]: N synthetic pictures (default 1000) a model trained from nothing can learn from (no download)")
    for name, description in BUNDLED.items():
        print(f"{name}: graph, bundled (no download): {description}")
    for name, preset in PRESETS.items():
        print(f"{name}: {preset.description}. --data: {preset.download}\n    download: {preset.url}")


def parse_args(argv: list[str] | None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """argparse fills a `*` positional once, at its first chance: Hydra overrides typed after
    other options (`check DATA --device cpu a.b=1`) would be refused, so they are collected here.
    PARSER: one from build_parser(), to parse many command lines without building it again."""
    parser = parser or build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [arg for arg in extra if "=" in arg and not arg.startswith("-")]
    if extra != overrides or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


# What a rerun of the same command finds after Ctrl-C, per command.
INTERRUPTED = {
    "build": " (complete shards are kept; rerun the same command to resume)",
    "paper": " (complete shards are kept; rerun the same command to resume)",
    "eval": " (answers so far are kept in predictions.jsonl, or captions.jsonl and battles.jsonl; rerun the same command to resume)",
    "train": " (rerun the same command to resume from the newest checkpoint)",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        commands = {
            "build": _run_build, "show": _run_show, "paper": _run_paper, "sources": _run_sources,
            "train": _run_train, "check": _run_check, "tiny-model": _run_tiny_model, "merge": _run_merge, "demo": _run_demo,
            "eval": _run_eval, "report": _run_report, "audit": _run_audit,
        }  # fmt: skip
        code = commands[args.command](args)
    except UserError as error:
        print(f"ssl4rl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ssl4rl: interrupted{INTERRUPTED.get(args.command, '')}", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
