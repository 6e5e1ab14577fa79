"""TRL trains on every puzzle at once: prompts of different lengths and image counts in one
batch, and every forward sees exactly the image tokens its image grid expects."""

from __future__ import annotations

import itertools

import pytest
from conftest import write_folder

from ssl4rl.build import BuildConfig, build
from ssl4rl.tasks import IMAGE_TASKS as TASKS


@pytest.fixture(scope="module")
def every_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("all")
    photos = write_folder(root / "photos", 36, size=(224, 192))  # 36 images: each task drawn for some (seed 0)
    out = root / "data"
    manifest = build(BuildConfig(task="mix", source=str(photos), out=str(out), tasks={t: 1.0 for t in TASKS}, test_fraction=0.0), progress_bar=False)
    assert {key.split(":")[0] for key in manifest["answers"]["train"]} == set(TASKS)
    return out


def test_one_trl_step_on_a_build_of_every_task_keeps_image_tokens_and_grids_in_step(every_task, tiny_model, tmp_path, monkeypatch):
    import torch
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl

    from ssl4rl.train.trl_grpo import LocalGRPOConfig, train_trl

    seen = []
    original = modeling_qwen2_5_vl.Qwen2_5_VLModel.get_rope_index

    def checked(self, input_ids=None, mm_token_type_ids=None, image_grid_thw=None, *args, attention_mask=None, **kwargs):
        if image_grid_thw is not None:  # each sample's runs of image tokens, in order, are the grid's images
            merged = (image_grid_thw.prod(-1) // self.config.vision_config.spatial_merge_size**2).tolist()
            runs = []
            for b in range(input_ids.shape[0]):
                keep = attention_mask[b].bool() if attention_mask is not None else torch.ones_like(input_ids[b], dtype=torch.bool)
                pads = (input_ids[b][keep] == self.config.image_token_id).tolist()
                types = (mm_token_type_ids[b][keep] == 1).tolist()
                assert pads == types, "image-pad tokens and the image token types disagree"
                runs += [len(list(group)) for is_image, group in itertools.groupby(pads) if is_image]
            assert runs == merged
            seen.append(len(runs))
        return original(self, input_ids, mm_token_type_ids, image_grid_thw, *args, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(modeling_qwen2_5_vl.Qwen2_5_VLModel, "get_rope_index", checked)
    cfg = LocalGRPOConfig(batch_size=12, mini_batch_size=12, rollout_n=2, max_steps=1, max_response_length=12, lr=1e-3, logger="none")
    history = train_trl(str(every_task), str(tiny_model), str(tmp_path / "trl"), cfg, print_steps=False)
    assert len(history) == 1 and seen and max(seen) > 12  # multi-image rows went through the check
