"""The paper's image and graph sources by name: which files to download and which column holds the image.

A preset is only knowledge about a layout; the readers (tsv, hf, folder) do the reading.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    description: str
    download: str  # which files `--data` points at
    url: str = ""  # where to download them
    image_columns: tuple[str, ...] | None = None  # for HF dataset folders; None = detect
    kind: str = "images"  # or "graph": a folder read by ssl4rl.sources.graph_tables, for graph tasks


PRESETS = {
    "mmbench": Preset(
        "MMBench (dev, English)",
        "VLMEvalKit's MMBench_DEV_EN.tsv, or a local copy of the HuggingFaceM4/MMBench dataset (base64 images)",
        url="https://opencompass.openxlab.space/utils/benchmarks/MMBench/MMBench_DEV_EN.tsv",
    ),
    "seedbench": Preset(
        "SEED-Bench (image part)",
        "VLMEvalKit's SEEDBench_IMG.tsv, or a local copy of lmms-lab/SEED-Bench (parquet)",
        url="https://opencompass.openxlab.space/utils/benchmarks/SEEDBench/SEEDBench_IMG.tsv",
    ),
    "blink": Preset(
        "BLINK (several images per question)",
        "VLMEvalKit's BLINK.tsv, or a local copy of BLINK-Benchmark/BLINK (parquet, image_1..image_4)",
        url="https://opencompass.openxlab.space/utils/VLMEval/BLINK.tsv",
    ),
    "mme-realworld": Preset(
        "MME-RealWorld (high-resolution photos)",
        "VLMEvalKit's MME-RealWorld.tsv, or a local copy of yifanzhang114/MME-RealWorld-Base64 (parquet)",
        url="https://huggingface.co/datasets/yifanzhang114/MME-RealWorld-Base64",
    ),
    "mmstar": Preset("MMStar", "VLMEvalKit's MMStar.tsv, or a local copy of Lin-Chen/MMStar (parquet)", url="https://opencompass.openxlab.space/utils/VLMEval/MMStar.tsv"),
    "realworldqa": Preset(
        "RealWorldQA", "VLMEvalKit's RealWorldQA.tsv, or a local copy of xai-org/RealworldQA (parquet)",
        url="https://opencompass.openxlab.space/utils/VLMEval/RealWorldQA.tsv",
    ),
    "vstar": Preset("V* Bench", "the image folders of craigwu/vstar_bench (direct_attributes/, relative_position/)", url="https://huggingface.co/datasets/craigwu/vstar_bench"),
    "imagenet": Preset("ImageNet-1k", "the ImageNet train/ or val/ folder (one sub-folder per class; free registration)", url="https://image-net.org/download.php"),
    "caparena": Preset(
        "CapArena", "the CapArena-Auto images: a folder of images, or a local copy of the dataset (parquet)",
        url="https://github.com/njucckevin/CapArena",
    ),
    "coco": Preset("COCO", "a COCO image folder such as train2017/ or val2017/ (flat folder of .jpg)", url="http://images.cocodataset.org/zips/val2017.zip"),
    # graphs (graph tasks: masking, neighbour, link, kg-link): folders of ssl4rl.sources.graph_tables
    "cora": Preset(
        "Cora with paper titles and abstracts (2,708 nodes, 7 classes)",
        "TAPE's cora_orig folder as it ships: cora.content, cora.cites, mccallum/cora/papers and mccallum/cora/extractions/",
        url="https://github.com/XiaoxinHe/TAPE", kind="graph",
    ),
    "pubmed": Preset(
        "PubMed diabetes papers with titles and abstracts (19,717 nodes, 3 classes)",
        "TAPE's PubMed_orig folder as it ships: data/Pubmed-Diabetes.NODE.paper.tab, data/Pubmed-Diabetes.DIRECTED.cites.tab and pubmed.json",
        url="https://github.com/XiaoxinHe/TAPE", kind="graph",
    ),
    "wikics": Preset(
        "Wiki-CS: Wikipedia computer-science articles (11,701 nodes, 10 classes)",
        "Wiki-CS's dataset folder as it ships: data.json and metadata.json (its published test split is kept)",
        url="https://github.com/pmernyei/wiki-cs-dataset", kind="graph",
    ),
    "products": Preset(
        "ogbn-products subset with product descriptions (TAPE's 54k-node subset, 47 classes)",
        "TAPE's ogbn-products subset as it ships: ogbn-products_subset.csv and ogbn-products_subset.pt (read with torch, no torch_geometric; its test_mask is kept), in one folder or TAPE's dataset/ folder",
        url="https://github.com/XiaoxinHe/TAPE", kind="graph",
    ),
    "fb15k237": Preset(
        "FB15k-237 knowledge graph with entity names (14,541 entities, 237 relations)",
        "a folder with train.txt, valid.txt, test.txt (head, relation, tail; tab-separated) and entity2text.txt, as in KG-BERT's data/FB15k-237",
        url="https://github.com/yao8839836/kg-bert", kind="graph",
    ),
    "wn18rr": Preset(
        "WN18RR knowledge graph with WordNet synset names (40,943 entities, 11 relations)",
        "a folder with train.txt, valid.txt, test.txt and entity2text.txt, as in KG-BERT's data/WN18RR",
        url="https://github.com/yao8839836/kg-bert", kind="graph",
    ),
}
