"""The cora, pubmed, wikics and products presets read the text-attributed releases as they ship
(TAPE's cora_orig, PubMed_orig and ogbn-products subset, Wiki-CS's dataset folder), written here
in those layouts."""

from __future__ import annotations

import collections
import csv
import enum
import json
import sys
import types
import weakref

import numpy as np
import pyarrow.parquet as pq
import pytest

from ssl4rl.build import BuildConfig, build
from ssl4rl.cli import main
from ssl4rl.eval.graph import graph_items
from ssl4rl.sources.graph_source import GraphRef, load_graph

PAPERS = [("31336", "Neural_Networks"), ("1061127", "Rule_Learning"), ("1106406", "Neural_Networks"), ("13195", "Theory"), ("37879", "Theory")]
CITES = [("31336", "1061127"), ("1061127", "1106406"), ("13195", "37879"), ("37879", "31336"), ("31336", "999")]  # 999: unknown


def write_cora(folder):
    (folder / "mccallum" / "cora" / "extractions").mkdir(parents=True)
    (folder / "cora.content").write_text("".join(f"{p}\t0\t1\t0\t{label}\n" for p, label in PAPERS))
    (folder / "cora.cites").write_text("".join(f"{a}\t{b}\n" for a, b in CITES))
    (folder / "mccallum" / "cora" / "papers").write_text("".join(f"{p}\thttp:##x##paper{p}.ps\tsome citation\n" for p, _ in PAPERS))
    for p, _ in PAPERS:
        (folder / "mccallum" / "cora" / "extractions" / f"http:##x##paper{p}.ps").write_text(
            f"URL: http://x/paper{p}.ps\nTitle: Paper {p} title\nAuthor: Someone\nAbstract: About paper {p} and its method.\n")


def write_pubmed(folder):
    (folder / "data").mkdir(parents=True)
    ids = ["12187484", "2344352", "14654069", "16443886"]
    (folder / "data" / "Pubmed-Diabetes.NODE.paper.tab").write_text(
        "NODE\tpaper\ncat=1,2,3:label\tnumeric:w-rat:0.0\tnumeric:w-common:0.0\n"
        + "".join(f"{p}\tlabel={1 + i % 3}\tw-rat=0.1\tw-common=0.2\tsummary=w-rat,w-common\n" for i, p in enumerate(ids)))
    (folder / "data" / "Pubmed-Diabetes.DIRECTED.cites.tab").write_text(
        "DIRECTED\tcites\nNO_FEATURES\n"
        + "".join(f"{k}\tpaper:{a}\t|\tpaper:{b}\n" for k, (a, b) in enumerate([(ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[3]), (ids[3], ids[0])])))
    (folder / "pubmed.json").write_text(json.dumps([{"PMID": p, "TI": f"Study {p}", "AB": f"Insulin results {p}."} for p in reversed(ids)]))
    return ids


def write_wikics(folder, n: int = 40):
    folder.mkdir(parents=True, exist_ok=True)
    links = [[(i + 1) % n, (i + 5) % n] for i in range(n)]
    data = {"features": [[0.0] for _ in range(n)], "labels": [i % 4 for i in range(n)], "links": links,
            "train_masks": [[i % 2 == 0 for i in range(n)]], "val_masks": [[False] * n], "stopping_masks": [[False] * n],
            "test_mask": [i % 2 == 1 for i in range(n)]}  # fmt: skip
    meta = {"labels": {str(k): f"Category {k}" for k in range(4)},
            "nodes": [{"id": 1000 + i, "title": f"Article {i}", "label": f"Category {i % 4}", "outlinks": [], "tokens": ["graph", "theory", str(i)]} for i in range(n)]}  # fmt: skip
    (folder / "data.json").write_text(json.dumps(data))
    (folder / "metadata.json").write_text(json.dumps(meta))
    return data


def test_cora_reads_tapes_cora_orig_as_it_ships(tmp_path):
    write_cora(tmp_path)
    graph = load_graph(GraphRef("cora", str(tmp_path)))
    assert graph.ids == [p for p, _ in PAPERS]
    assert graph.texts[0] == "Paper 31336 title. About paper 31336 and its method."
    assert graph.labels[:2] == ["Neural Networks", "Rule Learning"]
    edges = sum(len(a) for a in graph.adj) // 2 + len(graph.heldout)
    assert edges == 4 and ("edge:31336->999", "edge-unknown-node") in graph.skips


def test_pubmed_reads_tapes_pubmed_orig_and_matches_texts_by_pmid(tmp_path):
    ids = write_pubmed(tmp_path)
    graph = load_graph(GraphRef("pubmed", str(tmp_path)))
    assert graph.ids == ids
    assert [graph.texts[i] for i in range(4)] == [f"Study {p}. Insulin results {p}." for p in ids]  # json order reversed: matched by PMID
    assert graph.labels[:3] == ["Diabetes Mellitus, Experimental", "Diabetes Mellitus Type 1", "Diabetes Mellitus Type 2"]
    assert sum(len(a) for a in graph.adj) // 2 + len(graph.heldout) == 4


def test_wikics_keeps_its_published_test_split_in_builds_and_evaluation(tmp_path):
    data = write_wikics(tmp_path / "wikics")
    graph = load_graph(GraphRef("wikics", str(tmp_path / "wikics")))
    assert graph.texts[3] == "Article 3. graph theory 3" and graph.labels[3] == "Category 3"
    test_ids = {str(1000 + i) for i, t in enumerate(data["test_mask"]) if t}
    out = tmp_path / "build"
    build(BuildConfig(task="masking", source="wikics", data=str(tmp_path / "wikics"), out=str(out)), progress_bar=False)
    split_of = {}
    for path in out.glob("*.parquet"):
        for info in pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist():
            split_of[info["source_id"]] = info["split"]
    assert split_of and all((split == "test") == (node in test_ids) for node, split in split_of.items())
    asked = {item.key.split("/", 1)[1] for item in graph_items("node-classification", "wikics", str(tmp_path / "wikics"), None)}
    assert asked == test_ids


@pytest.mark.parametrize("preset, writer, missing", [("cora", write_cora, "cora.cites"), ("cora", write_cora, "mccallum/cora/papers"),
                                                     ("pubmed", write_pubmed, "pubmed.json"), ("wikics", write_wikics, "metadata.json")])  # fmt: skip
def test_a_partial_download_is_one_line_naming_the_missing_file(tmp_path, capsys, preset, writer, missing):
    folder = tmp_path / preset
    folder.mkdir()
    writer(folder)
    (folder / missing).unlink()
    code = main(["build", "masking", "--source", preset, "--data", str(folder), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and missing in error, error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("missing", ["ogbn_products/ogbn-products_subset.pt", "ogbn_products_orig/ogbn-products_subset.csv"])
def test_products_names_its_missing_files(tmp_path, capsys, missing):
    torch = pytest.importorskip("torch")
    write_products(tmp_path, torch)
    (tmp_path / missing).unlink()
    code = main(["build", "masking", "--source", "products", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and missing.split("/")[1] in error, error


PRODUCTS = [("B00A", "Desk lamp", "A lamp, with a \"warm\" bulb", 3), ("B00B", "Lamp shade", "", 3), ("B00C", "Blender", "Makes smoothies", 7),
            ("B00D", "Juicer", "Presses fruit", 7), ("B00E", "Stapler", "Office stapler", 12), ("B00F", "Staples", "Box of staples", 12)]  # fmt: skip
PRODUCT_EDGES = [(0, 1), (1, 0), (2, 3), (3, 4), (4, 5), (5, 0), (2, 2)]  # directed as stored, (1, 0) repeats (0, 1), (2, 2) a self-loop


def fake_pyg():
    """Modules named as torch_geometric's and torch_sparse's, with classes that pickle as the real
    ones do (PyG 2.3-2.8 `BaseData.__getstate__` / `BaseStorage.__getstate__`, torch_sparse 0.6.x
    `SparseTensor` / `SparseStorage` attributes), so a test can write TAPE's .pt without them."""
    modules = {name: types.ModuleType(name) for name in ("torch_geometric", "torch_geometric.data", "torch_geometric.data.data",
                                                          "torch_geometric.data.storage", "torch_sparse", "torch_sparse.tensor", "torch_sparse.storage")}  # fmt: skip

    class AttrType(enum.Enum):
        NODE = "NODE"
        EDGE = "EDGE"
        OTHER = "OTHER"

    class GlobalStorage:
        def __init__(self, parent, mapping):
            cached = collections.defaultdict(set, {AttrType.NODE: {"x", "y", "n_asin"}, AttrType.OTHER: {"adj_t"}})
            self.__dict__.update(_mapping=mapping, _parent=weakref.ref(parent), _cached_attr=cached)

        def __getstate__(self):
            out = self.__dict__.copy()
            out["_parent"] = out["_parent"]()
            return out

    class DataTensorAttr:
        pass

    class DataEdgeAttr:
        pass

    class Data:
        def __init__(self, **fields):
            self.__dict__.update(_tensor_attr_cls=DataTensorAttr, _edge_attr_cls=DataEdgeAttr)
            self.__dict__["_store"] = GlobalStorage(self, fields)

        def __getstate__(self):
            return self.__dict__

    class SparseStorage:
        def __init__(self, row, rowptr, col, sizes):
            self._row, self._rowptr, self._col, self._value, self._sparse_sizes = row, rowptr, col, None, sizes
            self._rowcount = self._colptr = self._colcount = self._csr2csc = self._csc2csr = None

    class SparseTensor:
        def __init__(self, storage):
            self.storage = storage

    for module, classes in (("torch_geometric.data.data", (Data, DataTensorAttr, DataEdgeAttr)), ("torch_geometric.data.storage", (GlobalStorage, AttrType)),
                            ("torch_sparse.tensor", (SparseTensor,)), ("torch_sparse.storage", (SparseStorage,))):  # fmt: skip
        for cls in classes:
            cls.__module__, cls.__qualname__ = module, cls.__name__
            setattr(modules[module], cls.__name__, cls)
    return modules


def write_products(folder, torch, rows="row", drop=None, extra=None):
    """TAPE's layout: ogbn_products_orig/ogbn-products_subset.csv and ogbn_products/ogbn-products_subset.pt,
    the graph as OGB's T.ToSparseTensor() leaves it (adj_t transposed, rows sorted, CSR offsets filled)."""
    (folder / "ogbn_products_orig").mkdir(parents=True)
    (folder / "ogbn_products").mkdir(parents=True)
    with open(folder / "ogbn_products_orig" / "ogbn-products_subset.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "nid", "title", "content"])
        writer.writerows([asin, 1000 + i, title, content] for i, (asin, title, content, _) in enumerate(PRODUCTS))
    n = len(PRODUCTS)
    transposed = sorted((dst, src) for src, dst in PRODUCT_EDGES)
    row, col = torch.tensor([r for r, _ in transposed]), torch.tensor([c for _, c in transposed])
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(row, minlength=n).cumsum(0)])
    with pytest.MonkeyPatch.context() as patch:
        modules = fake_pyg()
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        storage = modules["torch_sparse.storage"].SparseStorage(row if rows == "row" else None, rowptr, col, (n, n))
        fields = {"x": torch.randn(n, 4), "y": torch.tensor([[label] for *_, label in PRODUCTS]), "num_nodes": np.int64(n),
                  "adj_t": modules["torch_sparse.tensor"].SparseTensor(storage),
                  "train_mask": torch.tensor([True, True, False, True, False, False]), "val_mask": torch.zeros(n, dtype=torch.bool),
                  "test_mask": torch.tensor([False, False, True, False, True, True]),
                  "n_id": np.arange(n), "n_asin": np.array([asin for asin, *_ in PRODUCTS], dtype=object), **(extra or {})}  # fmt: skip
        fields.pop(drop, None)
        torch.save(modules["torch_geometric.data.data"].Data(**fields), folder / "ogbn_products" / "ogbn-products_subset.pt")
    assert all(sys.modules.get(name) is not module for name, module in modules.items())  # the fakes are gone


@pytest.mark.parametrize("rows", ["row", "rowptr"])
def test_products_reads_tapes_pt_without_torch_geometric(tmp_path, rows):
    torch = pytest.importorskip("torch")
    write_products(tmp_path, torch, rows)
    before = set(sys.modules)
    graph = load_graph(GraphRef("products", str(tmp_path)))
    assert not [name for name in set(sys.modules) - before if name.startswith(("torch_geometric", "torch_sparse"))]
    assert graph.ids == [str(1000 + i) for i in range(len(PRODUCTS))]
    assert graph.texts[:2] == ['Desk lamp. A lamp, with a "warm" bulb', "Lamp shade"]
    assert graph.labels == [str(label) for *_, label in PRODUCTS]
    shown = {(u, v) for u, near in enumerate(graph.adj) for v in near}
    assert shown == {(v, u) for u, v in shown}  # symmetric
    assert {(min(u, v), max(u, v)) for u, v in shown} | graph.heldout == {(0, 1), (2, 3), (3, 4), (4, 5), (0, 5)}
    assert graph.skips == [("edge:1002->1002", "self-loop")]  # the reverse (1, 0) is one edge, not a duplicate
    assert graph.test_nodes == {2, 4, 5}


@pytest.mark.parametrize("drop, named", [("adj_t", "no adj_t"), ("y", "no y")])
def test_products_pt_without_a_needed_field_is_one_line_naming_it(tmp_path, capsys, drop, named):
    torch = pytest.importorskip("torch")
    write_products(tmp_path / "products", torch, drop=drop)
    code = main(["build", "masking", "--source", "products", "--data", str(tmp_path / "products"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and named in error and "ogbn-products_subset.pt" in error, error


def test_products_pt_and_csv_of_different_sizes_is_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    write_products(tmp_path, torch)
    with open(tmp_path / "ogbn_products_orig" / "ogbn-products_subset.csv", "a") as handle:
        handle.write("B00G,2000,Extra,Not in the graph\n")
    code = main(["build", "masking", "--source", "products", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "6 nodes, but ogbn-products_subset.csv has 7 rows" in error, error


class Trap:
    """Pickles as a call of exec: what a hostile .pt would run on a plain torch.load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_products_pt_naming_any_other_global_is_refused_before_it_runs(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "ran"
    write_products(tmp_path / "products", torch, extra={"note": Trap(marker)})
    code = main(["build", "masking", "--source", "products", "--data", str(tmp_path / "products"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "builtins.exec" in error, error
    assert not marker.exists()
