"""Facts written once: the build folder's layout lives in ssl4rl.schema, and the defaults that a
file outside Python repeats (the verl config, pyproject's pin) agree with the one in the code."""

from __future__ import annotations

import re
from pathlib import Path

import ssl4rl
from ssl4rl.budget import DEFAULT_MAX_PROMPT_TOKENS
from ssl4rl.build import BuildConfig
from ssl4rl.schema import MANIFEST, shard_name, shard_number, split_files
from ssl4rl.train.verl_config import VERL_VERSION, verl_settings

PACKAGE = Path(ssl4rl.__file__).parent


def test_the_default_prompt_budget_is_the_verl_configs_prompt_limit():
    assert BuildConfig(task="rotation", source="samples", out="x").max_prompt_tokens == DEFAULT_MAX_PROMPT_TOKENS
    assert verl_settings([])["data.max_prompt_length"] == DEFAULT_MAX_PROMPT_TOKENS


def test_pyprojects_verl_pin_is_the_one_the_code_checks():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert re.findall(r'"verl==([^"]+)"', pyproject) == [VERL_VERSION]


def test_only_the_schema_spells_the_build_folders_file_names():
    spelled = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "schema.py" and re.search(r'glob\([^)]*-\*\.parquet|/ "manifest\.json"', path.read_text())
    }
    assert spelled == set()


def test_the_builder_names_no_modality():
    """Items, tasks, shards, seeds, resume and the manifest: what an item is belongs to ssl4rl.modalities."""
    assert not re.findall(r"image|graph|kg", (PACKAGE / "build.py").read_text(), re.IGNORECASE)


def test_shard_names_read_back(tmp_path):
    for split, number in (("train", 0), ("test", 12)):
        (tmp_path / shard_name(split, number)).touch()
    (tmp_path / "train-notes.parquet").touch()
    (tmp_path / MANIFEST).touch()
    assert [p.name for p in split_files(tmp_path)] == ["train-00000.parquet", "train-notes.parquet", "test-00012.parquet"]
    assert [shard_number(p.name) for p in split_files(tmp_path)] == [0, None, 12]


def test_every_subpackage_is_installed():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(ssl4rl[.a-z_]*)"', re.search(r"^packages = \[(.*)\]$", pyproject, re.M).group(1)))
    found = {".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py")}
    assert found <= listed
