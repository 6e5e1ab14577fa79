"""What the verl path is written against: the pinned verl version, our Hydra config (its folder and
name) and the settings a launch ends up with (the config, then the command's overrides).

The launcher composes commands from it and `ssl4rl check` reads the same settings back.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

VERL_VERSION = "0.9.1"  # the version the plugin and the config are written and tested for
CONFIG_NAME = "verl_grpo"
# verl 0.9.1's defaults for the keys `ssl4rl check` reads that configs/verl_grpo.yaml does not set.
VERL_DEFAULTS = {"trainer.total_training_steps": None, "data.val_files": None}


def config_dir() -> Path:
    return Path(str(resources.files("ssl4rl.configs")))


def verl_settings(command: list[str]) -> dict:
    """The dotted keys the launch sets: configs/verl_grpo.yaml, then the command's overrides (last wins)."""
    settings = dict(VERL_DEFAULTS)

    def flatten(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                flatten(value, f"{prefix}{key}.")
            else:
                settings[f"{prefix}{key}"] = value

    config = yaml.safe_load((config_dir() / f"{CONFIG_NAME}.yaml").read_text())
    config.pop("hydra", None), config.pop("defaults", None)
    flatten(config)
    for arg in command:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("-") and "." in key:
            settings[key.lstrip("+~")] = yaml.safe_load(value) if value else None
    return settings
