"""The adaptive curriculum: the controller, the outcome log shared between processes, a simulated
learner through the same code path as training, and its joints with verl 0.9.1 and TRL."""

from __future__ import annotations

import json
import math
import multiprocessing

import numpy as np
import pytest

from conftest import write_folder
from ssl4rl.cli import main
from ssl4rl.curriculum import AdaptiveDifficulty, AdaptiveRows, LevelIndex, LogFollower, append_outcome, default_window
from ssl4rl.reward import compute_score

RIGHT, WRONG = "<answer>90</answer>", "<answer>0</answer>"


def _info(level: str, task: str = "rotation", split: str = "train") -> dict:
    return {"task": task, "difficulty": level, "split": split}


# ---------------------------------------------------------------- the controller
def test_controller_moves_one_level_when_a_full_window_leaves_the_band():
    c = AdaptiveDifficulty(window=4)
    assert c.level("rotation") == "easy"
    for acc in (1, 1, 1):
        c.observe("rotation", "easy", acc)
    assert c.level("rotation") == "easy"  # three outcomes are not a window
    c.observe("rotation", "easy", 1)
    assert c.level("rotation") == "medium" and c.state()["rotation"] == {"level": "medium", "n": 0, "acc": None, "moves": 1}
    for _ in range(10):
        c.observe("rotation", "easy", 0.0)  # stale outcomes at the old level never count
    assert c.level("rotation") == "medium"
    for acc in (0.1, 0.2, 0.1, 0.3):  # mean 0.175 < 0.2
        c.observe("rotation", "medium", acc)
    assert c.level("rotation") == "easy" and c.state()["rotation"]["moves"] == 2
    assert c.level("jigsaw") == "easy" and "jigsaw" not in c.state()  # tasks are independent


def test_controller_stays_inside_the_band_and_at_the_ends():
    c = AdaptiveDifficulty(window=4)
    for _ in range(40):
        c.observe("t", "easy", 0.5)
    assert c.level("t") == "easy" and c.state()["t"]["acc"] == 0.5
    for _ in range(40):
        c.observe("t", "easy", 0.0)  # already the easiest level
    assert c.level("t") == "easy" and c.state()["t"]["moves"] == 0
    top = AdaptiveDifficulty(("easy", "hard"), window=2, start="hard")
    for _ in range(10):
        top.observe("t", "hard", 1.0)
    assert top.level("t") == "hard"
    # the window slides: a good streak after a bad one moves as soon as the last 4 are above the band
    c = AdaptiveDifficulty(window=4)
    for acc in (0.0, 0.4, 0.4, 1, 1):  # windows 0.45, 0.7
        c.observe("t", "easy", acc)
    assert c.level("t") == "easy"
    c.observe("t", "easy", 1)  # 0.4, 1, 1, 1: 0.85
    assert c.level("t") == "medium"


@pytest.mark.parametrize(
    "kwargs",
    [{"levels": ("easy",)}, {"low": 0.8, "high": 0.2}, {"high": 1.5}, {"window": 0}, {"start": "expert"}, {"levels": ("easy", "easy")}],
)
def test_controller_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        AdaptiveDifficulty(**kwargs)


def test_level_index_keeps_the_task_and_covers_the_level_uniformly():
    keys = [(task, level) for task in ("rotation", "jigsaw") for level in ("easy", "medium", "hard") for _ in range(5)]
    keys = [keys[i] for i in np.random.default_rng(0).permutation(len(keys))]
    index = LevelIndex(keys)
    assert index.levels == ("easy", "medium", "hard") and index.tasks == ["jigsaw", "rotation"]
    for level in index.levels:
        picked = [index.pick(i, level) for i in range(len(keys))]
        assert all(keys[j] == (keys[i][0], level) for i, j in enumerate(picked))
        for task in index.tasks:  # 15 rows of a task map onto its 5 rows at the level, 3 times each
            counts = np.bincount([j for i, j in enumerate(picked) if keys[i][0] == task], minlength=len(keys))
            assert sorted(set(counts[counts > 0])) == [3]
    # levels a task lacks are dropped for every task; one level left is no curriculum
    assert LevelIndex([("a", "easy"), ("a", "hard"), ("b", "easy"), ("b", "medium"), ("b", "hard")]).levels == ("easy", "hard")
    with pytest.raises(ValueError, match="--difficulty easy,medium,hard"):
        LevelIndex([("a", "default"), ("a", "default")])


def test_default_window_is_one_steps_rollouts_of_a_task():
    assert default_window(512 * 5, 4) == 640 and default_window(16, 1) == 16 and default_window(3, 8) == 1


# ---------------------------------------------------------------- the log
def _writer(path: str, worker: int, count: int) -> None:
    for i in range(count):
        append_outcome(path, f"task{worker}", "easy", (i % 3) / 2)


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = str(tmp_path / "run" / "curriculum.jsonl")  # the folder does not exist yet
    processes = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, w, 400)) for w in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    lines = open(path, encoding="utf-8").read().splitlines()
    records = [json.loads(line) for line in lines]  # every line is whole
    assert len(records) == 1600
    for w in range(4):
        mine = [r["acc"] for r in records if r["task"] == f"task{w}"]
        assert mine == [(i % 3) / 2 for i in range(400)]  # each writer's lines in its order


def _fold(lines: list[dict], **kwargs) -> AdaptiveDifficulty:
    c = AdaptiveDifficulty(**kwargs)
    for r in lines:
        c.observe(r["task"], r["level"], r["acc"])
    return c


def test_followers_reading_incrementally_agree_with_one_fold(tmp_path):
    path = tmp_path / "log.jsonl"
    rng = np.random.default_rng(1)
    records, levels = [], {"a": "easy", "b": "easy"}
    eager = LogFollower(path, AdaptiveDifficulty(window=8))
    assert eager.refresh().level("a") == "easy"  # no log yet: the start level
    for step in range(60):
        for task in ("a", "b"):
            p = 0.95 if task == "a" else 0.5
            for _ in range(8):
                record = {"task": task, "level": levels[task], "acc": float(rng.random() < p)}
                append_outcome(path, **record)
                records.append(record)
        controller = eager.refresh()  # reads only what was appended since its last refresh
        levels = {task: controller.level(task) for task in ("a", "b")}
    late = LogFollower(path, AdaptiveDifficulty(window=8)).refresh()  # one read of the whole log
    assert late.state() == eager.controller.state() == _fold(records, window=8).state()
    assert late.level("a") == "hard" and late.state()["b"]["moves"] >= 2 and eager.lines == len(records)


def test_a_line_being_written_waits_and_a_replaced_log_is_replayed(tmp_path):
    path = tmp_path / "log.jsonl"
    follower = LogFollower(path, AdaptiveDifficulty(window=2))
    with open(path, "ab") as log:
        log.write(b'{"task": "a", "level": "easy", "acc": 1}\n{"task": "a", "lev')
    assert follower.refresh().state()["a"]["n"] == 1 and follower.lines == 1
    with open(path, "ab") as log:
        log.write(b'el": "easy", "acc": 1}\nnot json\n')
    assert follower.refresh().level("a") == "medium" and follower.lines == 2
    path.write_text('{"task": "a", "level": "easy", "acc": 0}\n')  # a new run's log
    assert follower.refresh().level("a") == "easy" and follower.lines == 1


def test_reward_appends_training_outcomes_and_never_raises(tmp_path):
    log = tmp_path / "curriculum.jsonl"
    plain = compute_score("ssl4rl/rotation", RIGHT, "90", _info("hard"))
    logged = compute_score("ssl4rl/rotation", RIGHT, "90", _info("hard"), curriculum_log=str(log))
    compute_score("ssl4rl/rotation", WRONG, "90", _info("easy"), curriculum_log=str(log))
    compute_score("ssl4rl/rotation", RIGHT, "90", _info("easy", split="test"), curriculum_log=str(log))  # validation
    assert plain == logged
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"task": "rotation", "level": "hard", "acc": 1.0},
        {"task": "rotation", "level": "easy", "acc": 0.0},
    ]
    blocked = tmp_path / "a-folder"
    blocked.mkdir()
    with pytest.warns(UserWarning, match="curriculum log"):
        assert compute_score("ssl4rl/rotation", RIGHT, "90", _info("easy"), curriculum_log=str(blocked))["score"] == 1.0
    assert compute_score("ssl4rl/rotation", RIGHT, "90", None, curriculum_log=str(log))["score"] == 1.0  # no extra_info


# ---------------------------------------------------------------- a simulated learner
DIFFICULTY = {"easy": 0.0, "medium": 1.0, "hard": 2.0}
SLOPE = 2.0  # P(correct) = sigmoid(SLOPE * (skill - difficulty))


def _simulate(tmp_path, skills, seed=0, fixed=None, per_step=64):
    """Each step draws `per_step` rows through AdaptiveRows (which folds the log), answers them
    right with the learner's probability, and scores them with compute_score(curriculum_log=...):
    the training path with a simulated policy. Returns per-step (level, accuracy)."""
    rows = [
        {"data_source": "ssl4rl/rotation", "reward_model": {"ground_truth": "90"}, "extra_info": _info(level)}
        for level in DIFFICULTY
        for _ in range(20)
    ]
    log = tmp_path / f"sim-{seed}-{fixed}-{skills[0]}.jsonl"
    dataset = AdaptiveRows(rows, log, window=default_window(per_step, 1))
    rng = np.random.default_rng(seed)
    trace = []
    for skill in skills:
        items = [dataset[int(i)] for i in rng.integers(0, len(dataset), per_step)]
        served = {item["extra_info"]["difficulty"] for item in items}
        assert len(served) == 1, "the level changes only between steps"
        level = fixed or served.pop()
        p = 1 / (1 + math.exp(-SLOPE * (skill - DIFFICULTY[level])))
        accs = [
            compute_score("ssl4rl/rotation", RIGHT if rng.random() < p else WRONG, "90", {**item["extra_info"], "difficulty": level}, curriculum_log=str(log))["acc"]
            for item in items
        ]
        trace.append((level, float(np.mean(accs))))
    return trace


def _ranks(trace):
    return np.array([list(DIFFICULTY).index(level) for level, _ in trace])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_tracks_a_rising_skill_and_keeps_accuracy_in_the_band(tmp_path, seed):
    """The acceptance test of the curriculum. The learner's slope is 2, not 4: with sigmoid(4x)
    and levels one unit apart no level is in the 0.2-0.8 band for skills 0.35-0.65 past a level
    (the easier one is above 0.8, the harder below 0.2), so any controller must oscillate there;
    with slope 2 adjacent levels overlap inside the band, which a curriculum needs."""
    steps = 200
    skills = np.linspace(0.0, 2.4, steps)
    trace = _simulate(tmp_path, skills, seed)
    ranks, accs = _ranks(trace), np.array([acc for _, acc in trace])
    assert trace[0][0] == "easy" and trace[-1][0] == "hard"
    assert np.all(np.abs(np.diff(ranks)) <= 1), "never two levels at once"
    quarters = [ranks[i : i + steps // 4].mean() for i in range(0, steps, steps // 4)]
    assert quarters == sorted(quarters) and quarters[0] < 0.5 and quarters[-1] > 1.5  # up as skill rises
    assert np.count_nonzero(np.diff(ranks) < 0) <= 8  # few steps back
    in_band = np.mean((accs >= 0.2) & (accs <= 0.8))
    assert in_band >= 0.8, f"accuracy in band for {in_band:.0%} of steps"
    # the baselines leave the band, so the test can fail: fixed hard early, fixed easy late
    hard = np.array([acc for _, acc in _simulate(tmp_path, skills[: steps // 4], seed, fixed="hard")])
    easy = np.array([acc for _, acc in _simulate(tmp_path, skills[-steps // 4 :], seed, fixed="easy")])
    assert hard.mean() < 0.1 and np.mean(hard < 0.2) > 0.9
    assert easy.mean() > 0.9 and np.mean(accs[: steps // 4] >= 0.2) > 0.9


def test_level_moves_back_down_when_the_skill_falls(tmp_path):
    steps = 200
    trace = _simulate(tmp_path, np.linspace(2.4, 0.0, steps), seed=3)
    ranks = _ranks(trace)
    assert trace[0][0] == "easy" and "hard" in {level for level, _ in trace[:10]}  # climbs to where the learner is
    assert trace[-1][0] == "easy" and np.all(np.abs(np.diff(ranks)) <= 1)
    later = ranks[10:]
    quarters = [later[i : i + 47].mean() for i in range(0, 188, 47)]
    assert quarters == sorted(quarters, reverse=True) and quarters[0] > 1.5 and quarters[-1] < 0.5


# ---------------------------------------------------------------- verl 0.9.1 and TRL
@pytest.fixture(scope="module")
def levels_set(tmp_path_factory):
    """A rotation set with easy, medium and hard puzzles."""
    from ssl4rl.build import BuildConfig, build

    root = tmp_path_factory.mktemp("levels")
    photos = write_folder(root / "photos", 16, size=(140, 120))
    out = root / "data"
    build(
        BuildConfig(task="rotation", source=str(photos), out=str(out), per_image=3, test_fraction=0.25, difficulty=["easy", "medium", "hard"]),
        progress_bar=False,
    )
    return out


def _compose(overrides):
    from hydra import compose, initialize_config_dir

    from ssl4rl.train.verl_launch import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return compose(config_name="verl_grpo", overrides=list(overrides))


def test_verl_overrides_compose_and_verls_factory_serves_the_current_level(tiny_model, levels_set, tmp_path):
    import pyarrow.parquet as pq
    from transformers import AutoProcessor
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.utils import create_rl_dataset

    from ssl4rl.curriculum import CurriculumDataset
    from ssl4rl.train.verl_launch import verl_command

    command = verl_command(
        str(levels_set), str(tiny_model), str(tmp_path), experiment="run", curriculum="adaptive",
        overrides=["data.filter_overlong_prompts=false", "actor_rollout_ref.rollout.n=4", "data.train_batch_size=4"],
    )  # fmt: skip
    cfg = _compose([arg for arg in command[3:] if not arg.startswith("--config")])  # a dead key raises here
    log = tmp_path / "run" / "curriculum.jsonl"
    assert cfg.data.custom_cls.path == "pkg://ssl4rl.curriculum" and cfg.data.custom_cls.name == "CurriculumDataset"
    assert cfg.data.curriculum.log == str(log) and cfg.reward.custom_reward_function.reward_kwargs.curriculum_log == str(log)
    assert (cfg.data.curriculum.low, cfg.data.curriculum.high, cfg.data.curriculum.rollout_n) == (0.2, 0.8, 4)
    assert cfg.data.dataloader_num_workers == 0

    processor = AutoProcessor.from_pretrained(tiny_model)
    train = create_rl_dataset(cfg.data.train_files, cfg.data, processor.tokenizer, processor)
    val = create_rl_dataset(cfg.data.val_files, cfg.data, processor.tokenizer, processor, is_train=False)
    assert type(train) is CurriculumDataset and train.adaptive and not val.adaptive
    assert train.follower.controller.window == 16  # one step: 4 prompts x 4 rollouts, one task

    def served():
        return [train[i]["extra_info"]["difficulty"] for i in range(len(train))]

    assert set(served()) == {"easy"}
    reward = get_custom_reward_fn(cfg)  # verl's own wrapper adds our reward kwargs
    item = train[0]
    truth = item["reward_model"]["ground_truth"]
    for _ in range(16):
        reward(item["data_source"], f"<answer>{truth}</answer>", truth, item["extra_info"])
    assert set(served()) == {"medium"} and len(log.read_text().splitlines()) == 16
    assert all(train[i]["extra_info"]["task"] == "rotation" for i in range(3))
    rows = pq.read_table(sorted(levels_set.glob("test-*.parquet"))).to_pylist()
    assert [val[i]["extra_info"]["index"] for i in range(len(val))] == [r["extra_info"]["index"] for r in rows]  # validation: as built
    # the log outlives the process: a resumed run's dataset starts where the curriculum was
    assert create_rl_dataset(cfg.data.train_files, cfg.data, processor.tokenizer, processor)[0]["extra_info"]["difficulty"] == "medium"


def test_cli_curriculum_options(levels_set, rotation_set, capsys):
    args = ["train", "--backend", "verl", "--data", str(levels_set), "--dry-run", "--curriculum", "adaptive", "--band", "0.3,0.7", "--window", "50"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "+data.curriculum.low=0.3" in printed and "+data.curriculum.high=0.7" in printed and "+data.curriculum.window=50" in printed
    assert main(["train", "--backend", "verl", "--data", str(levels_set), "--dry-run"]) == 0
    assert "curriculum" not in capsys.readouterr().out  # off by default
    for bad in (["--band", "0.9,0.1"], ["--band", "high"], ["--window", "0"]):
        assert main(args[:6] + ["--curriculum", "adaptive", *bad]) == 2
        assert capsys.readouterr().err.startswith("ssl4rl: error:")
    assert main(["train", "--backend", "verl", "--data", str(rotation_set), "--dry-run", "--curriculum", "adaptive"]) == 2
    assert "--difficulty easy,medium,hard" in capsys.readouterr().err  # one level: nothing to adapt


def test_trl_backend_runs_with_the_curriculum(tiny_model, levels_set, tmp_path, capsys):
    code = main([
        "train", "--backend", "trl", "--data", str(levels_set), "--model", str(tiny_model), "--out", str(tmp_path),
        "--batch-size", "4", "--mini-batch-size", "4", "--rollout-n", "4", "--lr", "5e-3", "--max-steps", "2",
        "--max-response-length", "16", "--logger", "none", "--curriculum", "adaptive", "--window", "4",
    ])  # fmt: skip
    assert code == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    records = [json.loads(line) for line in (tmp_path / "trl" / "curriculum.jsonl").read_text().splitlines()]
    assert len(printed) == 2 and len(records) == 2 * 4 * 4  # one outcome per completion
    assert [r["step"] for r in records] == [1] * 16 + [2] * 16  # every line names its step
    def fold(count):
        return _fold(records[:count], levels=("easy", "medium", "hard"), window=4).level("rotation")

    # TRL's loader serves the wrapper, not the mixed split: every row of a step is at the level of
    # the log before it (or, with the one batch the loader fetches ahead, before the step before)
    assert {r["level"] for r in records[:16]} == {"easy"}  # a run starts at the easiest level
    assert {r["level"] for r in records[16:]} <= {fold(0), fold(16)} and len({r["level"] for r in records[16:]}) == 1
    for step, line in enumerate(printed, 1):  # the printed level is the fold of the log so far
        assert line.endswith(f"level rotation={fold(16 * step)}")


def test_outcome_lines_carry_their_step(tmp_path):
    """verl's reward knows no step: with rollouts_per_step it is derived from the lines before."""
    from ssl4rl.curriculum import append_outcome, level_metrics

    log = tmp_path / "curriculum.jsonl"
    for i in range(7):
        append_outcome(log, "link", "easy", 1.0, rollouts_per_step=3)
    append_outcome(log, "link", "easy", 0.0, step=9)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1, 1, 1, 2, 2, 2, 3, 9]
    assert level_metrics({"link": "hard", "masking": "easy", "x": "default"}) == {"curriculum/link": 2.0, "curriculum/masking": 0.0}


def test_the_launcher_sets_the_rollouts_per_step_and_the_plugin_switch(tmp_path, rotation_set):
    from ssl4rl.build import BuildConfig, build
    from ssl4rl.train.verl_launch import verl_command, verl_env

    plain = verl_command(str(rotation_set), "m", profile="cpu", curriculum=None)
    assert not any("curriculum_step_rollouts" in arg for arg in plain) and "SSL4RL_CURRICULUM" not in verl_env(plain)
    data = tmp_path / "levels"
    build(BuildConfig(task="rotation", source=str(write_folder(tmp_path / "p", 6)), out=str(data), difficulty=["easy", "medium"]), progress_bar=False)
    command = verl_command(str(data), "m", profile="cpu", curriculum="adaptive", overrides=["data.train_batch_size=6"])
    assert command[-1] == "+reward.custom_reward_function.reward_kwargs.curriculum_step_rollouts=12"  # 6 prompts x 2 rollouts (cpu profile)
    assert verl_env(command)["SSL4RL_CURRICULUM"] == "1"


def test_trl_curriculum_lines_carry_the_step_with_a_text_model(tmp_path):
    """The quick twin of the test above (a tiny text model on graph puzzles): every outcome line
    names the TRL step whose rollouts it scored."""
    from ssl4rl.build import BuildConfig, build
    from ssl4rl.curriculum import CurriculumOptions
    from ssl4rl.tiny_lm import make_tiny_qwen2
    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    data = tmp_path / "levels"
    build(BuildConfig(task="link", source="synthetic", out=str(data), difficulty=["easy", "medium"], limit=16, test_fraction=0), progress_bar=False)
    cfg = LocalGRPOConfig(batch_size=2, mini_batch_size=2, rollout_n=2, max_steps=3, max_response_length=4, logger="none", save_freq=100)
    train_trl(str(data), str(make_tiny_qwen2(tmp_path / "lm")), str(tmp_path / "trl"), cfg, print_steps=False, curriculum=CurriculumOptions(0.2, 0.8, 4))
    records = [json.loads(line) for line in (tmp_path / "trl" / "curriculum.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1] * 4 + [2] * 4 + [3] * 4
