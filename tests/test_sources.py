"""Source readers on fixtures built here: VLMEvalKit TSV, Hugging Face folders (parquet and
`save_to_disk`), image folders, presets, the bundled samples, and a build end to end."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ssl4rl.build import BuildConfig, build
from ssl4rl.errors import UserError
from ssl4rl.images import decode
from ssl4rl.sources import FolderSource, HFSource, SamplesSource, TsvSource, open_source

datasets = pytest.importorskip("datasets")

W, H = 96, 80


# ---------------------------------------------------------------- helpers
def make_array(seed: int, kind: str = "noise", size: tuple[int, int] = (W, H)) -> np.ndarray:
    """An RGB array (height, width, 3): random noise, or a gradient that differs per seed."""
    width, height = size
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    colour = rng.uniform(0.2, 1.0, 3)[None, None, :]
    return ((x * colour + y * (1 - colour) + seed * 7) % 256).astype(np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    """Like pandas' to_csv(sep='\\t'): minimal quoting, so questions may hold tabs and newlines."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_all(reader) -> list[tuple[str, bytes | None, str | None]]:
    return [(raw.source_id, raw.data, raw.skip) for raw in reader]


def image_feature_dict(data: bytes | None):
    return None if data is None else {"bytes": data, "path": None}


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return [encode(make_array(seed, "noise" if seed % 2 else "gradient")) for seed in range(8)]


@pytest.fixture(scope="module")
def arrays() -> list[np.ndarray]:
    return [make_array(seed, "noise" if seed % 2 else "gradient") for seed in range(8)]


# ---------------------------------------------------------------- VLMEvalKit TSV
@pytest.fixture
def mmbench_tsv(tmp_path, pngs) -> tuple[Path, dict]:
    """An MMBench-like TSV: plain rows, a JPEG row, a reference row, a BLINK-like list row and
    an empty image; `expected` maps each id to (bytes or None, skip)."""
    jpeg = encode(make_array(100, "gradient"), "JPEG")
    rows = [
        ["0", 'What is "this"?\twith a tab\nand a newline', b64(pngs[0])],
        ["1", "A JPEG row", b64(jpeg)],
        ["2", "Reuses row 0's image", "0"],
        ["3", "Two images", repr([b64(pngs[2]), b64(pngs[3])])],
        ["4", "No image", ""],
        ["5", "Last", b64(pngs[5])],
    ]
    expected = {
        "0": (pngs[0], None),
        "1": (jpeg, None),
        "2": (None, "image-reference"),
        "3/0": (pngs[2], None),
        "3/1": (pngs[3], None),
        "4": (None, "missing-image"),
        "5": (pngs[5], None),
    }
    return write_tsv(tmp_path / "MMBench_DEV_EN.tsv", ["index", "question", "image"], rows), expected


def test_tsv_ids_bytes_references_and_lists(mmbench_tsv, arrays):
    path, expected = mmbench_tsv
    reader = open_source(str(path))
    assert isinstance(reader, TsvSource) and reader.kind == "tsv"
    got = read_all(reader)
    assert [source_id for source_id, _, _ in got] == list(expected)
    for source_id, data, skip in got:
        want_data, want_skip = expected[source_id]
        assert skip == want_skip, source_id
        assert data == want_data, source_id
    by_id = {source_id: data for source_id, data, _ in got}
    # PNGs decode back to the exact pixels that were written, also through ssl4rl's decoder
    for source_id, seed in (("0", 0), ("3/0", 2), ("3/1", 3), ("5", 5)):
        assert np.array_equal(pixels(by_id[source_id]), arrays[seed])
        assert np.array_equal(np.asarray(decode(by_id[source_id]).pixels), arrays[seed])
    # reading again gives the same ids and bytes (the reader streams, it is not consumed)
    assert read_all(reader) == got


def test_tsv_reference_boundary_is_64_chars(tmp_path, pngs):
    path = write_tsv(
        tmp_path / "t.tsv",
        ["index", "image"],
        [["a", "x" * 64], ["b", b64(pngs[1])]],
    )
    got = read_all(open_source(str(path)))
    assert got == [("a", None, "image-reference"), ("b", pngs[1], None)]


def test_tsv_blink_like_list_column_with_more_images(tmp_path, pngs):
    rows = [[str(i), repr([b64(pngs[(i + k) % len(pngs)]) for k in range(i + 1)])] for i in range(4)]
    path = write_tsv(tmp_path / "BLINK.tsv", ["index", "image"], rows)
    got = read_all(open_source(str(path)))
    assert [source_id for source_id, _, _ in got] == [f"{i}/{k}" for i in range(4) for k in range(i + 1)]
    for source_id, data, skip in got:
        i, k = map(int, source_id.split("/"))
        assert skip is None and data == pngs[(i + k) % len(pngs)]


def test_tsv_missing_image_column_names_file_and_column(tmp_path, pngs):
    path = write_tsv(tmp_path / "noimage.tsv", ["index", "question", "picture"], [["0", "q", b64(pngs[0])]])
    with pytest.raises(UserError) as error:
        open_source(str(path))
    message = str(error.value)
    assert str(path) in message and "'image'" in message


def test_tsv_image_column_can_be_named(tmp_path, pngs):
    path = write_tsv(tmp_path / "renamed.tsv", ["index", "picture"], [["7", b64(pngs[4])]])
    assert read_all(open_source(str(path), image_columns=["picture"])) == [("7", pngs[4], None)]


def test_folder_with_one_tsv_reads_the_tsv(mmbench_tsv):
    path, expected = mmbench_tsv
    reader = open_source(str(path.parent))
    assert isinstance(reader, TsvSource)
    assert [source_id for source_id, _, _ in read_all(reader)] == list(expected)


# ---------------------------------------------------------------- Hugging Face folders
def test_hf_parquet_base64_column(tmp_path, pngs):
    """HuggingFaceM4/MMBench: a base64 string `image`; more rows than one record batch."""
    n = 37
    images = [pngs[i % len(pngs)] for i in range(n)]
    table = pa.table({"index": list(range(n)), "question": [f"q{i}" for i in range(n)], "image": [b64(d) for d in images]})
    (tmp_path / "mmbench" / "data").mkdir(parents=True)
    pq.write_table(table, tmp_path / "mmbench" / "data" / "dev-00000-of-00001.parquet", row_group_size=10)
    (tmp_path / "mmbench" / "README.md").write_text("dataset card")
    reader = open_source(str(tmp_path / "mmbench"))
    assert isinstance(reader, HFSource) and reader.image_columns == ["image"]
    got = read_all(reader)
    assert [source_id for source_id, _, _ in got] == [f"data/dev-00000-of-00001.parquet:{i}" for i in range(n)]
    assert [data for _, data, _ in got] == images
    assert all(skip is None for _, _, skip in got)
    assert read_all(reader) == got


def test_hf_datasets_image_parquet_hub_layout(tmp_path, pngs, arrays):
    """Parquet written by `datasets` with an Image() column, in a hub-like data/ layout, two splits."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    root = tmp_path / "hub"
    # bytes given as they are: stored untouched
    test = datasets.Dataset.from_dict(
        {"image": [image_feature_dict(pngs[i]) for i in range(3)], "label": [0, 1, 2]}, features=features
    )
    test.to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    # PIL images: datasets encodes them itself; pixels must survive
    train = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(arrays[i]) for i in (4, 5)], "label": [4, 5]}, features=features
    )
    train.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))

    reader = open_source(str(root))
    assert isinstance(reader, HFSource) and reader.image_columns == ["image"]
    got = read_all(reader)
    assert [source_id for source_id, _, _ in got] == [
        "data/test-00000-of-00001.parquet:0",
        "data/test-00000-of-00001.parquet:1",
        "data/test-00000-of-00001.parquet:2",
        "data/train-00000-of-00001.parquet:0",
        "data/train-00000-of-00001.parquet:1",
    ]
    assert [data for _, data, _ in got[:3]] == pngs[:3]
    for (_, data, skip), seed in zip(got[3:], (4, 5)):
        assert skip is None and np.array_equal(pixels(data), arrays[seed])
    assert read_all(open_source(str(root))) == got  # ids stable across openings

    # a single parquet file can be named directly; ids then use the file name
    single = read_all(open_source(str(root / "data" / "test-00000-of-00001.parquet")))
    assert [(i, d) for i, d, _ in single] == [(f"test-00000-of-00001.parquet:{k}", pngs[k]) for k in range(3)]


def test_hf_save_to_disk_arrow(tmp_path, pngs, arrays):
    """`DatasetDict.save_to_disk`: Arrow stream files per split; datasets' cache-* files are not data."""
    features = datasets.Features({"image": datasets.Image(), "id": datasets.Value("string")})
    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"image": [image_feature_dict(pngs[i]) for i in range(4)], "id": list("abcd")}, features=features
            ),
            "test": datasets.Dataset.from_dict(
                {"image": [Image.fromarray(arrays[6])], "id": ["e"]}, features=features
            ),
        }
    )
    root = tmp_path / "saved"
    dsd.save_to_disk(str(root))
    (root / "train" / "cache-0123456789abcdef.arrow").write_bytes(b"not an arrow file")

    reader = open_source(str(root))
    assert isinstance(reader, HFSource)
    assert all(f.suffix == ".arrow" and not f.name.startswith("cache-") for f in reader.files)
    got = read_all(reader)
    test_files = sorted((root / "test").glob("data-*.arrow"))
    train_files = sorted((root / "train").glob("data-*.arrow"))
    assert len(test_files) == len(train_files) == 1
    assert [source_id for source_id, _, _ in got] == [f"test/{test_files[0].name}:0"] + [
        f"train/{train_files[0].name}:{i}" for i in range(4)
    ]
    assert np.array_equal(pixels(got[0][1]), arrays[6])
    assert [data for _, data, _ in got[1:]] == pngs[:4]
    assert read_all(open_source(str(root))) == got


def test_hf_blink_like_several_image_columns(tmp_path, pngs):
    """BLINK: image_1..image_4, later ones often None; None yields nothing."""
    columns = ["image_1", "image_2", "image_3", "image_4"]
    grid = [
        [pngs[0], pngs[1], None, None],
        [pngs[2], None, None, None],
        [pngs[3], pngs[4], pngs[5], pngs[6]],
    ]
    features = datasets.Features({**{c: datasets.Image() for c in columns}, "question": datasets.Value("string")})
    data = {c: [image_feature_dict(row[k]) for row in grid] for k, c in enumerate(columns)}
    data["question"] = ["q0", "q1", "q2"]
    path = tmp_path / "blink" / "Art_Style" / "val-00000-of-00001.parquet"
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))

    expected = [
        (f"Art_Style/val-00000-of-00001.parquet:{row}:{c}", grid[row][k], None)
        for row in range(3)
        for k, c in enumerate(columns)
        if grid[row][k] is not None
    ]
    named = open_source(str(tmp_path / "blink"), image_columns=columns)
    assert read_all(named) == expected
    # without names, the Image()-typed columns are found by type, in schema order
    detected = open_source(str(tmp_path / "blink"))
    assert detected.image_columns == columns
    assert read_all(detected) == expected
    # the preset reads the same
    preset = open_source("blink", data=str(tmp_path / "blink"))
    assert preset.preset == "blink" and read_all(preset) == expected


@pytest.mark.parametrize("column", ["images", "frames"])  # 'images' by name, 'frames' by type
def test_hf_list_of_images_column(tmp_path, pngs, column):
    lists = [[pngs[0], pngs[1]], [], [pngs[2], pngs[3], pngs[4]], None]
    features = datasets.Features({column: [datasets.Image()], "n": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict(
        {column: [None if row is None else [image_feature_dict(d) for d in row] for row in lists], "n": [0, 1, 2, 3]},
        features=features,
    )
    ds.to_parquet(str(tmp_path / "multi" / "train.parquet"))
    reader = open_source(str(tmp_path / "multi"))
    assert reader.image_columns == [column]
    expected = [(f"train.parquet:{row}/{k}", d, None) for row, items in enumerate(lists) for k, d in enumerate(items or [])]
    missing = [(f"train.parquet:{row}", None, "missing-image") for row in (1, 3)]  # no image at all: counted
    assert read_all(reader) == expected[:2] + missing[:1] + expected[2:] + missing[1:]


def test_hf_image_path_relative_to_the_file(tmp_path, pngs):
    """An Image() value that holds a path (not bytes) is read from beside the data file."""
    root = tmp_path / "paths"
    (root / "imgs").mkdir(parents=True)
    (root / "imgs" / "a.png").write_bytes(pngs[1])
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": None, "path": "imgs/a.png"}, {"bytes": None, "path": "imgs/gone.png"}], struct)})
    pq.write_table(table, root / "data.parquet")
    assert read_all(open_source(str(root))) == [("data.parquet:0", pngs[1], None), ("data.parquet:1", None, "missing-image")]


# ---------------------------------------------------------------- image folders
def test_imagenet_like_class_folders(tmp_path, arrays):
    root = tmp_path / "train"
    files = {
        "n01440764/a_0001.JPEG": encode(arrays[0], "JPEG"),
        "n01440764/b_0002.jpg": encode(arrays[1], "JPEG"),
        "n01443537/c_0003.png": encode(arrays[2]),
        "n01443537/deeper/d_0004.PNG": encode(arrays[3]),
        "n01443537/e_0005.webp": encode(arrays[4], "WEBP"),
    }
    ignored = {
        "n01443537/.hidden.jpg": encode(arrays[5], "JPEG"),
        ".cache/n0/x.png": encode(arrays[6]),
        "n01440764/._a_0001.JPEG": b"\x00\x05\x16\x07 AppleDouble",
        "n01440764/notes.txt": b"labels",
        "LOC_synset_mapping.txt": b"n01440764 tench",
        "n01443537/e_0005.json": b"{}",
    }
    for name, data in {**files, **ignored}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "n01443537" / "folder.jpg").mkdir()  # a folder named like an image is not a file

    reader = open_source(str(root))
    assert isinstance(reader, FolderSource) and reader.kind == "folder"
    got = read_all(reader)
    assert [source_id for source_id, _, _ in got] == sorted(files)
    assert all(data == files[source_id] and skip is None for source_id, data, skip in got)
    assert np.array_equal(pixels(dict((i, d) for i, d, _ in got)["n01443537/deeper/d_0004.PNG"]), arrays[3])


def test_coco_like_flat_folder(tmp_path, arrays):
    # the folder itself may sit below a hidden folder: only parts inside it count
    root = tmp_path / ".datasets" / "val2017"
    root.mkdir(parents=True)
    names = [f"{n:012d}.jpg" for n in (785, 139, 632, 724, 285)]
    for k, name in enumerate(names):
        (root / name).write_bytes(encode(arrays[k], "PNG"))  # content need not match the suffix
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "instances_val2017.json").write_text("{}")
    got = read_all(open_source(str(root)))
    assert [source_id for source_id, _, _ in got] == sorted(names)
    for source_id, data, _ in got:
        assert np.array_equal(pixels(data), arrays[names.index(source_id)])


def test_single_image_file_is_a_source(tmp_path, pngs):
    path = tmp_path / "one.png"
    path.write_bytes(pngs[0])
    assert read_all(open_source(str(path))) == [("one.png", pngs[0], None)]


# ---------------------------------------------------------------- presets and samples
def test_preset_with_data(mmbench_tsv):
    path, expected = mmbench_tsv
    reader = open_source("mmbench", data=path)
    assert isinstance(reader, TsvSource) and reader.preset == "mmbench"
    assert read_all(reader) == read_all(open_source(str(path)))
    assert [source_id for source_id, _, _ in read_all(reader)] == list(expected)


def test_preset_without_data_names_the_flag():
    with pytest.raises(UserError) as error:
        open_source("mmbench")
    assert "--data" in str(error.value) and "mmbench" in str(error.value)


def test_unknown_source_with_data(mmbench_tsv):
    with pytest.raises(UserError, match="unknown source 'nosuch'"):
        open_source("nosuch", data=mmbench_tsv[0])


def test_samples_are_real_photos():
    reader = open_source("samples")
    assert isinstance(reader, SamplesSource) and reader.kind == "samples"
    got = read_all(reader)
    ids = [source_id for source_id, _, _ in got]
    assert len(set(ids)) == len(ids) >= 10
    decoded = [decode(data, source_id=source_id) for source_id, data, skip in got if skip is None]
    assert len(decoded) == len(got)
    assert all(image.pixels.mode == "RGB" for image in decoded)
    assert sum(min(image.size) >= 256 for image in decoded) >= 10
    assert len({hashlib.sha256(data).digest() for _, data, _ in got}) == len(got)  # all different photos


# ---------------------------------------------------------------- end to end
def _rows_by_split(out: Path) -> dict[str, list[dict]]:
    rows = {}
    for split in ("train", "test"):
        rows[split] = [
            row["extra_info"]
            for path in sorted(out.glob(f"{split}-*.parquet"))
            for row in pq.read_table(path).to_pylist()
        ]
        assert all(info["split"] == split for info in rows[split])
    return rows


def test_build_counts_duplicates_and_references(tmp_path, pngs):
    rows = [
        ["10", b64(pngs[0])],
        ["11", b64(pngs[1])],
        ["12", b64(pngs[0])],  # the same image under a second index
        ["13", "10"],  # a reference to row 10
        ["14", b64(pngs[2])],
    ]
    path = write_tsv(tmp_path / "dups.tsv", ["index", "image"], rows)
    out = tmp_path / "out"
    manifest = build(
        BuildConfig(task="rotation", source=str(path), out=str(out), test_fraction=0.5), workers=1, progress_bar=False
    )
    assert manifest["skipped"] == {"duplicate": 1, "image-reference": 1}
    assert manifest["rows"]["train"] + manifest["rows"]["test"] == 3
    assert json.loads((out / "manifest.json").read_text())["skipped"] == manifest["skipped"]
    ids = sorted(info["source_id"] for split_rows in _rows_by_split(out).values() for info in split_rows)
    assert ids == ["10", "11", "14"]  # the first occurrence is kept


def _dup_tsv(path: Path, images: list[bytes], order: list[int], prefix: str) -> dict[str, bytes]:
    """Rows `<prefix><n>` holding images[order[n]]; returns id -> content."""
    ids = {f"{prefix}{n}": images[k] for n, k in enumerate(order)}
    write_tsv(path, ["index", "question", "image"], [[i, "q", b64(d)] for i, d in ids.items()])
    return ids


def test_duplicates_never_cross_splits(tmp_path):
    unique = [encode(make_array(1000 + k, "noise" if k % 3 else "gradient")) for k in range(24)]
    order = list(range(24)) + [0, 5, 5, 11, 17, 23]  # 30 rows, 6 of them exact repeats
    ids = _dup_tsv(tmp_path / "a.tsv", unique, order, "r")
    out = tmp_path / "out_a"
    manifest = build(
        BuildConfig(task="rotation", source=str(tmp_path / "a.tsv"), out=str(out), test_fraction=0.5),
        workers=1,
        progress_bar=False,
    )
    assert manifest["skipped"] == {"duplicate": 6}
    rows = _rows_by_split(out)
    assert manifest["rows"] == {split: len(rows[split]) for split in rows}
    content = {split: [hashlib.sha256(ids[info["source_id"]]).hexdigest() for info in rows[split]] for split in rows}
    assert rows["train"] and rows["test"], "30 images at test_fraction 0.5 should fill both splits"
    assert not set(content["train"]) & set(content["test"])
    all_content = content["train"] + content["test"]
    assert len(all_content) == len(set(all_content)) == 24  # every unique image exactly once
    # each duplicated image appears once, under its first index
    kept = {info["source_id"] for split_rows in rows.values() for info in split_rows}
    for k in (0, 5, 11, 17, 23):
        holders = [i for i, d in ids.items() if d == unique[k]]
        assert len(holders) >= 2 and [i for i in holders if i in kept] == [holders[0]]

    # the split depends on the content only: other indexes and another order, same split per image
    reorder = list(reversed(order))
    ids_b = _dup_tsv(tmp_path / "b.tsv", unique, reorder, "other-")
    out_b = tmp_path / "out_b"
    build(
        BuildConfig(task="rotation", source=str(tmp_path / "b.tsv"), out=str(out_b), test_fraction=0.5, seed=7),
        workers=1,
        progress_bar=False,
    )
    rows_b = _rows_by_split(out_b)
    split_a = {c: split for split in content for c in content[split]}
    split_b = {hashlib.sha256(ids_b[info["source_id"]]).hexdigest(): split for split in rows_b for info in rows_b[split]}
    assert split_a == split_b
