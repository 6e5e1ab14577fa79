"""Graph folders on disk: node and edge tables, or knowledge-graph triples.

- text-attributed graph: `nodes.{csv,tsv,jsonl,parquet}` (`id`, `text`, optional `label`) and
  `edges.{csv,tsv,jsonl,parquet}` (`src`, `dst`, optional `relation`: then a knowledge graph);
- knowledge graph (FB15k-237 / WN18RR layout): `train.txt`, optional `valid.txt` and `test.txt`
  (tab-separated head, relation, tail; valid and test are held out of the puzzles), optional
  `entity2text.txt` (entity, text; KG-BERT's files) and `relation2text.txt`.
"""

from __future__ import annotations

from pathlib import Path

from ssl4rl.errors import UserError
from ssl4rl.sources.graph import Graph, assemble

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def _table_file(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{suffix}" for suffix in TABLE_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        raise UserError(f"{folder}: several {stem} tables ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, list]:
    """The named columns of a table as lists of strings (None where empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif path.suffix == ".jsonl":
            import pyarrow.json as pj

            table = pj.read_json(path)
        else:
            import pyarrow.csv as pcsv

            delimiter = "\t" if path.suffix == ".tsv" else ","
            table = pcsv.read_csv(
                path, parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False),
            )  # fmt: skip
    except (OSError, pa.ArrowInvalid) as error:
        raise UserError(f"{path}: unreadable table ({str(error).strip().splitlines()[0]})") from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.column_names)})")
    columns = {}
    for name in (*required, *(c for c in optional if c in table.column_names)):
        column = table.column(name)
        try:
            columns[name] = pc.cast(column, pa.string()).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UserError(f"{path}: column {name} holds {column.type}, not text or numbers") from None
    return columns


def _triples(path: Path) -> list[tuple[str, str, str]]:
    triples = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.rstrip("\n\r").split("\t")
                if len(parts) == 3 and all(parts):
                    triples.append((parts[0], parts[1], parts[2]))
                elif line.strip():
                    raise UserError(f"{path}: every line must be head<TAB>relation<TAB>tail (got {line.strip()[:80]!r})")
    except OSError as error:
        raise UserError(f"{path}: unreadable ({error.strerror or error})") from None
    return triples


def _text_map(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    texts = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            key, _, text = line.rstrip("\n\r").partition("\t")
            if key:
                texts[key] = text
    return texts


def read_kg(folder: Path, name: str) -> Graph:
    train = _triples(folder / "train.txt")
    heldout = [t for split in ("valid.txt", "test.txt") if (folder / split).is_file() for t in _triples(folder / split)]
    texts, relation_texts = _text_map(folder / "entity2text.txt"), _text_map(folder / "relation2text.txt")
    entities = list(dict.fromkeys(e for h, _, t in (*train, *heldout) for e in (h, t)))
    edges = [(h, t) for h, _, t in train]
    relations = [relation_texts.get(r, r) for _, r, _ in train]
    heldout = [(h, relation_texts.get(r, r), t) for h, r, t in heldout]
    return assemble(name, entities, [texts.get(e, e) for e in entities], [None] * len(entities), edges, relations, heldout)


def read_folder(folder: Path, name: str) -> Graph:
    """The graph in a folder: node and edge tables, or knowledge-graph triples."""
    if not folder.is_dir():
        raise UserError(f"{folder}: a graph source is a folder (nodes.* and edges.*, or train.txt triples)")
    nodes, edges = _table_file(folder, "nodes"), _table_file(folder, "edges")
    if nodes is None and edges is None and (folder / "train.txt").is_file():
        return read_kg(folder, name)
    if nodes is None or edges is None:
        missing = " and ".join(stem for stem, found in (("nodes", nodes), ("edges", edges)) if found is None)
        raise UserError(f"{folder}: no {missing} table ({'/'.join(s[1:] for s in TABLE_SUFFIXES)}), and no train.txt triples")
    node_columns = read_table(nodes, ("id", "text"), ("label",))
    edge_columns = read_table(edges, ("src", "dst"), ("relation",))
    pairs = list(zip(edge_columns["src"], edge_columns["dst"]))
    relations = edge_columns.get("relation")
    if relations is not None:
        relations = ["related to" if r is None else r for r in relations]
    labels = node_columns.get("label") or [None] * len(node_columns["id"])
    return assemble(name, node_columns["id"], node_columns["text"], labels, pairs, relations)
