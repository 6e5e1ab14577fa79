"""Messages that say what happened: Ctrl-C per command, an absent task's accuracy, a missing test
split, and training profiles whose defaults follow them."""

from __future__ import annotations

import pytest

from conftest import write_folder
from ssl4rl import cli
from ssl4rl.cli import main
from ssl4rl.train.trl_grpo import step_line


def test_ctrl_c_during_eval_speaks_of_predictions_not_shards(monkeypatch, capsys, tmp_path):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_eval", interrupted)
    assert main(["eval", "--model", "m", "--data", "x.tsv", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "predictions.jsonl" in err and "shards" not in err and err.count("\n") == 1


def test_a_task_absent_from_a_step_prints_a_dash_not_nan():
    line = step_line(2, {"reward": 0.25, "rewards/rotation_acc/mean": None, "rewards/jigsaw_acc/mean": float("nan"), "rewards/position_acc/mean": 0.5},
                     ["jigsaw", "position", "rotation"])  # fmt: skip
    assert "nan" not in line and line.count("acc -") == 2 and "position acc 0.500" in line


def test_trl_logs_no_none_for_an_absent_task(tmp_path, capsys):
    """A mix step with one task absent: no NaN printed, no transformers warning about None."""
    import logging

    from ssl4rl.build import BuildConfig, build
    from ssl4rl.tiny_lm import make_tiny_qwen2
    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    data = tmp_path / "mix"
    build(BuildConfig(task="mix", tasks={"link": 1.0, "masking": 1.0}, source="synthetic", out=str(data), limit=12, test_fraction=0), progress_bar=False)
    model = make_tiny_qwen2(tmp_path / "lm")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    logging.getLogger("transformers").addHandler(handler)
    try:
        cfg = LocalGRPOConfig(batch_size=1, mini_batch_size=1, rollout_n=2, max_steps=4, max_response_length=4, save_freq=100)
        history = train_trl(str(data), str(model), str(tmp_path / "trl"), cfg)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert len(printed) == 4 and any("acc -" in line for line in printed) and not any("nan" in line for line in printed)
    assert not [m for m in records if "None" in m]
    assert all(v is not None for entry in history for v in entry.values())


def test_a_build_without_a_test_split_is_explained_truthfully(tmp_path, capsys):
    photos = write_folder(tmp_path / "photos", 3, size=(96, 96))
    out = tmp_path / "one"
    assert main(["build", "rotation", "--source", str(photos), "--out", str(out), "--limit", "1", "--quiet"]) == 0
    assert "--test-fraction 0.1" in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "none"), "--puzzles", str(out), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "--test-fraction 0.1" in err and "--test-fraction 0?" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--profile", "graph"], "actor_rollout_ref.model.path=Qwen/Qwen2.5-3B-Instruct"),
        (["--profile", "cpu", "--model", "MODEL"], "actor_rollout_ref.rollout.name=hf"),
        (["--profile", "cpu", "--model", "MODEL"], "trainer.device=cpu"),
    ],
)
def test_profiles_set_defaults_that_follow_them(rotation_set, tmp_path, capsys, argv, expected):
    argv = [a if a != "MODEL" else str(tmp_path) for a in argv]
    assert main(["train", "--data", str(rotation_set), "--out", str(tmp_path / "o"), "--dry-run", *argv]) == 0
    assert expected in capsys.readouterr().out


def test_cpu_profile_without_a_model_or_with_a_gpu_is_one_line(rotation_set, tmp_path, capsys):
    assert main(["train", "--data", str(rotation_set), "--profile", "cpu", "--dry-run"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert main(["train", "--data", str(rotation_set), "--profile", "cpu", "--device", "gpu", "--model", str(tmp_path), "--dry-run"]) == 2
    assert "drop --device gpu" in capsys.readouterr().err
