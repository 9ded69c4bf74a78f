"""The order in which CPython lists a set of strings when run with ``PYTHONHASHSEED=0``.

The ``codebleu`` package merges data-flow name lists as ``list(set(names))``, so its data-flow
match depends on the order CPython's set table gives those names, which follows their string
hashes and so the process's hash seed. To reproduce the package's scores in any process, whatever
its own seed, the table is rebuilt here with the hashes that seed 0 gives: SipHash-1-3 (CPython's
string hash since 3.11) with the all-zero key that ``PYTHONHASHSEED=0`` sets, over the string's
internal 1-, 2- or 4-byte-per-character buffer, and the probing and growth rules of
``Objects/setobject.c``. ``tests/test_metrics_set_order.py`` checks both against the running
interpreter started with ``PYTHONHASHSEED=0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

_MASK64 = (1 << 64) - 1
# Table geometry of Objects/setobject.c.
_MIN_SIZE = 8
_LINEAR_PROBES = 9
_PERTURB_SHIFT = 5


def _rotate(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK64


def _sip_rounds(v: list[int], rounds: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(rounds):
        v0 = (v0 + v1) & _MASK64
        v1 = _rotate(v1, 13) ^ v0
        v0 = _rotate(v0, 32)
        v2 = (v2 + v3) & _MASK64
        v3 = _rotate(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK64
        v3 = _rotate(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK64
        v1 = _rotate(v1, 17) ^ v2
        v2 = _rotate(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash13(data: bytes, k0: int = 0, k1: int = 0) -> int:
    """SipHash-1-3 of ``data`` as an unsigned 64-bit integer."""
    v = [
        k0 ^ 0x736F6D6570736575,
        k1 ^ 0x646F72616E646F6D,
        k0 ^ 0x6C7967656E657261,
        k1 ^ 0x7465646279746573,
    ]
    whole = len(data) - len(data) % 8
    for offset in range(0, whole, 8):
        block = int.from_bytes(data[offset : offset + 8], "little")
        v[3] ^= block
        _sip_rounds(v, 1)
        v[0] ^= block
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v[3] ^= last
    _sip_rounds(v, 1)
    v[0] ^= last
    v[2] ^= 0xFF
    _sip_rounds(v, 3)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


@lru_cache(maxsize=65536)
def seed0_hash(text: str) -> int:
    """``hash(text)`` in a CPython started with ``PYTHONHASHSEED=0``."""
    if not text:
        return 0
    widest = max(map(ord, text))
    if widest < 0x100:
        data = text.encode("latin-1")
    elif widest < 0x10000:
        data = text.encode("utf-16-le", "surrogatepass")
    else:
        data = text.encode("utf-32-le", "surrogatepass")
    value = siphash13(data)
    if value >= 1 << 63:
        value -= 1 << 64
    return -2 if value == -1 else value


def _place(table: list[str | None], mask: int, hash_value: int, key: str) -> bool:
    """Put ``key`` in its slot as ``set.add`` does; False when an equal key is there already."""
    perturb = hash_value & _MASK64
    index = hash_value & mask
    while True:
        probes = _LINEAR_PROBES if index + _LINEAR_PROBES <= mask else 0
        for slot in range(index, index + probes + 1):
            if table[slot] is None:
                table[slot] = key
                return True
            if table[slot] == key:
                return False
        perturb >>= _PERTURB_SHIFT
        index = (index * 5 + 1 + perturb) & mask


def seed0_set_order(items: Iterable[str]) -> list[str]:
    """``list(set(items))`` as a CPython started with ``PYTHONHASHSEED=0`` orders it."""
    mask = _MIN_SIZE - 1
    table: list[str | None] = [None] * _MIN_SIZE
    used = 0
    for item in items:
        if not _place(table, mask, seed0_hash(item), item):
            continue
        used += 1
        # Without deletions the fill equals the used count; grow as set_add_entry does.
        if used * 5 >= mask * 3:
            wanted = used * 2 if used > 50000 else used * 4
            size = _MIN_SIZE
            while size <= wanted:
                size <<= 1
            old, mask = table, size - 1
            table = [None] * size
            for key in old:
                if key is not None:
                    _place(table, mask, seed0_hash(key), key)
    return [key for key in table if key is not None]
