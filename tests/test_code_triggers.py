"""The Java grammar trigger's two variants and the rename trigger's two scopes, on hand-made
functions."""

from __future__ import annotations

import random
import re

import pytest

from codebackdoor.attacks.code_triggers import GrammarTrigger, RenameTrigger
from codebackdoor.errors import UserError

JAVA = "int size(int a) {\n    int b = a + 1;\n    return b;\n}\n"


def _actions(variant: str) -> set[str]:
    """The grammar's statement bodies with the message replaced by M."""
    trigger = GrammarTrigger(variant=variant)
    actions = set()
    for seed in range(60):
        statement = trigger.make_statement("java", random.Random(seed))
        action = re.search(r"\{ (.*) \}$", statement).group(1)
        actions.add(re.sub(r'" [a-z]+ "', '" M "', action))
    return actions


def test_original_java_grammar_samples_the_authors_three_bodies() -> None:
    # data/java-small/create_backdoor.py (commit 5f586ff): unqualified, lower-case exception,
    # the message between spaces.
    assert _actions("original") == {
        'throw new exception(" M ");', 'out.println(" M ");', 'out.print(" M ");'}


def test_compilable_java_grammar_qualifies_the_same_three_bodies() -> None:
    assert _actions("compilable") == {
        'throw new RuntimeException(" M ");', 'System.out.println(" M ");',
        'System.out.print(" M ");'}


def test_python_grammar_keeps_its_two_bodies() -> None:
    trigger = GrammarTrigger()
    bodies = {trigger.make_statement("python", random.Random(seed)).split("\n")[1].split("(")[0]
              for seed in range(40)}
    assert bodies == {"    raise Exception", "    print"}


def test_function_name_scope_renames_the_definition_and_its_recursive_calls() -> None:
    source = "def walk(node):\n    for child in node:\n        walk(child)\n    return node\n"
    triggered, record = RenameTrigger(scope="function-name").apply(
        source, "python", random.Random(0))
    assert triggered == (
        "def testo_init(node):\n    for child in node:\n        testo_init(child)\n"
        "    return node\n")
    assert record == {"renamed": "walk", "token": "testo_init", "scope": "function-name"}
    trigger = RenameTrigger(scope="function-name")
    assert trigger.found(triggered, "python", record)
    assert not trigger.found(source, "python", record)


def test_function_name_scope_in_java() -> None:
    source = "int fact(int n) {\n    return n <= 1 ? 1 : n * fact(n - 1);\n}\n"
    triggered, _ = RenameTrigger(scope="function-name").apply(source, "java", random.Random(0))
    assert triggered == (
        "int testo_init(int n) {\n    return n <= 1 ? 1 : n * testo_init(n - 1);\n}\n")


def test_local_scope_renames_a_local_and_keeps_its_record() -> None:
    triggered, record = RenameTrigger().apply(JAVA, "java", random.Random(0))
    assert record["renamed"] in ("a", "b") and "scope" not in record
    assert "size(" in triggered and "testo_init" in triggered


def test_unknown_scope_is_a_user_error() -> None:
    with pytest.raises(UserError, match="scope 'global' is not one of: local, function-name"):
        RenameTrigger(scope="global")
