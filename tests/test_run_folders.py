"""One output folder, one run: tiny-model, TRL and verl refuse a non-empty folder of another
run (or --overwrite empties it), resume their own run, and say in one line when it is done."""

from __future__ import annotations

import json

import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.errors import UserError
from ssl4rl.train.runs import claim, newest_step


def test_tiny_model_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a warm-started model")
    assert main(["tiny-model", str(out), "--text"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == b"a warm-started model"
    assert main(["tiny-model", str(out), "--text", "--overwrite"]) == 0
    assert (out / "config.json").is_file() and (out / "model.safetensors").read_bytes() != b"a warm-started model"


def test_claim_resumes_its_own_run_and_refuses_another(tmp_path):
    folder = tmp_path / "run"
    assert claim(folder, {"a": 1}, False, "TRL") is False
    (folder / "checkpoint-2").mkdir()
    assert claim(folder, {"a": 1}, False, "TRL") is True
    with pytest.raises(UserError, match=r"another TRL run \(a differs\)"):
        claim(folder, {"a": 2}, False, "TRL")
    assert claim(folder, {"a": 2}, True, "TRL") is False and not (folder / "checkpoint-2").exists()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no TRL run"):
        claim(tmp_path / "foreign", {"a": 1}, False, "TRL")
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-9").mkdir()
    assert newest_step(folder, "checkpoint-")[0] == 10


@pytest.fixture(scope="module")
def six_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "link"
    build(BuildConfig(task="link", source="synthetic", out=str(out), limit=6, test_fraction=0), progress_bar=False)
    return out


def test_trl_rerun_resumes_then_says_it_finished(six_rows, tmp_path, capsys):
    from ssl4rl.tiny_lm import make_tiny_qwen2

    model = make_tiny_qwen2(tmp_path / "lm")
    args = ["train", "--backend", "trl", "--data", str(six_rows), "--model", str(model), "--out", str(tmp_path / "o"), "--batch-size", "2",
            "--mini-batch-size", "2", "--rollout-n", "2", "--max-response-length", "4", "--logger", "none"]  # fmt: skip
    trl = tmp_path / "o" / "trl"
    assert main([*args, "--max-steps", "2"]) == 0
    assert sorted(p.name for p in trl.glob("checkpoint-*")) == ["checkpoint-2"]
    capsys.readouterr()
    assert main([*args, "--max-steps", "3"]) == 0  # the same run, continued: not restarted at step 1
    out = capsys.readouterr().out
    assert "resuming" in out and "checkpoint-2" in out
    steps = [line.split()[1] for line in out.splitlines() if line.startswith("step ")]
    assert steps == ["3"]
    assert sorted(p.name for p in trl.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert main([*args, "--max-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "finished at step 3 of 3" in out and not any(line.startswith("step ") for line in out.splitlines())
    assert main([*args, "--max-steps", "3", "--lr", "0.5"]) == 2  # another run into the same folder
    assert "(lr differs)" in capsys.readouterr().err
    assert main([*args, "--max-steps", "1", "--lr", "0.5", "--overwrite"]) == 0
    assert sorted(p.name for p in trl.glob("checkpoint-*")) == ["checkpoint-1"]
    assert json.loads((trl / "run.json").read_text())["lr"] == 0.5


def test_verl_refuses_another_runs_folder_before_launching(six_rows, tmp_path, capsys):
    from ssl4rl.tiny_lm import make_tiny_qwen2

    model = make_tiny_qwen2(tmp_path / "lm")
    out = tmp_path / "o"
    run = out / "verl" / f"{six_rows.parent.name}-{six_rows.name}"
    run.mkdir(parents=True)
    (run / "global_step_2").mkdir()  # checkpoints of an unknown run
    # the build's prompts are longer in the tiny model's own tokens than verl's default 1024: the check counts them exactly
    args = ["train", "--backend", "verl", "--device", "cpu", "--data", str(six_rows), "--model", str(model), "--out", str(out),
            "trainer.total_training_steps=1", "data.max_prompt_length=4096"]  # fmt: skip
    assert main(args) == 2
    assert "holds no verl run" in capsys.readouterr().err
    (run / "run.json").write_text(json.dumps({"backend": "verl", "data": "another build"}))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another verl run" in err and "--overwrite" in err


def test_verl_run_identity_ignores_only_how_long_the_run_goes(six_rows):
    from ssl4rl.train.verl_launch import run_identity, verl_command

    def identity(*overrides):
        return run_identity(verl_command(str(six_rows), "m", profile="cpu", overrides=list(overrides)), str(six_rows), "m")

    assert identity("trainer.total_training_steps=2") == identity("trainer.total_training_steps=3", "trainer.save_freq=1")
    assert identity("trainer.total_training_steps=2") != identity("trainer.total_training_steps=2", "actor_rollout_ref.actor.optim.lr=0.1")
