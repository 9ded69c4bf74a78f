"""DeepBugs-style mutations: one edit, of the named kind, that parses and changes the code."""

from __future__ import annotations

import random

import pytest

from codebackdoor.code.parser import is_valid
from codebackdoor.data.mutations import KINDS, mutate

PYTHON = '''def scale(values, factor, offset):
    label = "%s items" % len(values)
    result = [clip(v * factor, offset) for v in values if v >= 0]
    return result, label + "!"
'''
JAVA = '''public int scale(int[] values, int factor) {
    String label = "n=" + values.length;
    int total = 0;
    for (int i = 0; i < values.length; i++) {
        total = Math.max(total, values[i] * factor);
    }
    return total;
}
'''
# Expected sites: kind -> the original text each possible edit replaces.
SITES = {
    "python": {"swap-operator": {"*"}, "change-comparison": {">="},
               "swap-arguments": {"v * factor, offset"}},
    "java": {"swap-operator": {"*"}, "change-comparison": {"<"},
             "swap-arguments": {"total, values[i] * factor"}},
}


@pytest.mark.parametrize(("lang", "code"), [("python", PYTHON), ("java", JAVA)])
def test_mutations_parse_differ_and_hit_only_the_expected_sites(lang: str, code: str) -> None:
    seen: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for seed in range(60):
        mutation = mutate(code, lang, random.Random(seed))
        assert mutation is not None
        assert mutation.code != code
        assert is_valid(mutation.code, lang)
        data = code.encode()
        start = mutation.start
        assert data[start : start + len(mutation.before.encode())].decode() == mutation.before
        rebuilt = data[:start] + mutation.after.encode() + data[start + len(mutation.before):]
        assert rebuilt.decode() == mutation.code
        seen[mutation.kind].add(mutation.before)
    # Every kind occurs, and string formatting/concatenation ("%", "+" with a literal) never.
    assert seen == SITES[lang]


def test_comparison_flips_and_argument_swap_are_exact() -> None:
    flips = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
    for before, after in flips.items():
        mutation = mutate(f"def f(a, b):\n    return a {before} b\n", "python", random.Random(0))
        assert mutation.kind == "change-comparison"
        assert mutation.code == f"def f(a, b):\n    return a {after} b\n"
    swapped = mutate("void f() {\n    g(a, b.c());\n}\n", "java", random.Random(0))
    assert swapped.code == "void f() {\n    g(b.c(), a);\n}\n"


def test_keyword_and_identical_arguments_are_not_swapped() -> None:
    assert mutate("def f():\n    return g(x, key=y, *rest)\n", "python",
                  random.Random(0)) is None
    assert mutate("def f():\n    return g(x, x)\n", "python", random.Random(0)) is None
    assert mutate("def f():\n    return 'a' + b\n", "python", random.Random(0)) is None


def test_same_seed_same_mutation() -> None:
    first = [mutate(JAVA, "java", random.Random(seed)) for seed in range(10)]
    again = [mutate(JAVA, "java", random.Random(seed)) for seed in range(10)]
    assert first == again
    assert len({mutation.code for mutation in first}) > 3
