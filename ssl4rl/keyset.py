"""The builder's duplicate check: an exact set of 16-byte content keys in about 17 bytes a key.

A Python set of 16-byte `bytes` costs about 120 bytes a key (the object, its hash slot and the
table's spare room): 12 GB for 10^8 web images. Here keys live as two uint64 columns (the
key's first and last 8 bytes, big-endian) in 256 arrays chosen by the key's first byte, each
sorted by its first column; only the newest keys (at most 1/32 of the set, or 4096) sit in a
Python set until they are merged in. Membership compares all 16 bytes, so it is exactly a set
of keys: nothing probabilistic, no image dropped on a near miss. A merge rewrites one of the
256 arrays at a time, so its transient copy is 1/256 of the set; as each merge grows the set by
1/32, the merges of a whole build copy each key about 33 times (a geometric series).
"""

from __future__ import annotations

import numpy as np

PARTS = 256  # arrays, by the key's first byte
MIN_RECENT = 4096  # the newest keys kept in a Python set before a merge...
RECENT_SHARE = 32  # ...or 1/RECENT_SHARE of the set, whichever is larger
KEY_BYTES = 16


class KeySet:
    def __init__(self):
        self._first = [np.empty(0, np.uint64) for _ in range(PARTS)]
        self._last = [np.empty(0, np.uint64) for _ in range(PARTS)]
        self._recent: set[bytes] = set()
        self._merged = 0
        self._limit = MIN_RECENT  # recent keys that make a merge

    def __len__(self) -> int:
        return self._merged + len(self._recent)

    def __contains__(self, key: bytes) -> bool:
        if key in self._recent:
            return True
        first = self._first[key[0]]
        head = np.uint64(int.from_bytes(key[:8], "big"))
        at, size = int(first.searchsorted(head)), len(first)
        if at == size or first[at] != head:  # nearly every new key ends here
            return False
        last, tail = self._last[key[0]], np.uint64(int.from_bytes(key[8:], "big"))
        while at < size and first[at] == head:  # keys may share their first 8 bytes: compare all 16
            if last[at] == tail:
                return True
            at += 1
        return False

    def add(self, key: bytes) -> bool:
        """Add `key`; False when it was already there (a duplicate)."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"keys are {KEY_BYTES} bytes (got {len(key)})")
        if key in self:
            return False
        self._recent.add(key)
        if len(self._recent) >= self._limit:
            self._merge()
        return True

    def _merge(self) -> None:
        """The recent keys into the sorted arrays, one array at a time."""
        keys = np.frombuffer(b"".join(self._recent), dtype=">u8").reshape(-1, 2).astype(np.uint64)
        keys = keys[np.argsort(keys[:, 0], kind="stable")]
        heads, tails = keys[:, 0], keys[:, 1]
        bounds = np.searchsorted(heads >> np.uint64(56), np.arange(PARTS + 1, dtype=np.uint64))
        for part in np.flatnonzero(np.diff(bounds)):
            start, stop = bounds[part], bounds[part + 1]
            at = self._first[part].searchsorted(heads[start:stop])
            self._first[part] = np.insert(self._first[part], at, heads[start:stop])
            self._last[part] = np.insert(self._last[part], at, tails[start:stop])
        self._merged += len(self._recent)
        self._recent.clear()
        self._limit = max(MIN_RECENT, self._merged // RECENT_SHARE)
