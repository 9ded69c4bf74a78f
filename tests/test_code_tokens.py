import csv
import inspect
import itertools
import textwrap
from pathlib import Path

import pytest

from codebackdoor.code.parser import is_valid
from codebackdoor.code.tokens import leaf_tokens

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_python_tokens_strings_whole_comments_dropped():
    code = 'def f(x):  # comment\n    return f"a {x} b" + \'é\' + \\\n        r"""c"""\n'
    tokens = leaf_tokens(code, "python")
    assert [token.text for token in tokens] == [
        "def", "f", "(", "x", ")", ":", "return", 'f"a {x} b"', "+", "'é'", "+", 'r"""c"""',
    ]  # fmt: skip
    assert tokens[7].type == "string"
    data = code.encode("utf-8")
    for token in tokens:
        assert data[token.start : token.end].decode("utf-8") == token.text


def test_java_tokens_and_missing_nodes_dropped():
    code = 'class A { /** doc */ void f() { String s = "x y"; // c\n int n = 1 } }'
    assert not is_valid(code, "java")  # a MISSING ';' after 1
    texts = [token.text for token in leaf_tokens(code, "java")]
    assert texts[-6:] == ["int", "n", "=", "1", "}", "}"]
    assert '"x y"' in texts
    assert "" not in texts
    assert not any(text.startswith(("/", "//")) for text in texts)


def test_stdlib_tokens_cover_all_code_outside_comments():
    source = inspect.getsource(textwrap)
    tokens = leaf_tokens(source, "python")
    data = source.encode("utf-8")
    for before, after in itertools.pairwise(tokens):
        assert before.end <= after.start
        gap = data[before.end : after.start].decode("utf-8")
        # Between tokens there is only layout, comments and line continuations.
        stripped = "".join(line.split("#", 1)[0] for line in gap.split("\n"))
        assert stripped.replace("\\", "").strip() == ""


def test_bugs2fix_lines_are_their_tokens():
    path = SHARED / "datasets" / "bugs2fix" / "valid.csv"
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row["src"] for row in itertools.islice(csv.DictReader(handle), 300)]
    checked = 0
    for code in rows:
        if is_valid(code, "java") and '"' not in code:
            texts = [token.text for token in leaf_tokens(code, "java")]
            assert "".join(texts) == "".join(code.split())
            checked += 1
    assert checked > 250
