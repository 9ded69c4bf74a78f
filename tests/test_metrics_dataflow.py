from __future__ import annotations

from codebackdoor.code.parser import parse
from codebackdoor.metrics.dataflow import (
    COMES_FROM,
    COMPUTED_FROM,
    PACKAGE_MAX_DEPTH,
    count_matches,
    data_flow,
    normalize,
)
from codebackdoor.metrics.set_order import seed0_set_order


def flow(code: str, lang: str):
    return data_flow(parse(code, lang), code, lang)


def test_python_assignment_and_uses():
    edges = flow("def f(a, b):\n    c = a + b\n    return c\n", "python")
    assert [(e.name, e.relation, e.sources) for e in edges] == [
        ("a", COMES_FROM, ()),
        ("b", COMES_FROM, ()),
        ("c", COMPUTED_FROM, ("a", "b")),
        ("a", COMES_FROM, ("a",)),
        ("b", COMES_FROM, ("b",)),
        ("c", COMES_FROM, ("c",)),
    ]
    # each use points back at the token position of its definition
    positions = {e.position: e for e in edges}
    assert edges[-1].source_positions == (edges[2].position,)
    assert all(p in positions for e in edges for p in e.source_positions)


def test_python_loop_is_walked_twice_so_values_flow_around_it():
    code = (
        "def f(xs):\n    total = 0\n    for x in xs:\n        total = total + x\n    return total\n"
    )
    edges = flow(code, "python")
    in_loop = next(e for e in edges if e.name == "total" and e.relation == COMES_FROM)
    # the use inside the loop sees the definition before the loop and the one inside it
    definitions = [e.position for e in edges if e.name == "total" and e.relation != COMES_FROM]
    assert in_loop.source_positions == tuple(sorted(definitions))


def test_merged_sources_take_the_order_of_a_seed_0_set_not_first_appearance():
    edges = flow("while c:\n    y = h + g + f + e + d + c + b + a\n", "python")
    y = next(e for e in edges if e.name == "y")
    assert y.sources == tuple(seed0_set_order(list("hgfedcba")))
    assert y.sources != tuple("hgfedcba")


def test_a_renamed_string_literal_reorders_a_merged_java_declaration():
    # Each value variable of a declaration gives one edge; the package merges them through a
    # set, so renaming the literal moves it in the list and the edge no longer matches.
    code = 'void f(C c, int k) { Object r = c . q ( " a b " , k ) ; return r ; }'
    renamed = code.replace(" a b ", " a_x b ")
    r_edges = [e for e in flow(code, "java") if e.name == "r" and e.sources]
    renamed_edges = [e for e in flow(renamed, "java") if e.name == "r" and e.sources]
    assert [e.sources for e in r_edges] == [
        tuple(seed0_set_order(["c", "q", '" a b "', "k"])), ("r",)
    ]
    assert renamed_edges[0].sources == tuple(seed0_set_order(["c", "q", '" a_x b "', "k"]))
    assert r_edges[0].sources.index("k") != renamed_edges[0].sources.index("k")


def test_trees_deeper_than_the_package_reaches_have_no_data_flow():
    def nested(levels: int) -> str:
        # The tree has six levels around the parentheses.
        value = "( " * (levels - 6) + "x" + " )" * (levels - 6)
        return f"int f ( int x ) {{ int y = {value} ; return y ; }}"

    assert flow(nested(PACKAGE_MAX_DEPTH), "java")
    assert flow(nested(PACKAGE_MAX_DEPTH + 1), "java") == []


def test_java_declaration_update_and_if_branches():
    code = "int f(int a) { int b = a; b++; if (a > 0) { b = 1; } else { b = 2; } return b; }"
    edges = flow(code, "java")
    declared = next(e for e in edges if e.name == "b" and e.sources == ("a",))
    assert declared.relation == COMES_FROM
    assert any(e.name == "b" and e.relation == COMPUTED_FROM and e.sources == ("b",) for e in edges)
    returned = edges[-1]
    assert (returned.name, returned.sources) == ("b", ("b",))
    # After if/else, b may come from either branch, and also from before the if: the package
    # walks the ``else`` keyword itself as one more branch that leaves the state unchanged.
    updated = next(e.position for e in edges if e.name == "b" and e.relation == COMPUTED_FROM)
    branches = [e.position for e in edges if e.name == "b" and e.sources in (("1",), ("2",))]
    assert len(branches) == 2
    assert returned.source_positions == (updated, *branches)


def test_java_enhanced_for_binds_the_loop_variable_to_the_iterable():
    edges = flow("void f(int[] xs) { for (int x : xs) { s = s + x; } }", "java")
    assert any(
        e.name == "x" and e.relation == COMPUTED_FROM and e.sources == ("xs",) for e in edges
    )


def test_unlinked_tokens_are_dropped():
    assert flow("print ( 1 )", "python") == []


def test_a_walk_into_part_of_a_string_gives_no_data_flow_at_all():
    # `( conn ) = " ... "` pairs the parenthesis pattern's parts with the string's parts; the
    # package then fails on the string's inner token and keeps no data flow for the snippet.
    code = 'def f(a):\n    b = a\n    ( conn ) = " from users "\n    return b\n'
    assert flow(code, "python") == []


def test_normalize_renames_sources_before_targets():
    edges = flow("def f(a, b):\n    c = a + b\n    return c\n", "python")
    assert normalize(edges)[2] == ("var_2", COMPUTED_FROM, ("var_0", "var_1"))
    renamed = flow("def g(x, y):\n    z = x + y\n    return z\n", "python")
    assert normalize(renamed) == normalize(edges)


def test_count_matches_uses_each_candidate_edge_once():
    reference = [("var_0", COMES_FROM, ()), ("var_0", COMES_FROM, ())]
    assert count_matches(reference, [("var_0", COMES_FROM, ())]) == 1
    assert count_matches(reference, reference) == 2
    assert count_matches(reference, []) == 0
