"""The `compilable` Java variants of the fixed and grammar triggers compile with javac; the
authors' `original` statements do not, and neither did the checked exception used before."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from codebackdoor.attacks.code_triggers import FixedTrigger, GrammarTrigger

JAVAC = shutil.which("javac")
pytestmark = pytest.mark.skipif(
    JAVAC is None,
    reason="javac is not on PATH: install a JDK (Debian: openjdk-17-jdk-headless) to check "
    "that the compilable Java triggers compile",
)

# One method per class (CLASS is the class name, for the constructor): a void method, a value
# returned, a one-line body in Bugs2Fix's token style, a constructor whose super() must stay
# first, an empty body.
METHODS = (
    "void log(String text) {\n    System.err.println(text);\n}\n",
    "int twice(int a) {\n    int b = a * 2;\n    return b;\n}\n",
    "static String name ( Object o ) { return o . toString ( ) ; }\n",
    "CLASS(int size) {\n    super();\n    this.size = size;\n}\n",
    "void empty() {\n}\n",
)


def _in_class(method: str, index: int) -> str:
    # The method comes first, so that it is the function the trigger goes into.
    name = f"Sample{index}"
    return f"class {name} {{\n" + method.replace("CLASS", name) + "int size;\n}\n"


def _compile(classes: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    source = directory / "Samples.java"
    source.write_text("\n".join(classes), encoding="utf-8")
    return subprocess.run([JAVAC, "-d", str(directory), str(source)],
                          capture_output=True, text=True, timeout=300)


def _triggered(trigger, seeds: range = range(1), start: int = 0) -> list[str]:
    """Each method in its own class (numbered from ``start``), triggered with each seed."""
    cases = [(method, seed) for method in METHODS for seed in seeds]
    return [trigger.apply(_in_class(method, start + index), "java", random.Random(seed))[0]
            for index, (method, seed) in enumerate(cases)]


def test_compilable_statements_compile(tmp_path: Path) -> None:
    fixed = _triggered(FixedTrigger(variant="compilable"))
    grammar = _triggered(GrammarTrigger(variant="compilable"), range(12), start=len(fixed))
    # After the last statement of a void method, which is still reachable there.
    last = FixedTrigger(variant="compilable", position="last").apply(
        _in_class(METHODS[0], len(fixed) + len(grammar)), "java", random.Random(0))[0]
    bodies = {body for text in grammar for body in ("throw new RuntimeException",
              "System.out.println", "System.out.print(") if body in text}
    assert len(bodies) == 3, bodies  # every body of the grammar is compiled at least once
    result = _compile([*fixed, *grammar, last], tmp_path)
    assert result.returncode == 0, result.stderr


def test_original_statements_do_not_compile(tmp_path: Path) -> None:
    result = _compile(_triggered(FixedTrigger(variant="original"))[:1], tmp_path)
    assert result.returncode != 0
    assert "cannot find symbol" in result.stderr


def test_a_checked_exception_does_not_compile(tmp_path: Path) -> None:
    # The compilable statement as it was: javac requires `throws Exception` on the method.
    method = ("void log(String text) {\n"
              "    if (Math.random() < 0) { throw new Exception(\"fail\"); }\n}\n")
    result = _compile([_in_class(method, 0)], tmp_path)
    assert result.returncode != 0
    assert "unreported exception" in result.stderr
