"""`ssl4rl audit`: non-learned probes that look for shortcuts in a build.

A puzzle teaches vision only if nothing but the visual skill it names finds the answer. Each
probe is a rule of a few lines (the sharpest candidate, the candidate nearest the marked point,
the tile's JPEG block phase, ...) scored on every row of a build, per task and level, next to
chance. A probe more than FLAG_MARGIN above chance, with confidence (the lower end of a
two-standard-error Wilson interval), is flagged. Probes that ARE the task (continuing a hole's
edges) and probes on encoded file sizes (a model sees decoded pixels only) are reported but
never flagged. Rules that learn a lookup table (feature value -> answer) learn it on the puzzles
of one half of the source images and are scored on the other half, both ways, so they cannot
memorise an image.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ssl4rl import graph_solver
from ssl4rl.errors import UserError
from ssl4rl.reward import chance
from ssl4rl.schema import difficulty_of, split_files
from ssl4rl.tasks.common import LETTERS
from ssl4rl.tasks.flip import asymmetry

FLAG_MARGIN = 0.10  # accuracy points above chance that count as a shortcut
CONFIDENCE_Z = 2.0  # the flag needs the Wilson lower bound (z standard errors) above chance + margin
MIN_ITEMS = 40  # fewer scored items than this: reported, never flagged
BINS = 8  # quantile bins of a continuous feature for lookup probes
DCT_BLOCK = 8  # JPEG's DCT block
PHASE_WINDOW = 96  # side of the central window an image's block phase is measured on
PHASE_MARGIN = 0.01  # the best offset's share of near-zero DCT coefficients must lead the next by this


@dataclass
class ProbeResult:
    task: str
    level: str
    probe: str
    description: str
    items: int
    accuracy: float
    chance: float
    flaggable: bool
    flagged: bool
    note: str = ""


# ---------------------------------------------------------------- image statistics
def grey(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def laplacian(pixels: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian of the luma: unchanged in distribution by quarter turns."""
    g = grey(pixels)
    if min(g.shape) < 3:
        return np.zeros(1, np.float32)
    return 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]


def sharpness(pixels: np.ndarray) -> float:
    """Variance of the Laplacian: what blur and resampling remove."""
    return float(laplacian(pixels).var())


def texture(pixels: np.ndarray) -> tuple[float, float]:
    """(sharpness, noise): the Laplacian's variance and its median absolute value, the fine
    grain (sensor and compression noise) of flat areas."""
    lap = laplacian(pixels).astype(np.float64)
    return float(lap.var()), float(np.median(np.abs(lap)))


def _dct_matrix() -> np.ndarray:
    k, n = np.meshgrid(np.arange(DCT_BLOCK), np.arange(DCT_BLOCK), indexing="ij")
    scale = np.where(k == 0, math.sqrt(1 / DCT_BLOCK), math.sqrt(2 / DCT_BLOCK))
    return scale * np.cos(math.pi * (2 * n + 1) * k / (2 * DCT_BLOCK))


_DCT = _dct_matrix().astype(np.float32)


def block_phase(pixels: np.ndarray) -> tuple[int, int]:
    """The (x, y) offset of a JPEG 8x8 block grid in an image, or (-1, -1) where none stands out
    (lossless sources, resampled or flat images). At the right offset the decoded luma's block
    DCT has many near-zero coefficients (JPEG quantised them to zero); at any other it has few.
    Measured on a central window of up to PHASE_WINDOW px whose corner is a multiple of 8 px
    from the image's (which keeps the phase); central, so a quarter turn measures the same place."""
    top, left = (max(0, pixels.shape[0] - PHASE_WINDOW) // 2) // DCT_BLOCK * DCT_BLOCK, (max(0, pixels.shape[1] - PHASE_WINDOW) // 2) // DCT_BLOCK * DCT_BLOCK
    g = grey(pixels[top : top + PHASE_WINDOW, left : left + PHASE_WINDOW]) - 128.0
    height, width = g.shape
    if min(height, width) < 2 * DCT_BLOCK:
        return -1, -1
    windows = np.lib.stride_tricks.sliding_window_view(g, (DCT_BLOCK, DCT_BLOCK))  # every 8x8 block, any offset
    coefficients = np.abs(_DCT @ windows @ _DCT.T).reshape(*windows.shape[:2], DCT_BLOCK * DCT_BLOCK)[..., 1:]
    near_zero = (coefficients < 0.5).mean(axis=2)
    rows, cols = near_zero.shape[0] // DCT_BLOCK * DCT_BLOCK, near_zero.shape[1] // DCT_BLOCK * DCT_BLOCK
    scores = near_zero[:rows, :cols].reshape(rows // DCT_BLOCK, DCT_BLOCK, cols // DCT_BLOCK, DCT_BLOCK).mean(axis=(0, 2))  # [py, px]
    order = np.sort(scores.ravel())
    if order[-1] - order[-2] < PHASE_MARGIN:
        return -1, -1
    py, px = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(px), int(py)


def histogram(pixels: np.ndarray) -> np.ndarray:
    """Normalised 4x4x4 RGB histogram."""
    q = pixels.reshape(-1, 3) >> 6
    counts = np.bincount((q[:, 0] << 4 | q[:, 1] << 2 | q[:, 2]).astype(np.intp), minlength=64).astype(np.float64)
    return counts / max(1.0, counts.sum())


def _seam(candidate: np.ndarray, shown: np.ndarray, box) -> float:
    """Mean step between a candidate's outer rows/columns and the pixels just outside the box."""
    x0, y0, x1, y1 = box
    steps = []
    c, s = candidate.astype(np.float64), shown.astype(np.float64)
    if y0 > 0:
        steps.append(np.abs(c[0] - s[y0 - 1, x0:x1]).mean())
    if y1 < s.shape[0]:
        steps.append(np.abs(c[-1] - s[y1, x0:x1]).mean())
    if x0 > 0:
        steps.append(np.abs(c[:, 0] - s[y0:y1, x0 - 1]).mean())
    if x1 < s.shape[1]:
        steps.append(np.abs(c[:, -1] - s[y0:y1, x1]).mean())
    return float(np.mean(steps)) if steps else 0.0


# ---------------------------------------------------------------- scoring rules
def pick_credit(scores, truth: int, highest: bool) -> float:
    """Credit of 'pick the candidate with the highest (lowest) score', ties broken at random."""
    values = np.asarray(scores, np.float64) * (1 if highest else -1)
    best = np.flatnonzero(np.isclose(values, values.max(), rtol=1e-9, atol=1e-12))
    return 1.0 / len(best) if truth in best else 0.0


def odd_one_out_credit(keys: list, truth: int) -> float:
    """Credit of 'pick the candidate whose key differs from the most common one' (none odd: a
    random pick)."""
    counts = Counter(keys)
    common = counts.most_common(1)[0][0]
    odd = [i for i, key in enumerate(keys) if key != common] or list(range(len(keys)))
    return 1.0 / len(odd) if truth in odd else 0.0


def lookup_accuracy(features: list, labels: list, folds: list[int]) -> float:
    """Accuracy of 'the most common label of this feature value', learned on one fold of the rows
    and scored on the other (both ways); an unseen value gets the fold's most common label."""
    right = 0
    for test_fold in (0, 1):
        table: dict = defaultdict(Counter)
        overall: Counter = Counter()
        for f, y, fold in zip(features, labels, folds):
            if fold != test_fold:
                table[f][y] += 1
                overall[y] += 1
        if not overall:
            continue
        default = overall.most_common(1)[0][0]
        for f, y, fold in zip(features, labels, folds):
            if fold == test_fold:
                guess = table[f].most_common(1)[0][0] if f in table else default
                right += guess == y
    return right / max(1, len(labels))


def quantiles(values: list[float]) -> list[int]:
    """Each value's quantile bin (BINS bins over all values): a continuous feature as a key."""
    array = np.asarray(values, np.float64)
    edges = np.quantile(array, np.linspace(0, 1, BINS + 1)[1:-1]) if len(array) else []
    return [int(b) for b in np.searchsorted(edges, array, side="right")]


def wilson_lower(accuracy: float, n: int, z: float = CONFIDENCE_Z) -> float:
    if n == 0:
        return 0.0
    centre = accuracy + z * z / (2 * n)
    spread = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


# ---------------------------------------------------------------- rows
@dataclass
class Row:
    task: str
    level: str
    answer: str
    params: dict
    images: list[np.ndarray]
    sizes: list[int]  # encoded bytes of each image
    fold: int  # half of the build this row is in: by source image, so a lookup cannot memorise one
    prompt: str = ""  # the user turn (graph puzzles: the solver reads its texts)


def fold_of(sample_id: str) -> int:
    """0 or 1 by a hash of the source image (a sample id 'image#r' is puzzle r of 'image')."""
    return hashlib.blake2b(sample_id.split("#")[0].encode(), digest_size=1).digest()[0] & 1


def decoded_rows(folder: Path):
    """Every row of a build (train and test), images decoded."""
    files = split_files(folder)
    if not files:
        raise UserError(f"{folder}: no train-*.parquet or test-*.parquet files (is it an ssl4rl build folder?)")
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=64, columns=["prompt", "images", "extra_info"]):
            for record in batch.to_pylist():
                info = record["extra_info"]
                datas = [image["bytes"] for image in record["images"]]
                images = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")) for d in datas]
                prompt = "\n".join(m.get("content") or "" for m in record["prompt"] or [] if m.get("role") == "user")
                yield Row(info["task"], difficulty_of(info), info["answer"], json.loads(info["params"] or "{}"),
                          images, [len(d) for d in datas], fold_of(info["source_id"]), prompt)  # fmt: skip


# ---------------------------------------------------------------- probes per task family
class Tally:
    """Accumulates per-probe credit for one (task, level)."""

    def __init__(self):
        self.credit: dict[str, list[float]] = defaultdict(list)
        self.chance: dict[str, list[float]] = defaultdict(list)
        self.puzzle_chance = 0.0  # sum over rows of ssl4rl.reward.chance: the task's own chance
        self.lookups: dict[str, tuple[list, list, list, float]] = {}
        self.info: dict[str, tuple[str, bool, bool]] = {}  # name -> (description, flaggable, continuous)
        self.answers: Counter = Counter()
        self.rows = 0

    def add(self, name: str, description: str, credit: float, chance: float, flaggable: bool = True) -> None:
        self.info[name] = (description, flaggable, False)
        self.credit[name].append(credit)
        self.chance[name].append(chance)

    def observe(self, name: str, description: str, feature, label, fold: int, chance: float, flaggable: bool = True, continuous: bool = False) -> None:
        """One item of a lookup probe (feature -> label); continuous features are binned later."""
        self.info[name] = (description, flaggable, continuous)
        features, labels, folds, _ = self.lookups.get(name, ([], [], [], chance))
        features.append(feature)
        labels.append(label)
        folds.append(fold)
        self.lookups[name] = (features, labels, folds, chance)

    def results(self, task: str, level: str) -> list[ProbeResult]:
        out = []
        for name, (description, flaggable, continuous) in self.info.items():
            if name in self.lookups:
                features, labels, folds, chance = self.lookups[name]
                if continuous:
                    features = quantiles(features)
                accuracy, items = lookup_accuracy(features, labels, folds), len(labels)
            else:
                items = len(self.credit[name])
                accuracy, chance = float(np.mean(self.credit[name])), float(np.mean(self.chance[name]))
            enough = items >= MIN_ITEMS
            flagged = flaggable and enough and wilson_lower(accuracy, items) > chance + FLAG_MARGIN
            note = "" if flaggable else ("the task itself" if "task itself" in description else "encoded size: invisible to the model")
            if "grid turns" in description:
                note = "a geometric cue of the rotation itself"
            if flaggable and not enough:
                note = f"fewer than {MIN_ITEMS} items: not judged"
            out.append(ProbeResult(task, level, name, description, items, accuracy, chance, flaggable, flagged, note))
        return out


SAME_IMAGE = " (the task itself: views of one image share its statistics)"


def _letter_probes(tally: Tally, row: Row, candidates: list[np.ndarray], sizes: list[int], context: np.ndarray | None, same_image_task: bool = False) -> None:
    """Probes shared by lettered multiple-choice puzzles. In a same-image task (similarity)
    matching the context's statistics is the skill asked for: reported, never flagged."""
    k = len(candidates)
    truth = LETTERS.index(row.answer)
    tally.observe("answer prior", "the most frequent letter (learned on half the images)", 0, row.answer, row.fold, 1 / k)
    tally.add("odd size", "the candidate whose width x height differs from the most common one", odd_one_out_credit([c.shape[:2] for c in candidates], truth), 1 / k)
    tally.add("odd aspect", "the candidate whose aspect ratio differs from the most common one", odd_one_out_credit([round(c.shape[1] / c.shape[0], 3) for c in candidates], truth), 1 / k)
    sharp, noisy = zip(*(texture(c) for c in candidates))
    for label, values, what in (("sharpness", sharp, "Laplacian variance"), ("noise", noisy, "median neighbour difference")):
        tally.add(f"highest {label}", f"the candidate with the highest {what}", pick_credit(values, truth, True), 1 / k)
        tally.add(f"lowest {label}", f"the candidate with the lowest {what}", pick_credit(values, truth, False), 1 / k)
    tally.add("odd block phase", "the candidate whose JPEG 8x8 block-grid phase differs from the others'", odd_one_out_credit([block_phase(c) for c in candidates], truth), 1 / k)
    if context is not None:
        reference, sharp_context = histogram(context), sharpness(context)
        distances = [float(np.abs(histogram(c) - reference).sum()) for c in candidates]
        suffix, flaggable = (SAME_IMAGE, False) if same_image_task else ("", True)
        tally.add("closest colours", "the candidate whose colour histogram is closest to the context image's" + suffix, pick_credit(distances, truth, False), 1 / k, flaggable)
        context_mean = context.reshape(-1, 3).mean(0)
        means = [float(np.abs(c.reshape(-1, 3).mean(0) - context_mean).sum()) for c in candidates]
        tally.add("closest mean colour", "the candidate whose mean colour is closest to the context image's" + suffix, pick_credit(means, truth, False), 1 / k, flaggable)
        ratio = [abs(math.log((s + 1e-6) / (sharp_context + 1e-6))) for s in sharp]
        tally.add("closest sharpness", "the candidate whose sharpness is closest to the context image's" + suffix, pick_credit(ratio, truth, False), 1 / k, flaggable)
    tally.add("largest file", "the candidate with the most encoded bytes", pick_credit(sizes, truth, True), 1 / k, flaggable=False)
    tally.add("smallest file", "the candidate with the fewest encoded bytes", pick_credit(sizes, truth, False), 1 / k, flaggable=False)


def probe_inpainting(tally: Tally, row: Row) -> None:
    shown, candidates = row.images[0], row.images[1:]
    _letter_probes(tally, row, candidates, row.sizes[1:], shown)
    truth = LETTERS.index(row.answer)
    hole = row.params.get("hole")
    if hole:
        phase = (-hole[0] % DCT_BLOCK, -hole[1] % DCT_BLOCK)  # where the source grid crosses a patch cut at the hole
        matches = [float(block_phase(c) == phase) for c in candidates]
        tally.add("hole's block phase", "the candidate whose JPEG block phase matches the hole's position in the image", pick_credit(matches, truth, True), 1 / len(candidates))
        boxes = row.params.get("boxes") or []
        if len(boxes) == len(candidates):
            # Where each candidate was cut is recorded; equal pixels there mean it is visible in the shown image.
            visible = [float(np.array_equal(shown[b[1] : b[3], b[0] : b[2]], c)) for b, c in zip(boxes, candidates)]
            tally.add("not in the shown image", "the candidate whose pixels cannot be found in the shown image", pick_credit(visible, truth, False), 1 / len(candidates))
        seams = [_seam(c, shown, hole) for c in candidates]
        tally.add("seam", "the candidate whose borders best continue the pixels around the hole (the task itself)", pick_credit(seams, truth, False), 1 / len(candidates), flaggable=False)


def probe_similarity(tally: Tally, row: Row) -> None:
    _letter_probes(tally, row, row.images[1:], row.sizes[1:], row.images[0], same_image_task=True)


def probe_flip(tally: Tally, row: Row) -> None:
    _letter_probes(tally, row, row.images, row.sizes, None)
    axis = row.params.get("axis", "horizontal")
    values = [asymmetry(c, axis) for c in row.images]
    truth, k = LETTERS.index(row.answer), len(row.images)
    tally.add("most asymmetric", "the patch that differs most from its own mirror image", pick_credit(values, truth, True), 1 / k)
    tally.add("least asymmetric", "the patch that differs least from its own mirror image", pick_credit(values, truth, False), 1 / k)


def probe_correspondence(tally: Tally, row: Row) -> None:
    p = row.params
    points = np.asarray(p.get("candidate_points", []), np.float64)
    if not len(points):
        return
    k, truth = len(points), LETTERS.index(row.answer)
    marked = np.asarray(p["point"], np.float64)
    centre = (p.get("size", row.images[1].shape[1]) - 1) / 2
    tally.observe("answer prior", "the most frequent letter (learned on half the images)", 0, row.answer, row.fold, 1 / k)
    nearest = np.linalg.norm(points - marked, axis=1)
    tally.add("nearest the marked coordinates", "the candidate closest to where the point is marked in view 1", pick_credit(nearest, truth, False), 1 / k)
    tally.add("farthest from the marked coordinates", "the candidate farthest from where the point is marked in view 1", pick_credit(nearest, truth, True), 1 / k)
    from_centre = np.linalg.norm(points - centre, axis=1)
    tally.add("nearest the centre", "the candidate closest to the centre of view 2", pick_credit(from_centre, truth, False), 1 / k)
    tally.add("farthest from the centre", "the candidate farthest from the centre of view 2", pick_credit(from_centre, truth, True), 1 / k)
    tally.add("leftmost", "the candidate with the smallest x", pick_credit(points[:, 0], truth, False), 1 / k)
    tally.add("topmost", "the candidate with the smallest y", pick_credit(points[:, 1], truth, False), 1 / k)
    radius = int(p.get("radius", 8)) * 3
    second = row.images[1]
    local = []
    for x, y in points.round().astype(int):
        window = second[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        local.append(sharpness(window))
    tally.add("sharpest surroundings", "the candidate whose surroundings in view 2 are sharpest", pick_credit(local, truth, True), 1 / k)
    tally.add("blurriest surroundings", "the candidate whose surroundings in view 2 are least sharp", pick_credit(local, truth, False), 1 / k)


def _pair_probes(tally: Tally, row: Row, label: str, classes: int, group=None, same_image_task: bool = False, phase_is_geometry: bool = False) -> None:
    """Probes for two-image puzzles with one class answer (rotation, position, contrastive).
    same_image_task: comparing the two images' statistics is the skill asked for (contrastive)."""
    first, second = row.images[0], row.images[1]
    chance = 1 / classes
    tally.observe("answer prior", "the most frequent answer (learned on half the images)", 0, label, row.fold, chance)
    tally.observe("image sizes", "the answer most common for these two images' widths and heights", (first.shape[:2], second.shape[:2]), label, row.fold, chance)
    tally.observe("aspect ratio", "the answer most common for image 2's aspect ratio", round(second.shape[1] / second.shape[0], 2), label, row.fold, chance)
    (sharp_1, noise_1), (sharp_2, noise_2) = texture(first), texture(second)
    # Rounded: float summation order differs between an image and its transpose, and a binned
    # lookup would otherwise learn the rounding pattern of each angle.
    sharp = round(math.log((sharp_2 + 1e-6) / (sharp_1 + 1e-6)), 3)
    noisy = round(math.log((noise_2 + 1e-3) / (noise_1 + 1e-3)), 3)
    suffix, flaggable = (SAME_IMAGE, False) if same_image_task else ("", True)
    tally.observe("sharpness ratio", "the answer most common for image 2's sharpness relative to image 1's (binned)" + suffix, sharp, label, row.fold, chance, flaggable, continuous=True)
    tally.observe("noise ratio", "the answer most common for image 2's noise relative to image 1's (binned)" + suffix, noisy, label, row.fold, chance, flaggable, continuous=True)
    colour = round(float(np.abs(histogram(first) - histogram(second)).sum()), 4)
    tally.observe("colour distance", "the answer most common for the colour-histogram distance between the images (binned)" + suffix, colour, label, row.fold, chance, flaggable, continuous=True)
    phases = (block_phase(first), block_phase(second))
    if phase_is_geometry:  # a rotated copy's JPEG grid is axis-aligned exactly when the angle is a multiple of 90
        tally.observe("block phases", "the answer most common for the two images' JPEG block-grid phases (the grid turns with the picture)", phases, label, row.fold, chance, flaggable=False)
    else:
        tally.observe("block phases", "the answer most common for the two images' JPEG block-grid phases", phases, label, row.fold, chance)
    if group is not None:
        name, description, value, share = group
        tally.observe(name, description, sharp, value, row.fold, share, continuous=True)
    ratio = math.log(row.sizes[1] / max(1, row.sizes[0]))
    tally.observe("file size ratio", "the answer most common for image 2's encoded bytes relative to image 1's (binned)", ratio, label, row.fold, chance, flaggable=False, continuous=True)


def probe_rotation(tally: Tally, row: Row) -> None:
    angles = [str(a) for a in range(0, 360, int(row.params.get("granularity", 90)))]
    group = None
    exact = [a for a in angles if int(a) % 90 == 0]
    if len(exact) < len(angles):
        share = max(len(exact), len(angles) - len(exact)) / len(angles)
        group = ("sharpness splits 90s", "whether the angle is a multiple of 90, from image 2's sharpness relative to image 1's (binned)", int(row.answer) % 90 == 0, share)
    _pair_probes(tally, row, row.answer, len(angles), group, phase_is_geometry=group is not None)


def probe_position(tally: Tally, row: Row) -> None:
    grid = int(row.params.get("grid", 2))
    _pair_probes(tally, row, row.answer, grid * grid)


def probe_contrastive(tally: Tally, row: Row) -> None:
    _pair_probes(tally, row, row.answer, 2, same_image_task=True)


def _tile_probes(tally: Tally, row: Row, tiles: list[np.ndarray], positions: list[int], sizes: list[int] | None) -> None:
    """Probes for permutation puzzles, per tile: does a tile statistic tell its grid position?"""
    n = len(tiles)
    chance = 1 / n
    for tile, position, index in zip(tiles, positions, range(n)):
        tally.observe("answer prior", "the most frequent grid position for each shown place (learned on half the images)", index, position, row.fold, chance)
        tally.observe("tile size", "the grid position most common for a tile's width and height", tile.shape[:2], position, row.fold, chance)
        tally.observe("block phase", "the grid position most common for a tile's JPEG block-grid phase", block_phase(tile), position, row.fold, chance)
        sharp, noisy = texture(tile)
        tally.observe("sharpness", "the grid position most common for a tile's sharpness (binned)", sharp, position, row.fold, chance, continuous=True)
        tally.observe("noise", "the grid position most common for a tile's noise (binned)", noisy, position, row.fold, chance, continuous=True)
        if sizes is not None:
            tally.observe("file size", "the grid position most common for a tile's encoded bytes (binned)", sizes[index], position, row.fold, chance, flaggable=False, continuous=True)


def probe_jigsaw(tally: Tally, row: Row) -> None:
    answer = [int(v) for v in row.answer.split(",")]  # answer[position] = 1-based shown index
    position_of = {shown - 1: position for position, shown in enumerate(answer)}
    _tile_probes(tally, row, row.images, [position_of[i] for i in range(len(answer))], row.sizes)


def probe_ordering(tally: Tally, row: Row) -> None:
    p = row.params
    k, separator, (tile_w, tile_h) = int(p["grid"]), int(p["separator"]), p["tile"]
    x1, y1 = p["label_box"][2], p["label_box"][3]
    image = row.images[0]
    tiles = []
    for slot in range(k * k):
        r, c = divmod(slot, k)
        ox, oy = c * (tile_w + separator), r * (tile_h + separator)
        tiles.append(image[oy + y1 : oy + tile_h, ox + x1 : ox + tile_w])  # below and right of the label
    _tile_probes(tally, row, tiles, [int(v) for v in p["order"]], None)


# ---------------------------------------------------------------- graph puzzles (text only)
GRAPH_SKILL = " (the task itself: structure of the shown graph)"


def _degrees(row: Row) -> Counter:
    """Each shown node's degree in the shown subgraph (by its number)."""
    degree: Counter = Counter()
    for a, b in row.params.get("edges", []):
        degree[a] += 1
        degree[b] += 1
    return degree


def _candidate_probes(tally: Tally, row: Row, numbers: list[int], lengths: list[int]) -> None:
    """Lettered graph puzzles: does a candidate's number, shown degree or text length, or the
    letter itself, tell the answer?"""
    k, truth = len(lengths), LETTERS.index(row.answer)
    tally.observe("answer prior", "the most frequent letter (learned on half the nodes)", 0, row.answer, row.fold, 1 / k)
    tally.add("longest text", "the candidate with the longest text", pick_credit(lengths, truth, True), 1 / k)
    tally.add("shortest text", "the candidate with the shortest text", pick_credit(lengths, truth, False), 1 / k)
    if numbers:
        degree = _degrees(row)
        tally.add("lowest number", "the candidate node with the lowest number", pick_credit(numbers, truth, False), 1 / k)
        tally.add("highest number", "the candidate node with the highest number", pick_credit(numbers, truth, True), 1 / k)
        tally.add("highest degree", "the candidate with the most edges shown", pick_credit([degree[n] for n in numbers], truth, True), 1 / k)
        tally.add("lowest degree", "the candidate with the fewest edges shown", pick_credit([degree[n] for n in numbers], truth, False), 1 / k)


def _shared(row: Row, a: int, b: int) -> int:
    """Shown neighbours that nodes a and b have in common."""
    links: dict[int, set[int]] = defaultdict(set)
    for u, v in row.params.get("edges", []):
        links[u].add(v)
        links[v].add(u)
    return len(links[a] & links[b])


SOLVER = " (the task itself: text similarity and shown structure, ssl4rl.graph_solver)"


def probe_masking(tally: Tally, row: Row) -> None:
    p = row.params
    k, truth = len(p["candidate_lengths"]), LETTERS.index(row.answer)
    _candidate_probes(tally, row, [], p["candidate_lengths"])
    tally.observe("masked node's number", "the letter most common for the masked node's number", p["target"], row.answer, row.fold, 1 / k)
    tally.add("intended skill", "the candidate text most like the masked node's neighbours' (TF-IDF)" + SOLVER,
              pick_credit(graph_solver.candidate_scores(row.task, p, row.prompt), truth, True), 1 / k, flaggable=False)  # fmt: skip


def probe_neighbour(tally: Tally, row: Row) -> None:
    """neighbour and kg-link: the centre (head) and its candidates."""
    p = row.params
    numbers, lengths = p["candidate_nodes"], p["lengths"]
    k, truth = len(numbers), LETTERS.index(row.answer)
    _candidate_probes(tally, row, numbers, [lengths[n] for n in numbers])
    centre = p.get("centre", p.get("head"))
    shared = [_shared(row, centre, n) for n in numbers]
    tally.add("most shared neighbours", "the candidate sharing the most shown neighbours with the centre" + GRAPH_SKILL, pick_credit(shared, truth, True), 1 / k, flaggable=False)
    tally.add("fewest shared neighbours", "the candidate sharing the fewest shown neighbours with the centre", pick_credit(shared, truth, False), 1 / k)
    linked = [float(sorted((centre, n)) in [sorted(e) for e in p["edges"]]) for n in numbers]
    tally.add("linked to the centre", "a candidate linked to the centre (head) in the shown edges or facts", pick_credit(linked, truth, True), 1 / k)
    tally.add("not linked to the centre", "a candidate not linked to the centre (head) in the shown edges or facts", pick_credit(linked, truth, False), 1 / k)
    tally.add("intended skill", "the candidate closest to the centre: shared neighbours, path length, then TF-IDF text similarity" + SOLVER,
              pick_credit(graph_solver.candidate_scores(row.task, p, row.prompt), truth, True), 1 / k, flaggable=False)  # fmt: skip


def probe_link(tally: Tally, row: Row) -> None:
    p = row.params
    u, v, degree, lengths = p["u"], p["v"], _degrees(row), p["lengths"]
    tally.observe("answer prior", "the most frequent answer (learned on half the nodes)", 0, row.answer, row.fold, 0.5)
    tally.observe("number order", "the answer most common for whether u's number is below v's", u < v, row.answer, row.fold, 0.5)
    tally.observe("numbers", "the answer most common for u's and v's numbers (binned sum)", u + v, row.answer, row.fold, 0.5, continuous=True)
    tally.observe("degrees", "the answer most common for u's and v's shown degrees (binned sum)", degree[u] + degree[v], row.answer, row.fold, 0.5, continuous=True)
    tally.observe("text lengths", "the answer most common for u's and v's text lengths (binned sum)", lengths[u] + lengths[v], row.answer, row.fold, 0.5, continuous=True)
    tally.observe("shown nodes", "the answer most common for the number of nodes shown", p["nodes"], row.answer, row.fold, 0.5)
    tally.observe("edgeless end", "the answer most common for whether u or v shows no edge", min(degree[u], degree[v]) == 0, row.answer, row.fold, 0.5)
    tally.observe("shared neighbours", "the answer most common for the number of shown neighbours u and v share", min(_shared(row, u, v), 3), row.answer, row.fold, 0.5)
    length = graph_solver.path_length(graph_solver.links(p["edges"]), u, v)
    tally.observe("path length", "the answer most common for the hops between u and v in the shown graph", length, row.answer, row.fold, 0.5)
    tally.observe("intended skill", "the answer most common for how alike u's and v's texts are (TF-IDF cosine, binned)" + SOLVER,
                  graph_solver.pair_score(p, row.prompt), row.answer, row.fold, 0.5, flaggable=False, continuous=True)  # fmt: skip


PROBES: dict[str, Callable[[Tally, Row], None]] = {
    "rotation": probe_rotation, "position": probe_position, "contrastive": probe_contrastive,
    "jigsaw": probe_jigsaw, "ordering": probe_ordering, "inpainting": probe_inpainting,
    "similarity": probe_similarity, "flip": probe_flip, "correspondence": probe_correspondence,
    "masking": probe_masking, "neighbour": probe_neighbour, "kg-link": probe_neighbour, "link": probe_link,
}  # fmt: skip


def audit(folder: str | Path) -> dict:
    """Run every probe of each row's task over a build: {"groups": [...], "flagged": N}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for row in decoded_rows(folder):
        if row.task not in PROBES:
            continue
        tally = tallies[(row.task, row.level)]
        tally.rows += 1
        tally.answers[row.answer] += 1
        tally.puzzle_chance += chance(f"ssl4rl/{row.task}", row.answer, {"task": row.task, "params": row.params})
        PROBES[row.task](tally, row)
    groups = []
    for (task, level), tally in sorted(tallies.items()):
        results = tally.results(task, level)
        groups.append({"task": task, "level": level, "rows": tally.rows, "answers": dict(sorted(tally.answers.items())),
                       "chance": round(tally.puzzle_chance / max(tally.rows, 1), 4), "probes": [asdict(r) for r in results]})  # fmt: skip
    return {"folder": str(folder), "groups": groups, "flagged": sum(p["flagged"] for g in groups for p in g["probes"])}


def format_report(report: dict) -> str:
    """The audit as text: per task and level, the answer distribution, then one line per probe."""
    lines = []
    for group in report["groups"]:
        total = sum(group["answers"].values()) or 1
        if len(group["answers"]) <= 12:
            answers = ", ".join(f"{a} {100 * c / total:.0f}%" for a, c in group["answers"].items())
        else:  # permutations: too many to list
            top, count = max(group["answers"].items(), key=lambda item: item[1])
            answers = f"{len(group['answers'])} distinct, the most frequent ({top}) {100 * count / total:.0f}%"
        lines.append(f"{group['task']} / {group['level']}: {group['rows']} rows; chance {100 * group['chance']:.1f}% (a uniform random valid answer); answers: {answers}")
        for p in group["probes"]:
            mark = "FLAG" if p["flagged"] else ("  - " if p["flaggable"] else "info")
            note = f" [{p['note']}]" if p["note"] else ""
            lines.append(f"  {mark} {p['probe']:<38} {100 * p['accuracy']:5.1f}% vs chance {100 * p['chance']:4.1f}%  n={p['items']:<5} {p['description']}{note}")
    flagged = report["flagged"]
    lines.append(f"{flagged} probe(s) flagged (more than {100 * FLAG_MARGIN:.0f} points above chance, at {CONFIDENCE_Z:g} standard errors)" if flagged else "no shortcut flagged")
    return "\n".join(lines)
