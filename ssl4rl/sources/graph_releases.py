"""The paper's text-attributed graphs read from their releases as they ship, no conversion:

- `cora`: TAPE's `cora_orig` folder: `cora.content` (paper id, word features, class),
  `cora.cites` (cited, citing) and the McCallum texts, `mccallum/cora/papers` (paper id, file)
  with `mccallum/cora/extractions/<file>` (`Title:` and `Abstract:` lines);
- `pubmed`: TAPE's `PubMed_orig` folder: `data/Pubmed-Diabetes.NODE.paper.tab` (two header
  lines, then paper id, `label=K`, features), `data/Pubmed-Diabetes.DIRECTED.cites.tab` (two
  header lines, then edge id, `paper:A`, `|`, `paper:B`) and `pubmed.json` (records with `TI`
  and `AB`, in node order or keyed by `PMID`);
- `wikics`: Wiki-CS's `dataset` folder: `data.json` (`labels`, `links`: adjacency lists by node
  index, `test_mask`) and `metadata.json` (`labels`: names by index, `nodes`: `id`, `title`,
  `tokens`); its published test split is kept (`Graph.test_nodes`);
- `products`: TAPE's ogbn-products subset: `ogbn-products_subset.csv` (`nid`, `title`,
  `content`, one row per node in node order) and `ogbn-products_subset.pt` (a torch_geometric
  `Data`: `adj_t`, a torch_sparse `SparseTensor`, or `edge_index`; `y`; `test_mask`, kept as the
  published test split), in the folder or its `ogbn_products_orig` / `ogbn_products` subfolders
  (TAPE's `dataset/` folder); the .pt is read with torch alone (`ssl4rl.sources.pyg_pickle`),
  edges symmetrised as TAPE's loader does.

A missing file is one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.sources.graph import Graph, assemble

PUBMED_CLASSES = {"1": "Diabetes Mellitus, Experimental", "2": "Diabetes Mellitus Type 1", "3": "Diabetes Mellitus Type 2"}


def need(folder: Path, *relative: str) -> Path:
    """The first of these files that exists in `folder`, else one line naming the first."""
    for name in relative:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder}: missing {relative[0]} (a partial or different download?)")


def join_text(title, body) -> str:
    """'Title. Body', either part may be missing."""
    title, body = str(title or "").strip(), str(body or "").strip()
    return f"{title.rstrip('.')}. {body}" if title and body else title or body


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n\r") for line in handle]


def read_cora(folder: Path, name: str = "cora") -> Graph:
    content, cites = need(folder, "cora.content"), need(folder, "cora.cites")
    papers = need(folder, "mccallum/cora/papers")
    ids, labels = [], []
    for line in _lines(content):
        parts = line.split()
        if len(parts) >= 2:
            ids.append(parts[0])
            labels.append(parts[-1].replace("_", " "))
    files = {}
    for line in _lines(papers):
        parts = line.split("\t")
        if len(parts) >= 2:
            files.setdefault(parts[0], parts[1])
    texts = []
    for paper in ids:
        if paper not in files:
            raise UserError(f"{papers}: no line for paper {paper} of cora.content")
        extraction = need(folder, f"mccallum/cora/extractions/{files[paper]}")
        title = abstract = ""
        for line in _lines(extraction):
            if line.startswith("Title:"):
                title = line[len("Title:") :].strip()
            elif line.startswith("Abstract:"):
                abstract = line[len("Abstract:") :].strip()
        texts.append(join_text(title, abstract))
    edges = [tuple(line.split()[:2]) for line in _lines(cites) if len(line.split()) >= 2]
    return assemble(name, ids, texts, labels, edges)


def read_pubmed(folder: Path, name: str = "pubmed") -> Graph:
    node_file = need(folder, "data/Pubmed-Diabetes.NODE.paper.tab", "Pubmed-Diabetes.NODE.paper.tab")
    cite_file = need(folder, "data/Pubmed-Diabetes.DIRECTED.cites.tab", "Pubmed-Diabetes.DIRECTED.cites.tab")
    text_file = need(folder, "pubmed.json")
    ids, labels = [], []
    for line in _lines(node_file)[2:]:
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].startswith("label="):
            ids.append(parts[0])
            labels.append(PUBMED_CLASSES.get(parts[1].split("=", 1)[1], parts[1].split("=", 1)[1]))
    try:
        records = json.loads(text_file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise UserError(f"{text_file}: not JSON ({error})") from None
    if isinstance(records, dict):  # columns: {"TI": [...] or {row: ...}, "AB": ...}
        columns = {k: list(v.values()) if isinstance(v, dict) else list(v) for k, v in records.items()}
        records = [dict(zip(columns, row)) for row in zip(*columns.values())]
    if not isinstance(records, list) or len(records) != len(ids):
        raise UserError(f"{text_file}: expected one record per paper of {node_file.name} ({len(ids)}), got {len(records) if isinstance(records, list) else 'no list'}")
    by_id = {str(r.get("PMID")): r for r in records if isinstance(r, dict) and r.get("PMID") is not None}
    ordered = [by_id.get(paper, {}) for paper in ids] if len(by_id) == len(ids) else records
    texts = [join_text(r.get("TI"), r.get("AB")) for r in ordered]
    edges = []
    for line in _lines(cite_file)[2:]:
        parts = line.split("\t")
        if len(parts) >= 4:
            edges.append((parts[1].split(":", 1)[-1], parts[3].split(":", 1)[-1]))
    return assemble(name, ids, texts, labels, edges)


def read_wikics(folder: Path, name: str = "wikics") -> Graph:
    data_file, meta_file = need(folder, "data.json"), need(folder, "metadata.json")
    try:
        data, meta = json.loads(data_file.read_text()), json.loads(meta_file.read_text())
    except ValueError as error:
        raise UserError(f"{folder}: data.json or metadata.json is not JSON ({error})") from None
    nodes, names = meta.get("nodes", []), {str(k): v for k, v in (meta.get("labels") or {}).items()}
    if len(nodes) != len(data.get("labels", [])) or len(nodes) != len(data.get("links", [])):
        raise UserError(f"{folder}: metadata.json lists {len(nodes)} nodes, data.json {len(data.get('labels', []))} labels and {len(data.get('links', []))} link lists")
    ids = [str(node.get("id", i)) for i, node in enumerate(nodes)]
    texts = [join_text(node.get("title"), " ".join(node.get("tokens", []))) for node in nodes]
    labels = [names.get(str(label), str(label)) for label in data["labels"]]
    edges = [(ids[i], ids[j]) for i, links in enumerate(data["links"]) for j in links if 0 <= j < len(ids)]
    graph = assemble(name, ids, texts, labels, edges)
    graph.test_nodes = {graph.index[ids[i]] for i, test in enumerate(data.get("test_mask") or []) if test and ids[i] in graph.index}
    return graph


def read_products(folder: Path, name: str = "products") -> Graph:
    places = ("", "ogbn_products_orig/", "ogbn_products/")
    text_file = need(folder, *(f"{p}ogbn-products_subset.csv" for p in places))
    graph_file = need(folder, *(f"{p}ogbn-products_subset.pt" for p in places))
    from ssl4rl.sources.graph_tables import read_table
    from ssl4rl.sources.pyg_pickle import read_graph

    columns = read_table(text_file, ("title", "content"), ("nid",))
    pickled = read_graph(graph_file)
    if pickled.num_nodes != len(columns["title"]):
        raise UserError(f"{graph_file}: {pickled.num_nodes} nodes, but {text_file.name} has {len(columns['title'])} rows (files of different releases?)")
    ids = columns.get("nid") or [str(i) for i in range(pickled.num_nodes)]
    texts = [join_text(t, c) for t, c in zip(columns["title"], columns["content"])]
    pairs = sorted({(min(a, b), max(a, b)) for a, b in pickled.edges})  # TAPE reads adj_t.to_symmetric()
    graph = assemble(name, ids, texts, [str(v) for v in pickled.labels], [(ids[a], ids[b]) for a, b in pairs])
    graph.test_nodes = {graph.index[ids[i]] for i in pickled.test_nodes if ids[i] in graph.index}
    return graph


READERS = {"cora": read_cora, "pubmed": read_pubmed, "wikics": read_wikics, "products": read_products}
