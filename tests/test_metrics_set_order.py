from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys

from codebackdoor.metrics.set_order import seed0_hash, seed0_set_order

# Strings of every internal width (1, 2 and 4 bytes a character), of lengths around the 8-byte
# blocks, lists long enough to make the set table grow several times, and colliding keys.
_ALPHABETS = ("abcxyz_019 .\"", "abcÿé", "abαβ€", "ab😀𝔘")


def _samples() -> tuple[list[str], list[list[str]]]:
    rng = random.Random(7)
    strings = [
        "".join(rng.choice(alphabet) for _ in range(length))  # "" included
        for alphabet in _ALPHABETS
        for length in range(18)
    ]
    lists = []
    for size in (1, 2, 3, 4, 5, 6, 8, 12, 20, 40, 90):
        for _ in range(20):
            pool = rng.sample(strings, min(len(strings), size // 2 + 1))
            lists.append([rng.choice(pool) for _ in range(size)])
    # Keys that share their low hash bits, so that they probe past the linear run of 10 slots
    # and the perturbed jumps (and the order they were added in) decide their slots.
    names = (f"v{i}" for i in itertools.count())
    colliding = list(itertools.islice((n for n in names if seed0_hash(n) & 127 == 5), 40))
    for _ in range(5):
        lists.append(rng.sample(colliding, len(colliding)))
    return strings + colliding, lists


def test_hashes_and_set_orders_are_those_of_a_seed_0_interpreter():
    strings, lists = _samples()
    script = (
        "import json, sys\n"
        "strings, lists = json.load(sys.stdin)\n"
        "print(json.dumps([[hash(s) for s in strings], [list(set(l)) for l in lists]]))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps([strings, lists]),
        capture_output=True, text=True, env=env, check=True,
    )
    hashes, orders = json.loads(done.stdout)
    assert [seed0_hash(s) for s in strings] == hashes
    assert [seed0_set_order(items) for items in lists] == orders
