"""Preflight step counts equal the steps the trainer runs: TRL here, with several batch and
max-step settings (verl: tests/test_verl_trainer.py compares its plan with its logged steps)."""

from __future__ import annotations

import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.train.preflight import check_trl_run
from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl


@pytest.fixture(scope="module")
def six_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("graph") / "link"
    build(BuildConfig(task="link", source="synthetic", out=str(out), limit=6, test_fraction=0), progress_bar=False)
    return out


@pytest.mark.parametrize(
    "batch, mini, epochs, max_steps",
    [(4, 4, 1, 2), (4, 2, 1, -1), (2, 2, 2, -1), (2, 1, 1, 3)],
)
def test_trl_preflight_counts_the_steps_trl_runs(text_model, six_rows, tmp_path, batch, mini, epochs, max_steps):
    cfg = LocalGRPOConfig(batch_size=batch, mini_batch_size=mini, rollout_n=2, total_epochs=epochs, max_steps=max_steps,
                          max_response_length=4, logger="none", save_freq=10_000)  # fmt: skip
    plan = check_trl_run(str(six_rows), cfg, str(text_model))
    assert plan.train_rows == 6 and not plan.errors
    history = train_trl(str(six_rows), str(text_model), str(tmp_path / "trl"), cfg, print_steps=False)
    # the trainer saves at its last step: checkpoint-N names the steps it ran
    assert sorted(p.name for p in (tmp_path / "trl").glob("checkpoint-*")) == [f"checkpoint-{plan.total_steps}"]
    assert history and history[0]["step"] == 1 and history[-1]["step"] <= plan.total_steps


def test_trl_preflight_of_the_issue_example_says_two_steps(six_rows, text_model):
    cfg = LocalGRPOConfig(batch_size=4, mini_batch_size=4, max_steps=2, save_freq=50)
    plan = check_trl_run(str(six_rows), cfg, str(text_model))
    assert plan.report().splitlines()[0] == "6 train rows: 1 steps per epoch, 2 steps in all"
    assert any("--save-freq=50 is more than the run's 2 steps" in w for w in plan.warnings)


def test_trl_keeps_verls_constant_learning_rate(text_model, six_rows, tmp_path):
    """The two backends run one schedule: verl's actor.optim holds the rate constant; TRL's
    default decayed it linearly to zero, half the learning over a run of the same flags."""
    import yaml
    from importlib.resources import files

    verl_optim = yaml.safe_load((files("verl") / "trainer/config/optim/fsdp.yaml").read_text())
    assert verl_optim["lr_scheduler_type"] == "constant"
    cfg = LocalGRPOConfig(batch_size=2, mini_batch_size=2, rollout_n=2, max_steps=3, lr=1e-4, max_response_length=4, logger="none", save_freq=10_000)
    history = train_trl(str(six_rows), str(text_model), str(tmp_path / "trl"), cfg, print_steps=False)
    assert [entry["learning_rate"] for entry in history] == [1e-4] * 3
