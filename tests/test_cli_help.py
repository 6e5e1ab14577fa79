"""The command line explains itself: help, choices and defaults everywhere, task options with
their own names, no prefix matching, and one line for each user error."""

from __future__ import annotations

import argparse
import json

import pyarrow.parquet as pq
import pytest

from ssl4rl import __version__
from ssl4rl.cli import build_parser, main
from ssl4rl.sources import PRESETS


def all_parsers(parser: argparse.ArgumentParser, path=("ssl4rl",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, (*path, name))


def test_every_option_of_every_command_has_help_and_shows_its_default_and_choices():
    for path, parser in all_parsers(build_parser()):
        assert parser.allow_abbrev is False, path
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert action.help, (path, action.dest)
            if action.option_strings and action.default is not None and action.default is not False:
                assert "default" in action.help or f"(default: {action.default})" in text, (path, action.dest)
            choices = list(action.choices or [])
            if choices and f"{choices[0]}..{choices[-1]}" not in text:  # a run of integers, or every value
                for choice in choices:
                    assert str(choice) in text, (path, action.dest, choice)


def test_task_options_keep_their_names_and_list_their_choices():
    rotation = " ".join(next(p for path, p in all_parsers(build_parser()) if path[-1] == "rotation").format_help().split())
    assert "--granularity DEGREES" in rotation and "TASK_" not in rotation
    assert "one of 1, 2, 3" in rotation and "45" in rotation and "angles are 0, g, 2g" in rotation
    flip = " ".join(next(p for path, p in all_parsers(build_parser()) if path[-1] == "flip").format_help().split())
    assert "--axis AXIS" in flip and "one of random, horizontal, vertical" in flip
    # Flip's candidate count depends on --patch (hard: 6 small patches), so it is not a fixed list.
    assert "--candidates K" in flip and "one of 2, 3, 4" not in flip
    assert build_parser().parse_args(["build", "flip", "--source", "x", "--out", "y", "--candidates", "6", "--patch", "0.2"]).task_candidates == 6


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "rotation", "--source", "samples", "--out", "o", "--granularity", "7"],  # not a divisor of 360
        ["build", "jigsaw", "--source", "samples", "--out", "o", "--grid", "9"],
        ["train", "--gpu", "1", "--data", "d", "--dry-run"],  # no prefix matching: --gpu is not --gpus
        ["eval", "--model", "m", "--data", "d", "--out", "o", "--bench", "mmbnch"],  # a typo is not silently non-mmbench
        ["build", "rotation", "--sour", "samples", "--out", "o"],
    ],
)
def test_bad_flags_are_one_line_and_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as usage_error:  # argparse's own errors exit from inside parse_args
        code = usage_error.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("ssl4rl: error: ") and err.count("\n") == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ssl4rl {__version__}"


def test_sources_give_a_download_address_for_every_preset(capsys):
    assert main(["sources"]) == 0
    listed = capsys.readouterr().out
    for name in PRESETS:
        block = listed.split(f"\n{name}:")[1].split("\n")[1]
        assert block.strip().startswith("download: http"), name


def test_mix_takes_per_task_options(tmp_path, photo_folder):
    out = tmp_path / "mix"
    assert main(["build", "mix", "--tasks", "jigsaw:1:grid=3,rotation:2:granularity=45:square=false", "--source", str(photo_folder), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    specs = {spec["task"]: spec for spec in json.loads((out / "manifest.json").read_text())["specs"]}
    assert specs["jigsaw"]["options"]["grid"] == 3 and specs["rotation"]["options"] == {"granularity": 45, "square": False}
    assert specs["rotation"]["weight"] == 2.0
    rows = [row for path in out.glob("*.parquet") for row in pq.read_table(path).to_pylist()]
    assert {len(r["images"]) for r in rows if r["extra_info"]["task"] == "jigsaw"} == {9}


@pytest.mark.parametrize("tasks, message", [("jigsaw:1:grid=x", "takes a int"), ("jigsaw:1:size=3", "bad option"), ("jigsaw:1:grid=9", "grid must be"), ("jigsw:1", "unknown task")])
def test_bad_mix_task_options_are_one_line(tasks, message, tmp_path, photo_folder, capsys):
    assert main(["build", "mix", "--tasks", tasks, "--source", str(photo_folder), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "o").exists()


def test_building_puzzles_from_a_puzzle_build_is_refused(tmp_path, photo_folder, capsys):
    first = tmp_path / "first"
    assert main(["build", "rotation", "--source", str(photo_folder), "--out", str(first), "--quiet"]) == 0
    for source in (str(first), str(next(first.glob("train-*.parquet")))):
        assert main(["build", "jigsaw", "--source", source, "--out", str(tmp_path / "second"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is an ssl4rl puzzle build" in err and not (tmp_path / "second").exists()


def test_merge_of_a_hugging_face_folder_says_so(tmp_path, capsys):
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "config.json").write_text("{}")
    assert main(["merge", str(tmp_path / "final"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already a Hugging Face model" in err


def test_build_progress_bar_has_a_total(tmp_path, photo_folder, capsys):
    assert main(["build", "position", "--source", str(photo_folder), "--out", str(tmp_path / "o"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "/24 " in err and "24/24" in err  # 24 photos, one puzzle each
