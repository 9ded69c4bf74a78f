import pytest

from codebackdoor.code.parser import cached_parse, check_valid, is_valid, parse, parse_edited
from codebackdoor.errors import UserError


def _has_missing(node) -> bool:
    return node.is_missing or any(_has_missing(child) for child in node.children)


def test_has_error_catches_missing_nodes():
    code = "class A { void f() { int x = 1 } }"
    root = parse(code, "java").root_node
    assert _has_missing(root)
    assert not is_valid(code, "java")


def test_check_valid_accepts_valid_code():
    check_valid("def f(x):\n    return x\n", "python")
    check_valid("class A { void f() { int x = 1; } }", "java")


def test_check_valid_names_missing_token_with_line_and_column():
    with pytest.raises(UserError) as error:
        check_valid("class A {\n  void f() { int x = 1 } }", "java")
    assert str(error.value) == (
        "code does not parse (java): line 2, column 23: near '} }' (missing ';')"
    )


def test_check_valid_names_error_node():
    with pytest.raises(UserError) as error:
        check_valid("x = 1\ny = 2 +* $\n", "python")
    assert str(error.value).startswith("code does not parse (python): line 2, column ")


def test_check_valid_column_counts_characters_not_bytes():
    with pytest.raises(UserError) as error:
        check_valid('s = "ééé" $\n', "python")
    assert ": line 1, column 11: near '$'" in str(error.value)


def test_cached_parse_reuses_tree_for_equal_text():
    code = "def cached(a):\n    return a + 1\n"
    assert cached_parse(code, "python") is cached_parse("".join([code]), "python")
    assert cached_parse(code, "java") is not cached_parse(code, "python")


def test_parse_edited_equals_fresh_parse():
    old = "def f(a):\n    b = a\n    return b\n"
    inserted = "    if a:\n        raise Exception('x')\n"
    at = old.index("    b")
    new = old[:at] + inserted + old[at:]
    tree = parse_edited(old, new, "python", at, at, at + len(inserted))
    assert str(tree.root_node) == str(parse(new, "python").root_node)
    assert cached_parse(new, "python") is tree
