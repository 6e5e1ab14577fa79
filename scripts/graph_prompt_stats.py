"""What a graph build's prompts show, measured from its rows (any ssl4rl version's graph build):
the figures of docs/graphs.md, before and after.

    python scripts/graph_prompt_stats.py BUILD --source GRAPH [--data FOLDER]

Per task: rows, median nodes shown, the share of rows whose focus node (centre, head, masked
node; both ends for link) shows an edge, the share of rows with a node text cut below 100
characters, and per task: neighbour, the truth reachable from the centre through shown edges;
link, yes and no pairs sharing a shown neighbour; kg-link, a fact between the head and the
answer shown.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict, deque
from pathlib import Path
from statistics import median

import pyarrow.parquet as pq

from ssl4rl.schema import split_files
from ssl4rl.sources.graph_source import GraphRef, load_graph
from ssl4rl.tasks import TASKS
from ssl4rl.tasks.common import LETTERS


def links(edges) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        out[a].add(b)
        out[b].add(a)
    return out


def reachable(graph: dict[int, set[int]], a: int, b: int) -> bool:
    seen, queue = {a}, deque([a])
    while queue:
        node = queue.popleft()
        if node == b:
            return True
        for other in graph[node] - seen:
            seen.add(other)
            queue.append(other)
    return False


def stats(build: Path, graph) -> dict:
    tallies: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for path in split_files(build):
        for info in pq.read_table(path, columns=["extra_info"]).column("extra_info").to_pylist():
            task, p, answer = info["task"], json.loads(info["params"]), info["answer"]
            t = tallies[task]
            shown = links(p["edges"])
            focus = [p[key] for key in TASKS[task].FOCUS]
            t["nodes"].append(p["nodes"])
            t["focus edge"].append(all(shown[f] for f in focus))
            masked = p.get("target") if task == "masking" else None
            full = [len(graph.texts[graph.index[i]]) for i in p["original"]]
            cut = any(n > p["text_chars"] for k, n in enumerate(full) if k != masked) and p["text_chars"] < 100
            t["text cut below 100"].append(cut)
            if task in ("neighbour", "kg-link"):
                truth = p["candidate_nodes"][LETTERS.index(answer)]
                focal = focus[0]
                t["truth reachable"].append(reachable(shown, focal, truth))
                if task == "kg-link":
                    t["head-answer fact shown"].append(truth in shown[focal])
            if task == "link":
                t[f"{answer} pairs share a neighbour"].append(bool(shown[p["u"]] & shown[p["v"]]))
    out = {}
    for task, t in sorted(tallies.items()):
        out[task] = {"rows": len(t["nodes"]), "nodes median": median(t["nodes"])}
        for key, values in t.items():
            if key != "nodes":
                out[task][key] = f"{100 * sum(values) / len(values):.0f} % ({sum(values)}/{len(values)})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build")
    parser.add_argument("--source", required=True)
    parser.add_argument("--data")
    args = parser.parse_args()
    print(json.dumps(stats(Path(args.build), load_graph(GraphRef(args.source, args.data))), indent=1))


if __name__ == "__main__":
    main()
