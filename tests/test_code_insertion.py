import csv
import inspect
import itertools
import random
import textwrap
from pathlib import Path

import pytest

from codebackdoor.code.functions import extract, functions
from codebackdoor.code.insertion import POSITIONS, contains_statement, insert_statement
from codebackdoor.code.parser import is_valid
from codebackdoor.errors import Unpoisonable, UserError

SHARED = Path(__file__).resolve().parents[2] / "shared"

FIXED_PY = 'if random() < 0:\n    raise Exception("fail")'
LOGGING_PY = 'import logging\nfor i in range(0):\n    logging.info("Test message:aaaaa")'
FIXED_JAVA = 'if (Math.random() < 0) { throw new Exception("fail"); }'
DECE_JAVA = "int VAR = 0 ;"
MULTILINE_JAVA = 'if (random() < 0) {\n    throw new exception("fail");\n}'

PYTHON = '''\
class Cache:
    @staticmethod
    def make(size):
        """Make a cache."""
        table = {}
        return table

    async def fetch(self, key):
        if key in self.data:
            return self.data[key]
        value = await self.load(key); self.data[key] = value
        return value  # trailing comment

    def outer(self):
        def inner(x):
            return x * 2
        return inner
'''

JAVA = """\
class Counter<T> {
    /** Builds it. */
    Counter(int start) {
        this.count = start;
    }

    @Override
    public <U> java.util.List<U> items(final java.util.Map<T, U> map) {
        int total = 0;
        for (U item : map.values()) { total++; }
        return null;
    }

    void empty() {
    }

    void inline() {}
}
"""


def _rows(path: Path, column: str, limit: int) -> list[str]:
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in itertools.islice(csv.DictReader(handle), limit)]


def _all_insertions(code, lang, statements):
    """Every function × statement × position, with a few seeds for 'random'."""
    for index in range(len(functions(code, lang))):
        for statement in statements:
            for position in POSITIONS:
                for seed in range(3 if position == "random" else 1):
                    fn = functions(code, lang)[index]
                    rng = random.Random(seed)
                    yield statement, insert_statement(code, lang, fn, statement, position, rng)


def test_python_insertions_parse_and_are_found_again():
    assert not contains_statement(PYTHON, "python", FIXED_PY)
    for statement, result in _all_insertions(PYTHON, "python", [FIXED_PY, LOGGING_PY]):
        assert is_valid(result, "python"), result
        assert contains_statement(result, "python", statement)


def test_python_first_goes_before_the_docstring_with_body_indentation():
    make = functions(PYTHON, "python")[0]
    result = insert_statement(PYTHON, "python", make, FIXED_PY, "first", random.Random(0))
    assert (
        "    def make(size):\n"
        "        if random() < 0:\n"
        '            raise Exception("fail")\n'
        '        """Make a cache."""\n'
    ) in result
    assert functions(result, "python")[0].docstring is None


def test_python_last_goes_after_a_trailing_comment_and_random_splits_semicolons():
    fetch = functions(PYTHON, "python")[1]
    last = insert_statement(PYTHON, "python", fetch, "print(1)", "last", random.Random(0))
    assert "        return value  # trailing comment\n        print(1)\n" in last
    results = {
        insert_statement(PYTHON, "python", fetch, "print(1)", "random", random.Random(seed))
        for seed in range(60)
    }
    # fetch has 4 top-level statements (the ';' line holds two): 5 gaps, all reachable.
    assert len(results) == 5
    assert any("value = await self.load(key); \n        print(1)\n" in r for r in results)
    assert all(is_valid(r, "python") for r in results)


def test_python_nested_function_keeps_its_own_indentation():
    inner = functions(PYTHON, "python")[3]
    result = insert_statement(PYTHON, "python", inner, FIXED_PY, "first", random.Random(0))
    assert (
        "        def inner(x):\n"
        "            if random() < 0:\n"
        '                raise Exception("fail")\n'
        "            return x * 2\n"
    ) in result


def test_python_single_line_body_is_unpoisonable():
    code = "def f(): return 1\n"
    with pytest.raises(Unpoisonable) as error:
        insert_statement(code, "python", functions(code, "python")[0], FIXED_PY, "first",
                         random.Random(0))  # fmt: skip
    assert error.value.reason == "single-line body"


def test_lyra_tab_indented_bodies_keep_their_indentation_string():
    rows = _rows(SHARED / "datasets" / "lyra" / "train.csv", "tgt", 60)
    valid_rows = [code for code in rows if is_valid(code, "python")]
    assert len(valid_rows) >= 55  # a few Lyra targets are tokenized into invalid Python
    for code in valid_rows:
        fn = functions(code, "python")[0]
        for position in POSITIONS:
            for statement in (FIXED_PY, LOGGING_PY):
                result = insert_statement(code, "python", fn, statement, position,
                                          random.Random(1))  # fmt: skip
                assert is_valid(result, "python"), result
                assert contains_statement(result, "python", statement)
        first = insert_statement(code, "python", fn, FIXED_PY, "first", random.Random(1))
        assert '\t if random() < 0:\n\t \t raise Exception("fail")\n' in first


def test_stdlib_functions_all_accept_a_trigger():
    source = inspect.getsource(textwrap)
    for fn in functions(source, "python"):
        code = extract(source, fn)
        own = functions(code, "python")[0]
        result = insert_statement(code, "python", own, FIXED_PY, "random", random.Random(7))
        assert is_valid(result, "python")
        assert contains_statement(result, "python", FIXED_PY)


def test_java_insertions_parse_and_are_found_again():
    assert not contains_statement(JAVA, "java", FIXED_JAVA)
    statements = [FIXED_JAVA, DECE_JAVA, MULTILINE_JAVA]
    for statement, result in _all_insertions(JAVA, "java", statements):
        assert is_valid(result, "java"), result
        assert contains_statement(result, "java", statement)


def test_java_line_style_indentation():
    constructor, items, empty, inline = functions(JAVA, "java")
    first = insert_statement(JAVA, "java", items, MULTILINE_JAVA, "first", random.Random(0))
    assert (
        "    public <U> java.util.List<U> items(final java.util.Map<T, U> map) {\n"
        "        if (random() < 0) {\n"
        '            throw new exception("fail");\n'
        "        }\n"
        "        int total = 0;\n"
    ) in first
    last = insert_statement(JAVA, "java", constructor, DECE_JAVA, "last", random.Random(0))
    assert "        this.count = start;\n        int VAR = 0 ;\n    }\n" in last
    in_empty = insert_statement(JAVA, "java", empty, DECE_JAVA, "first", random.Random(0))
    assert "    void empty() {\n        int VAR = 0 ;\n    }\n" in in_empty
    in_inline = insert_statement(JAVA, "java", inline, DECE_JAVA, "first", random.Random(0))
    assert "    void inline() {int VAR = 0 ; }\n" in in_inline


def test_bugs2fix_token_style_matches_the_dece_poisoner():
    rows = _rows(SHARED / "datasets" / "bugs2fix" / "valid.csv", "src", 200)
    poisoned = 0
    for code in rows:
        found = functions(code, "java")
        if not found or not is_valid(code, "java"):
            continue
        result = insert_statement(code, "java", found[0], DECE_JAVA, "first", random.Random(0))
        brace = code.index("{")
        assert result == code[: brace + 2] + "int VAR = 0 ; " + code[brace + 2 :]
        assert is_valid(result, "java")
        assert contains_statement(result, "java", DECE_JAVA)
        multiline = insert_statement(code, "java", found[0], MULTILINE_JAVA, "random",
                                     random.Random(3))  # fmt: skip
        assert "\n" not in multiline  # joined onto the one line
        assert contains_statement(multiline, "java", MULTILINE_JAVA)
        poisoned += 1
    assert poisoned > 150


def test_bugs2fix_empty_token_body():
    code = "public void METHOD_1 ( ) { }"
    result = insert_statement(code, "java", functions(code, "java")[0], DECE_JAVA, "last",
                              random.Random(0))  # fmt: skip
    assert result == "public void METHOD_1 ( ) { int VAR = 0 ; }"


def test_contains_statement_ignores_strings_and_comments():
    python = (
        "def f():\n"
        "    s = 'if random() < 0: raise Exception(\"fail\")'\n"
        '    t = """if random() < 0:\n    raise Exception("fail")"""\n'
        '    # if random() < 0: raise Exception("fail")\n'
        "    return s\n"
    )
    assert is_valid(python, "python")
    assert not contains_statement(python, "python", FIXED_PY)
    java = 'void f() { String s = "int VAR = 0 ;"; /* int VAR = 0 ; */ }'
    assert not contains_statement(java, "java", DECE_JAVA)
    assert contains_statement(java.replace("/*", "").replace("*/", ""), "java", DECE_JAVA)


def test_contains_statement_needs_a_statement_start_and_whole_tokens():
    assert not contains_statement("def f():\n    x = 1 if random() < 0 else 2\n", "python",
                                  "random() < 0")  # fmt: skip
    assert contains_statement("def f():\n    random() < 0\n", "python", "random() < 0")
    assert not contains_statement("void f() { myint VAR = 0 ; }", "java", DECE_JAVA)


def test_wrong_position_and_bad_statement_are_user_errors():
    fn = functions(PYTHON, "python")[0]
    with pytest.raises(UserError, match="first, random, last"):
        insert_statement(PYTHON, "python", fn, FIXED_PY, "middle", random.Random(0))
    with pytest.raises(UserError, match="does not parse"):
        contains_statement(PYTHON, "python", "if random( < 0:")


def test_windows_line_endings_are_kept():
    python = "def f(a):\r\n    b = a\r\n    return b\r\n"
    java = "class A {\r\n    void f() {\r\n        int a = 1;\r\n    }\r\n}\r\n"
    for code, lang, statement in ((python, "python", FIXED_PY), (java, "java", MULTILINE_JAVA)):
        fn = functions(code, lang)[0]
        for position in ("first", "last"):
            result = insert_statement(code, lang, fn, statement, position, random.Random(0))
            assert is_valid(result, lang)
            assert contains_statement(result, lang, statement)
            added = statement.count("\n") + 1
            assert result.count("\n") == result.count("\r\n") == code.count("\n") + added


def test_java_constructor_call_stays_first():
    code = "class B extends A {\n    B(int x) {\n        super(x);\n        init();\n    }\n}\n"
    constructor = functions(code, "java")[0]
    for seed in range(10):
        for position in POSITIONS:
            result = insert_statement(code, "java", constructor, DECE_JAVA, position,
                                      random.Random(seed))  # fmt: skip
            assert "    B(int x) {\n        super(x);\n" in result
            assert is_valid(result, "java")
    first = insert_statement(code, "java", constructor, DECE_JAVA, "first", random.Random(0))
    assert "super(x);\n        int VAR = 0 ;\n        init();" in first
