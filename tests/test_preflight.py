"""`ssl4rl check` and the check `ssl4rl train` runs first: each mistake is one line and exit 2,
found before Ray, vLLM or a model is loaded."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_folder

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.train import preflight


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    """20 images, 2 puzzles each: 32-40 train rows and a test split."""
    root = tmp_path_factory.mktemp("pre")
    out = root / "data"
    build(BuildConfig(task="rotation", source=str(write_folder(root / "photos", 20)), out=str(out), per_image=2, test_fraction=0.2), progress_bar=False)
    return out


def _check(capsys, *args) -> tuple[int, list[str], list[str]]:
    code = main(["check", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err.strip().splitlines()


def _train_rows(data) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in data.glob("train-*.parquet"))


def test_a_good_cpu_run_prints_its_steps_and_warnings(small_build, tiny_model, capsys):
    rows = _train_rows(small_build)
    code, out, err = _check(capsys, small_build, "--device", "cpu", "--model", tiny_model, "trainer.total_epochs=3", "trainer.save_freq=1000")
    assert code == 0 and not err
    assert out[0] == f"{rows} train rows: {rows // 4} steps per epoch, {3 * (rows // 4)} steps in all"  # cpu profile: 4 prompts per step
    assert any("trainer.save_freq=1000 is more than the run's" in line for line in out)
    code, out, _ = _check(capsys, small_build, "--device", "cpu", "--model", tiny_model, "trainer.total_training_steps=2")
    assert code == 0 and out[0].endswith(f"{rows // 4} steps per epoch, 2 steps in all")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cpu", "data.train_batch_size=512", "actor_rollout_ref.actor.ppo_mini_batch_size=128"], "fewer than one batch (data.train_batch_size=512)"),
        (["--device", "cpu", "data.max_prompt_length=64"], "over data.max_prompt_length=64: verl would drop such rows"),
        (["--device", "cpu", "--gpus", "3"], "must divide over the 3 GPUs"),
        (["--device", "cpu", "actor_rollout_ref.actor.ppo_mini_batch_size=3"], "must be a multiple of actor.ppo_mini_batch_size=3"),
        (["--device", "cpu", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=3"], "must be a whole multiple of actor.ppo_micro_batch_size_per_gpu=3"),
        (["--device", "cpu", "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=3"], "ref.log_prob_micro_batch_size_per_gpu=3"),
    ],
)
def test_verl_mistakes_are_one_line_each_and_exit_2(small_build, tmp_path, capsys, args, message):
    code, _, err = _check(capsys, small_build, "--model", tmp_path, *args)
    assert code == 2 and all(line.startswith("ssl4rl: error: ") for line in err) and any(message in line for line in err)


def test_gpus_the_machine_does_not_have(small_build, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 0)
    code, _, err = _check(capsys, small_build, "--model", tmp_path, "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8")
    assert code == 2 and any("no GPU is visible" in line for line in err)
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 2)
    code, _, err = _check(capsys, small_build, "--model", tmp_path, "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8")
    assert code == 2 and any("asks for 8 GPUs" in line and "--gpus 2" in line for line in err)
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 1)  # the 1gpu profile asks for one GPU itself
    code, _, err = _check(capsys, small_build, "--model", tmp_path, "--profile", "1gpu", "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8")
    assert code == 0, err


def test_no_train_split_and_unknown_tasks(small_build, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _check(capsys, empty, "--device", "cpu", "--model", tmp_path)
    assert code == 2 and "no train" in err[0]
    odd = tmp_path / "odd"
    shutil.copytree(small_build, odd)
    path = next(odd.glob("train-*.parquet"))
    table = pq.read_table(path)
    sources = pa.array(["ssl4rl/sudoku"] * table.num_rows)
    pq.write_table(table.set_column(table.schema.get_field_index("data_source"), "data_source", sources), path)
    code, _, err = _check(capsys, odd, "--device", "cpu", "--model", tmp_path)
    assert code == 2 and "ssl4rl/sudoku, which the reward does not know" in err[0]


def test_warnings_no_test_split_and_a_model_that_is_neither_folder_nor_hub_id(small_build, tmp_path, capsys, monkeypatch):
    no_test = tmp_path / "no-test"
    shutil.copytree(small_build, no_test)
    for path in no_test.glob("test-*.parquet"):
        path.unlink()
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 1)
    code, out, _ = _check(capsys, no_test, "--profile", "1gpu", "--model", "not/a/model", "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=8")
    assert code == 0
    assert any("no test split: validation runs on the training data" in line for line in out)
    assert any("not/a/model: neither a local folder nor a hub id" in line for line in out)


def test_trl_checks_rows_and_the_models_context(small_build, tiny_model, capsys):
    code, _, err = _check(capsys, small_build, "--backend", "trl", "--model", tiny_model, "--batch-size", "1000", "--mini-batch-size", "1000")
    assert code == 2 and "fewer than one batch (--batch-size 1000)" in err[0]
    code, _, err = _check(capsys, small_build, "--backend", "trl", "--model", tiny_model, "--max-response-length", "4090")
    assert code == 2 and "exceeds the model's context of 4096" in err[0]
    code, out, _ = _check(capsys, small_build, "--backend", "trl", "--model", tiny_model, "--batch-size", "4", "--mini-batch-size", "2", "--max-steps", "3")
    assert code == 0 and out[0].endswith("steps in all") and ", 3 steps in all" in out[0]


def test_train_runs_the_check_before_anything_starts(small_build, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--backend", "verl", "--device", "cpu", "--data", str(small_build), "--model", str(tmp_path), "--out", str(out), "data.max_prompt_length=64"]) == 2
    assert "data.max_prompt_length=64" in capsys.readouterr().err and not out.exists()
    assert main(["train", "--backend", "trl", "--data", str(small_build), "--model", str(tmp_path), "--out", str(out), "--batch-size", "1000", "--mini-batch-size", "1000"]) == 2
    assert "fewer than one batch" in capsys.readouterr().err and not out.exists()


# ---------------------------------------------------------------- text prompts in the model's own tokens
@pytest.fixture(scope="module")
def graph_build(tmp_path_factory):
    """kg-link rows counted by the build's estimate of Qwen's tokenizer (no --processor)."""
    out = tmp_path_factory.mktemp("graph") / "data"
    build(BuildConfig(task="kg-link", source="synthetic-kg", out=str(out)), progress_bar=False)
    return out


def _verl_drops(data, model, limit: int, split: str = "train") -> int:
    """Rows verl's own length filter drops (RLHFDataset, text path, in this process)."""
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    files = [str(p) for p in sorted(data.glob(f"{split}-*.parquet"))]
    config = {"max_prompt_length": limit, "filter_overlong_prompts_workers": 1, "cache_dir": str(data.parent / "verl-cache")}
    kept = len(RLHFDataset(files, AutoTokenizer.from_pretrained(model), config, None))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files) - kept


def _longest_exact(data, model) -> int:
    """The longest prompt as verl's text path counts it: the chat template, tokenized."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    prompts = [row[0]["content"] for p in sorted(data.glob("*-*.parquet")) for row in pq.read_table(p, columns=["prompt"]).column("prompt").to_pylist()]
    return max(len(tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": c}], add_generation_prompt=True, tokenize=False), add_special_tokens=False)["input_ids"]) for c in prompts)


def test_a_tokenizer_that_spends_more_tokens_than_the_estimate_is_caught(graph_build, text_model, capsys):
    """The tiny model's tokenizer spends about 1.5x the estimate's tokens: the manifest's count
    passes data.max_prompt_length=1024, verl would drop most rows; the check says how many."""
    import json

    assert json.loads((graph_build / "manifest.json").read_text())["prompt_tokens"]["train"]["max"] <= 1024
    longest, drops = _longest_exact(graph_build, text_model), _verl_drops(graph_build, text_model, 1024)
    test_drops, test_rows = _verl_drops(graph_build, text_model, 1024, "test"), sum(pq.ParquetFile(p).metadata.num_rows for p in graph_build.glob("test-*.parquet"))
    assert longest > 1024 and drops > 0 and test_drops > 0
    capsys.readouterr()  # verl's progress bars
    code, _, err = _check(capsys, graph_build, "--device", "cpu", "--model", text_model, "data.max_prompt_length=1024")
    assert code == 2 and len(err) == 1, err
    assert f"{drops} of {_train_rows(graph_build)} train rows and {test_drops} of {test_rows} test rows have more than 1024 tokens" in err[0] and f"longest {longest};" in err[0], err
    code, _, err = _check(capsys, graph_build, "--device", "cpu", "--model", text_model, f"data.max_prompt_length={longest}")
    assert code == 0 and not err


def test_rows_just_over_the_limit_are_all_found_and_far_ones_not_tokenized(graph_build, text_model):
    """Ranked by the estimate, only the top rows are tokenized unless more could be over; a
    limit a few tokens under the longest still finds every row verl drops."""
    from ssl4rl.train.prompt_lengths import TOP, split_lengths

    longest = _longest_exact(graph_build, text_model)
    limit = longest - 15
    train = {s.split: s for s in split_lengths(graph_build, str(text_model), limit)}["train"]
    assert train.over == _verl_drops(graph_build, text_model, limit) > 0 and train.longest <= longest
    far = {s.split: s for s in split_lengths(graph_build, str(text_model), 10 * longest)}["train"]
    assert far.over == 0 and far.counted == TOP < far.rows


def test_trl_context_uses_the_exact_count_and_an_unloadable_tokenizer_warns(graph_build, text_model, tmp_path, capsys):
    longest = _longest_exact(graph_build, text_model)
    code, _, err = _check(capsys, graph_build, "--backend", "trl", "--model", text_model, "--max-response-length", str(4096 - longest + 1))
    assert code == 2 and "exceed the model's context of 4096" in err[0] and f"longest {longest};" in err[0], err
    code, _, err = _check(capsys, graph_build, "--backend", "trl", "--model", text_model, "--max-response-length", str(4096 - longest))
    assert code == 0, err
    empty = tmp_path / "no-tokenizer"  # a model folder with its config and nothing else
    empty.mkdir()
    shutil.copy(text_model / "config.json", empty)
    code, out, _ = _check(capsys, graph_build, "--device", "cpu", "--model", empty, "data.max_prompt_length=1024")
    assert code == 0 and any("its tokenizer did not load" in line and "the build's count only" in line for line in out), out
