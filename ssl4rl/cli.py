"""The `ssl4rl` command: thin argparse sub-commands over the library."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import MISSING, fields

from ssl4rl.errors import UserError
from ssl4rl.tasks import TASKS


def _add_task_options(parser: argparse.ArgumentParser, task_class) -> None:
    """One flag per field of the task's dataclass: --granularity, --no-square, ..."""
    for option in fields(task_class):
        flag = "--" + option.name.replace("_", "-")
        default = option.default if option.default is not MISSING else None
        # Unset flags stay None, so a --difficulty preset is only overridden by what the user typed.
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f"task_{option.name}", action=argparse.BooleanOptionalAction, default=None, help=f"(default: {default})")
        else:
            parser.add_argument(flag, dest=f"task_{option.name}", type=type(default), default=None, help=f"(default: {default})")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssl4rl", description="Self-supervised visual puzzles as verifiable RL rewards for VLMs.")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a puzzle dataset (verl RLHF parquet)")
    tasks = build.add_subparsers(dest="task", required=True, metavar="TASK", help=f"one of: {', '.join(TASKS)}")
    for name, task_class in [("mix", None), *TASKS.items()]:
        summary = "several tasks in one interleaved dataset" if task_class is None else (task_class.__doc__ or "").strip().splitlines()[0]
        task_parser = tasks.add_parser(name, help=summary)
        task_parser.add_argument("--source", required=True, help="samples, a preset name (see `ssl4rl sources`), or a path (TSV file, parquet/HF folder, image folder)")
        task_parser.add_argument("--data", help="with a preset: the downloaded files (TSV file or folder)")
        task_parser.add_argument("--out", required=True, help="output folder for train-*.parquet, test-*.parquet, manifest.json")
        task_parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="worker processes (default: %(default)s; output is identical for any number)")
        task_parser.add_argument("--seed", type=int, default=0)
        task_parser.add_argument("--limit", type=int, help="stop after this many rows (train + test)")
        task_parser.add_argument("--test-fraction", type=float, default=0.1, help="share of images (by content hash) in the test split (default: %(default)s)")
        task_parser.add_argument("--image-format", choices=["png", "jpeg"], default="png", help="generated images: lossless png (default) or jpeg")
        task_parser.add_argument("--per-image", type=int, default=1, help="puzzles made from each source image (default: %(default)s)")
        task_parser.add_argument("--shard-rows", type=int, default=1000, help="rows per parquet shard (default: %(default)s)")
        task_parser.add_argument("--image-column", action="append", help="image column(s) of a TSV/parquet source (default: detected)")
        task_parser.add_argument("--prompt", help="a prompt template file to use instead of configs/prompts/<task>.txt")
        task_parser.add_argument("--overwrite", action="store_true", help="replace an existing build in --out")
        task_parser.add_argument("--quiet", action="store_true", help="no progress bar")
        task_parser.add_argument("--difficulty", help="level(s) easy,medium,hard: one, or several spread over the images")
        task_parser.add_argument("--curriculum", choices=["mixed", "static"], default="mixed", help="with several levels: random per image, or easy first (static)")
        if task_class is None:
            task_parser.add_argument("--tasks", required=True, help="task:weight list, e.g. rotation:2,position:1,jigsaw:1")
        else:
            _add_task_options(task_parser.add_argument_group(f"{name} options"), task_class)

    show = commands.add_parser("show", help="render a contact sheet of built puzzles with their answers")
    show.add_argument("folder", help="a build folder")
    show.add_argument("--n", type=int, default=16, help="puzzles to show (default: %(default)s)")
    show.add_argument("--split", choices=["train", "test"], default="test")
    show.add_argument("--out", default="sheet.png", help="output PNG (default: %(default)s)")

    audit = commands.add_parser("audit", help="probe a build for shortcuts: rules that find the answer without the visual skill")
    audit.add_argument("folder", help="a build folder")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")

    paper = commands.add_parser("paper", help="build the SSL4RL paper's four puzzle sets from one benchmark's files")
    paper.add_argument("preset", help="a preset name, e.g. mmbench or seedbench (see `ssl4rl sources`)")
    paper.add_argument("--data", required=True, help="the downloaded benchmark files (TSV file or folder)")
    paper.add_argument("--out", default="datasets", help="root folder; each task goes to OUT/PRESET/TASK (default: %(default)s)")
    paper.add_argument("--tasks", default="rotation,jigsaw,position,contrastive", help="comma-separated subset (default: all four)")
    paper.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    paper.add_argument("--seed", type=int, default=0)

    commands.add_parser("sources", help="list the named image sources and where to download them")

    train = commands.add_parser("train", help="GRPO on a puzzle set: verl (GPU clusters) or trl (one machine)")
    train.add_argument("--backend", choices=["verl", "trl"], default="verl")
    train.add_argument("--data", required=True, help="a build folder (train-*.parquet, test-*.parquet)")
    train.add_argument("--model", default="Qwen/Qwen2.5-VL-3B-Instruct", help="hub id or local path (default: %(default)s)")
    train.add_argument("--out", default="outputs", help="checkpoints and logs (default: %(default)s)")
    train.add_argument("--gpus", type=int, default=8, help="verl: GPUs per node (default: %(default)s)")
    train.add_argument("--nodes", type=int, default=1, help="verl: nodes (default: %(default)s)")
    train.add_argument("--profile", choices=["paper", "1gpu"], default="paper", help="verl: settings preset (default: %(default)s)")
    train.add_argument("--filter-groups", action="store_true", help="verl: drop prompts whose rollouts all got the same accuracy")
    train.add_argument("--dry-run", action="store_true", help="verl: print the command instead of running it")
    train.add_argument("--format-weight", type=float, default=0.0, help="reward = (1-w)*acc + w*format (default: 0, as the paper)")
    train.add_argument("--jigsaw-scoring", choices=["permutation", "parity"], default="permutation")
    train.add_argument(
        "--curriculum", choices=["off", "adaptive"], default="off",
        help="adaptive: keep each task's accuracy inside --band by serving easier/harder levels (needs a build with --difficulty easy,medium,hard)",
    )  # fmt: skip
    train.add_argument("--band", default="0.2,0.8", help="adaptive curriculum: LOW,HIGH accuracy band (default: %(default)s)")
    train.add_argument("--window", type=int, help="adaptive curriculum: outcomes per decision (default: one step's rollouts of a task)")
    local = train.add_argument_group("trl backend (names follow verl's)")
    for option in fields(_local_config()):
        if option.name in ("format_weight", "jigsaw_scoring"):
            continue
        local.add_argument("--" + option.name.replace("_", "-"), dest=f"local_{option.name}", type=type(option.default), default=option.default, help=f"(default: {option.default})")
    train.add_argument("overrides", nargs="*", help="verl: extra Hydra overrides, e.g. trainer.total_epochs=5")

    tiny = commands.add_parser("tiny-model", help="make the tiny offline Qwen2.5-VL used by tests and the demo")
    tiny.add_argument("out")
    tiny.add_argument("--warm-start", metavar="DATA", help="teach it the answer format on this build folder")
    tiny.add_argument("--seed", type=int, default=0)

    merge = commands.add_parser("merge", help="verl FSDP checkpoint -> Hugging Face model (LoRA fused)")
    merge.add_argument("checkpoint", help="global_step_N/actor, global_step_N, or the run folder (newest step)")
    merge.add_argument("out")

    evaluate = commands.add_parser("eval", help="multiple-choice benchmark or puzzle accuracy of a model")
    evaluate.add_argument("--model", required=True, help="local model folder or hub id")
    target = evaluate.add_mutually_exclusive_group(required=True)
    target.add_argument("--data", help="benchmark file: a VLMEvalKit TSV or a Hugging Face parquet file/folder")
    target.add_argument("--puzzles", help="a build folder: score its test split with the training verifiers")
    evaluate.add_argument("--bench", default="", help="benchmark name for the report (mmbench turns on circular scoring)")
    evaluate.add_argument("--out", required=True, help="folder for predictions.jsonl, summary.json, report.md")
    evaluate.add_argument("--backend", choices=["auto", "hf", "vllm"], default="auto", help="auto: vLLM when installed, else Hugging Face")
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--max-new-tokens", type=int, default=1024)
    evaluate.add_argument("--min-pixels", type=int)
    evaluate.add_argument("--max-pixels", type=int)
    evaluate.add_argument("--circular", action=argparse.BooleanOptionalAction, default=None, help="MMBench circular evaluation (default: on for mmbench)")
    evaluate.add_argument("--prompt", help="a template file instead of configs/prompts/mcq.txt")
    evaluate.add_argument("--name", help="the model's name in reports (default: the model folder's name)")

    report = commands.add_parser("report", help="compare eval folders: a table and a bar chart per category")
    report.add_argument("folders", nargs="+")
    report.add_argument("--out", default="report.png")

    demo = commands.add_parser("demo", help="the whole loop on CPU: build, show, tiny model, GRPO steps")
    demo.add_argument("--out", default="outputs/demo")
    demo.add_argument("--steps", type=int, default=6)
    return parser


def _parse_weights(text: str) -> dict[str, float]:
    """'rotation:2,position:1,jigsaw' -> {'rotation': 2.0, 'position': 1.0, 'jigsaw': 1.0}"""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"--tasks: bad weight in {item!r} (use task:number)") from None
    return weights


def _run_build(args) -> None:
    from ssl4rl.build import BuildConfig, build

    if args.workers < 1 or args.per_image < 1 or args.shard_rows < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--workers, --per-image, --shard-rows and --limit must be positive")
    options = {k[len("task_"):]: v for k, v in vars(args).items() if k.startswith("task_") and v is not None}
    cfg = BuildConfig(
        task=args.task, source=args.source, out=args.out, options=options, data=args.data,
        image_columns=args.image_column, seed=args.seed, limit=args.limit, test_fraction=args.test_fraction,
        image_format=args.image_format, per_image=args.per_image, shard_rows=args.shard_rows, prompt_file=args.prompt,
        tasks=_parse_weights(args.tasks) if args.task == "mix" else None,
        difficulty=[level.strip() for level in args.difficulty.split(",") if level.strip()] if args.difficulty else None,
        curriculum=args.curriculum,
    )  # fmt: skip
    manifest = build(cfg, workers=args.workers, overwrite=args.overwrite, progress_bar=not args.quiet)
    rows = manifest["rows"]
    skipped = ", ".join(f"{k} {v}" for k, v in manifest["skipped"].items()) or "none"
    print(f"{args.out}: {rows['train']} train + {rows['test']} test rows of '{manifest['task']}'; skipped: {skipped}")


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


def _run_train(args) -> None:
    reward_kwargs = {"format_weight": args.format_weight, "jigsaw_scoring": args.jigsaw_scoring}
    curriculum = _curriculum(args)
    if args.backend == "verl":
        from ssl4rl.train.verl_launch import launch, verl_command

        command = verl_command(
            args.data, args.model, f"{args.out}/verl", args.gpus, args.nodes, args.profile,
            filter_groups=args.filter_groups, reward_kwargs=reward_kwargs, overrides=args.overrides, curriculum=curriculum,
        )  # fmt: skip
        code = launch(command, dry_run=args.dry_run)
        if code:
            raise UserError(f"verl exited with status {code}")
        return
    from ssl4rl.train.trl_grpo import train_trl

    if args.overrides:
        raise UserError(f"Hydra overrides are for --backend verl (got {' '.join(args.overrides)})")
    options = {k[len("local_"):]: v for k, v in vars(args).items() if k.startswith("local_")}
    train_trl(args.data, args.model, f"{args.out}/trl", _local_config()(**options, **reward_kwargs), curriculum=curriculum)


def _run_tiny_model(args) -> None:
    from ssl4rl.tiny_vlm import make_tiny_qwen2_5_vl, warm_start

    out = make_tiny_qwen2_5_vl(args.out, seed=args.seed)
    if args.warm_start:
        losses = warm_start(out, args.warm_start, seed=args.seed)
        print(f"format warm-start loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    print(out)


def _run_merge(args) -> None:
    from ssl4rl.merge import merge

    merge(args.checkpoint, args.out)


def _run_eval(args) -> None:
    from pathlib import Path

    from ssl4rl.eval.backends import make_backend
    from ssl4rl.eval.runner import benchmark_items, puzzle_items, run

    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise UserError("--batch-size and --limit must be positive")
    items = puzzle_items(args.puzzles, args.limit) if args.puzzles else benchmark_items(args.data, args.limit, args.prompt)
    circular = args.circular if args.circular is not None else "mmbench" in (args.bench or args.data or "").lower()
    backend = make_backend(args.backend, args.model, max_new_tokens=args.max_new_tokens, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    name = args.name or Path(args.model).name
    identity = {
        "model": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
        "data": str(Path(args.puzzles or args.data).resolve()), "limit": args.limit, "prompt": args.prompt,
        "max_new_tokens": args.max_new_tokens, "min_pixels": args.min_pixels, "max_pixels": args.max_pixels,
    }  # fmt: skip
    summary = run(items, backend, args.out, args.batch_size, puzzles=bool(args.puzzles), circular=circular, label=name, identity=identity)
    extra = f", circular {100 * summary['circular']['accuracy']:.2f}" if "circular" in summary else ""
    print(f"{name}: accuracy {100 * summary['accuracy']:.2f} on {summary['questions']} questions{extra} -> {args.out}/report.md")


def _run_report(args) -> None:
    from ssl4rl.eval.report import comparison_chart

    print(comparison_chart(args.folders, args.out))


def _run_demo(args) -> None:
    from ssl4rl.demo import run_demo

    run_demo(args.out, args.steps)


def _run_sources(args) -> None:
    from ssl4rl.sources import PRESETS

    print("samples: photos bundled with scikit-image (no download)")
    for name, preset in PRESETS.items():
        print(f"{name}: {preset.description}. --data: {preset.download}")


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        commands = {
            "build": _run_build, "show": _run_show, "paper": _run_paper, "sources": _run_sources,
            "train": _run_train, "tiny-model": _run_tiny_model, "merge": _run_merge, "demo": _run_demo,
            "eval": _run_eval, "report": _run_report, "audit": _run_audit,
        }  # fmt: skip
        code = commands[args.command](args)
    except UserError as error:
        print(f"ssl4rl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssl4rl: interrupted (complete shards are kept; rerun the same command to resume)", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
