"""Stratification: per-class file-disjoint splits, label-proportional samples, and the distance
between two label distributions.

A label task whose label is a property of the file (the package a function comes from) cannot
take the per-file hash split as it is: whole classes can land in train alone, so the test
distribution need not resemble training's. Splitting each class's files separately keeps files
disjoint and gives every split close to 80/10/10 of every class.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from codebackdoor.data.sources import SPLITS

SHARES = {"train": 0.8, "valid": 0.1, "test": 0.1}
# When two splits are equally far below their share, test is filled first (the scores are read
# on it), then valid.
FILL_ORDER = ("test", "valid", "train")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def split_files(sizes: Mapping[str, int]) -> dict[str, str]:
    """One class's files (path → number of examples) assigned to ``train``/``valid``/``test``:
    each file, largest first (ties by sha256 of the path), goes to the split furthest below its
    share of the class's examples. Placing the large files first lets the small ones even out the
    rest; in hash order a class with a few large files could miss valid or test entirely."""
    total = sum(sizes.values())
    filled = dict.fromkeys(SPLITS, 0)
    assigned = {}
    for path in sorted(sizes, key=lambda path: (-sizes[path], _digest(path))):
        split = max(FILL_ORDER, key=lambda split: SHARES[split] * total - filled[split])
        filled[split] += sizes[path]
        assigned[path] = split
    return assigned


def shares(sizes: Mapping[str, int], assigned: Mapping[str, str]) -> dict[str, float]:
    """The fraction of the examples in ``sizes`` that each split received."""
    total = sum(sizes.values())
    return {split: sum(n for path, n in sizes.items() if assigned[path] == split) / total
            for split in SPLITS}


def allocate(counts: Mapping[Hashable, int], size: int) -> dict[Hashable, int]:
    """``size`` places shared among the classes in proportion to ``counts`` by largest remainder
    (Hamilton): each class gets the floor of its quota, the places left go to the largest
    fractional parts (ties by class, in sorted order). A class whose quota is at least 1 always
    gets a place."""
    total = sum(counts.values())
    if size >= total:
        return dict(counts)
    quotas = {label: size * n / total for label, n in counts.items()}
    given = {label: math.floor(quota) for label, quota in quotas.items()}
    left = size - sum(given.values())
    for label in sorted(quotas, key=lambda label: (given[label] - quotas[label], str(label)))[
            :left]:
        given[label] += 1
    return given


def sample(ids: Sequence[str], labels: Sequence[Hashable] | None, size: int) -> list[int]:
    """The positions of ``size`` of the ``ids``, in their order: with ``labels``, each label's
    share allocated by ``allocate``, otherwise uniform; within a label, the ids with the
    smallest sha256. Ids alone decide, so the sample is the same on every machine and for every
    run seed."""
    if len(ids) <= size:
        return list(range(len(ids)))
    groups: dict[Hashable, list[int]] = {}
    for position, label in enumerate(labels if labels is not None else [None] * len(ids)):
        groups.setdefault(label, []).append(position)
    quota = allocate({label: len(members) for label, members in groups.items()}, size)
    chosen = []
    for label, members in groups.items():
        chosen += sorted(members, key=lambda position: _digest(ids[position]))[: quota[label]]
    return sorted(chosen)


def total_variation(counts: Mapping[Hashable, int], reference: Mapping[Hashable, int]) -> float:
    """Half the L1 distance between the two normalised label distributions (0: the same
    proportions, 1: no label in common)."""
    total, reference_total = sum(counts.values()), sum(reference.values())
    if not total or not reference_total:
        return 1.0 if total or reference_total else 0.0
    labels = set(counts) | set(reference)
    return 0.5 * sum(abs(counts.get(label, 0) / total - reference.get(label, 0) / reference_total)
                     for label in labels)


def label_counts(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    """Label → count, in sorted label order (so that printed counts read the same everywhere)."""
    return dict(sorted(Counter(labels).items(), key=lambda item: str(item[0])))
