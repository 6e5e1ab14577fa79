"""The paper's image sources by name: which files to download and which column holds the image.

A preset is only knowledge about a layout; the readers (tsv, hf, folder) do the reading.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    description: str
    download: str  # where a user gets the files `--data` points at
    image_columns: tuple[str, ...] | None = None  # for HF dataset folders; None = detect


PRESETS = {
    "mmbench": Preset(
        "MMBench (dev, English)",
        "VLMEvalKit's MMBench_DEV_EN.tsv, or a local copy of the HuggingFaceM4/MMBench dataset (base64 images)",
    ),
    "seedbench": Preset(
        "SEED-Bench (image part)",
        "VLMEvalKit's SEEDBench_IMG.tsv, or a local copy of lmms-lab/SEED-Bench (parquet)",
    ),
    "blink": Preset(
        "BLINK (several images per question)",
        "VLMEvalKit's BLINK.tsv, or a local copy of BLINK-Benchmark/BLINK (parquet, image_1..image_4)",
    ),
    "mme-realworld": Preset(
        "MME-RealWorld (high-resolution photos)",
        "VLMEvalKit's MME-RealWorld.tsv, or a local copy of yifanzhang114/MME-RealWorld-Base64 (parquet)",
    ),
    "mmstar": Preset("MMStar", "VLMEvalKit's MMStar.tsv, or a local copy of Lin-Chen/MMStar (parquet)"),
    "realworldqa": Preset(
        "RealWorldQA", "VLMEvalKit's RealWorldQA.tsv, or a local copy of xai-org/RealworldQA (parquet)"
    ),
    "vstar": Preset("V* Bench", "the image folders of craigwu/vstar_bench (direct_attributes/, relative_position/)"),
    "imagenet": Preset("ImageNet-1k", "the ImageNet train/ or val/ folder (one sub-folder per class)"),
    "caparena": Preset(
        "CapArena", "the CapArena-Auto images: a folder of images, or a local copy of the dataset (parquet)"
    ),
    "coco": Preset("COCO", "a COCO image folder such as train2017/ or val2017/ (flat folder of .jpg)"),
}
