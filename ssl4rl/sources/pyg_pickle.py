"""A torch_geometric `Data` saved with `torch.save`, read without torch_geometric or torch_sparse.

TAPE's `ogbn-products_subset.pt` is such a pickle, with the graph as `adj_t`, a torch_sparse
`SparseTensor` (OGB's `T.ToSparseTensor()`), and torch_sparse has no PyPI wheel. `torch.load`
runs here with this module as its `pickle_module`: the unpickler resolves only the globals in
`allowed()` and refuses any other with one line, so a file can rebuild tensors, numpy arrays and
the stand-ins below, and run nothing else. The stand-ins keep the pickled state as it is; the
layouts read from the classes' sources:

- `torch_geometric.data.data.Data` (PyG 2.0-2.8: `BaseData.__getstate__` is `__dict__`):
  `{'_store': GlobalStorage, '_tensor_attr_cls': DataTensorAttr, '_edge_attr_cls': DataEdgeAttr}`
  (the two classes since 2.1, as class references);
- `torch_geometric.data.storage.GlobalStorage` (`BaseStorage.__getstate__`: `__dict__` with the
  `_parent` weak reference resolved): `_mapping` (the fields: `y`, `adj_t`, ...), `_parent`, and
  since 2.3 `_cached_attr`, a `defaultdict(set)` keyed by the enum `AttrType`, once PyG has
  classified the fields (`ToSparseTensor` does);
- `torch_sparse.tensor.SparseTensor` (0.6.x): `{'storage': SparseStorage}`; and
  `torch_sparse.storage.SparseStorage`: `_row`, `_rowptr`, `_col`, `_value`, `_sparse_sizes`,
  `_rowcount`, `_colptr`, `_colcount`, `_csr2csc`, `_csc2csr` (`_row` may be None, then `_rowptr`
  holds the rows as CSR offsets).
"""

from __future__ import annotations

import functools
import operator
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

from ssl4rl.errors import UserError


class Pickled:
    """A pickled object's state, kept as a dict; nothing of the original class runs."""

    state: dict = {}  # read only; a pickle that sets no state leaves it empty

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


class Data(Pickled):
    """torch_geometric.data.data.Data."""


class Storage(Pickled):
    """torch_geometric.data.storage.GlobalStorage."""


class SparseTensor(Pickled):
    """torch_sparse.tensor.SparseTensor."""


class SparseStorage(Pickled):
    """torch_sparse.storage.SparseStorage."""


@functools.cache
def allowed() -> dict[tuple[str, str], object]:
    """The globals a products graph may name: the stand-ins, torch's tensor rebuild, numpy's array
    rebuild (TAPE's preprocessing puts numpy arrays, `n_id` and `n_asin`, on the graph) and the
    containers."""
    import codecs
    import collections

    import numpy as np
    import torch

    array, scalar = np.zeros(0).__reduce__()[0], np.int64(0).__reduce__()[0]
    return {
        ("torch_geometric.data.data", "Data"): Data,
        ("torch_geometric.data.data", "DataTensorAttr"): Pickled,
        ("torch_geometric.data.data", "DataEdgeAttr"): Pickled,
        ("torch_geometric.data.storage", "GlobalStorage"): Storage,
        ("torch_geometric.data.storage", "AttrType"): str,  # an enum member pickles as AttrType('NODE')
        ("torch_sparse.tensor", "SparseTensor"): SparseTensor,
        ("torch_sparse.storage", "SparseStorage"): SparseStorage,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "defaultdict"): collections.defaultdict,
        ("builtins", "set"): set,
        ("_codecs", "encode"): codecs.encode,  # bytes in a protocol-2 pickle
        ("numpy.core.multiarray", "_reconstruct"): array,  # numpy 1 writes numpy.core, numpy 2 numpy._core
        ("numpy._core.multiarray", "_reconstruct"): array,
        ("numpy.core.multiarray", "scalar"): scalar,
        ("numpy._core.multiarray", "scalar"): scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class Refused(pickle.UnpicklingError):
    """A global outside `allowed()`."""


class Unpickler(pickle.Unpickler):
    """pickle's unpickler that resolves only `allowed()` (torch.load subclasses it and resolves
    its own storage types first)."""

    def find_class(self, module, name):
        module = "builtins" if module == "__builtin__" else module  # protocol 2 from Python 3
        found = allowed().get((module, name))
        if found is None:
            raise Refused(f"{module}.{name}")
        return found


def load(file, **kwargs):
    """pickle.load through `Unpickler` (torch.load reads a legacy file's header with it)."""
    return Unpickler(file, **kwargs).load()


@dataclass
class PickledGraph:
    """What a products graph needs: nodes 0..num_nodes-1, directed edges, one label per node and
    the published test nodes (empty when the file has no test_mask)."""

    num_nodes: int
    edges: list[tuple[int, int]]
    labels: list
    test_nodes: list[int]


def read_graph(path: Path) -> PickledGraph:
    """The graph in a torch.save'd PyG Data (or dict of fields): edges from `edge_index` or
    `adj_t`, labels from `y`; a missing field is one line naming it."""
    fields = _fields(_load(path), path)
    has = f"(has: {', '.join(sorted(fields)) or 'nothing'})"
    if fields.get("y") is None:
        raise UserError(f"{path}: no y (the node labels) in the graph {has}")
    labels = fields["y"].reshape(-1).tolist()
    if fields.get("edge_index") is not None:
        src, dst = (t.tolist() for t in fields["edge_index"])
        sizes = None
    elif isinstance(fields.get("adj_t"), SparseTensor):
        src, dst, sizes = _sparse_edges(fields["adj_t"], path)
    else:
        raise UserError(f"{path}: no adj_t (a torch_sparse SparseTensor) or edge_index in the graph {has}")
    num_nodes = _count(fields.get("num_nodes")) or (sizes or [len(labels)])[0]
    if len(labels) != num_nodes:
        raise UserError(f"{path}: y holds {len(labels)} labels for {num_nodes} nodes")
    edges = list(zip(src, dst))
    if any(not (0 <= a < num_nodes and 0 <= b < num_nodes) for a, b in edges):
        raise UserError(f"{path}: an edge names a node outside 0..{num_nodes - 1}")
    mask = fields.get("test_mask")
    mask = mask.reshape(-1).tolist() if mask is not None else []
    test = [i for i, t in enumerate(mask) if t] if len(mask) == num_nodes else []
    return PickledGraph(num_nodes, edges, labels, test)


def _load(path: Path):
    try:
        import torch
    except ImportError:
        raise UserError(f"{path}: reading a .pt graph needs torch (pip install torch)") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=sys.modules[__name__])
    except Refused as error:
        raise UserError(f"{path}: refused to load: it names {error}, which is not part of a PyG graph "
                        "(only Data, torch_sparse's SparseTensor, tensors and numpy arrays are read)") from None
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file is one line
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path}: not a torch.save file of a graph ({first})") from None


def _count(value) -> int | None:
    """A stored node count (int, numpy or 0-d tensor integer), else None."""
    try:
        return operator.index(value)
    except TypeError:
        return None


def _fields(data, path: Path) -> dict:
    """A Data's fields: PyG 2 keeps them in `_store._mapping`, PyG 1 in the object's own dict."""
    if isinstance(data, dict):
        return data
    if isinstance(data, Data):
        store = data.state.get("_store")
        if isinstance(store, Storage):
            return store.state.get("_mapping") or {}
        return {k: v for k, v in data.state.items() if not k.startswith("_")}
    raise UserError(f"{path}: holds a {type(data).__name__}, not a torch_geometric Data")


def _sparse_edges(adj_t: SparseTensor, path: Path):
    """(sources, targets, sizes) of a SparseTensor: adj_t is the transposed adjacency, so its
    columns are the sources; rows come from `_row`, or from the CSR offsets `_rowptr`."""
    import torch

    storage = adj_t.state.get("storage")
    state = storage.state if isinstance(storage, SparseStorage) else {}
    col, row, rowptr = state.get("_col"), state.get("_row"), state.get("_rowptr")
    if col is None or (row is None and rowptr is None):
        raise UserError(f"{path}: adj_t has no _col and _row or _rowptr (not a torch_sparse SparseTensor's storage)")
    if row is None:
        row = torch.repeat_interleave(torch.arange(rowptr.numel() - 1), rowptr.diff())
    sizes = state.get("_sparse_sizes")
    return col.tolist(), row.tolist(), list(sizes) if sizes else None
