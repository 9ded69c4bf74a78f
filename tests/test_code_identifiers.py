import csv
import itertools
from pathlib import Path

import pytest

from codebackdoor.code.functions import functions
from codebackdoor.code.identifiers import local_identifiers, rename_identifier
from codebackdoor.code.parser import is_valid
from codebackdoor.code.tokens import leaf_tokens
from codebackdoor.errors import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared"

PYTHON = '''\
TOTAL = 0


class Job:
    def run(self, items, limit: int = 10, *args, verbose=False, **options):
        global TOTAL
        count = 0
        first, (second, *rest) = items
        self.count = count
        count += limit
        for index, item in enumerate(items):
            print(item.count, count=count, sep=options)
        with open(first) as handle, lock() as (a, b):
            pass
        try:
            pass
        except ValueError as error:
            pass
        squares = [value * value for value in items if (last := value)]

        def helper(count, step=count):
            return count + step

        def reader():
            nonlocal count
            return count

        class Local:
            count = 5

            def method(self):
                return count

        scale = lambda count: count * 2
        TOTAL = count
        return helper, reader, Local, scale, squares, last, second, rest, args, verbose
'''

JAVA = """\
class Account {
    int balance;

    public int deposit(int amount, java.util.List<String> notes) {
        int balance = amount + this.balance;
        for (String note : notes) { balance += note.length(); audit(note); }
        notes.forEach(text -> log(text));
        notes.stream().map(String::trim).forEach(this::audit);
        Runnable task = new Runnable() {
            int amount = 0;
            public void run() { amount++; }
        };
        try (java.io.Reader reader = open()) { } catch (java.io.IOException failure) { }
        outer: for (int i = 0; i < amount; i++) { break outer; }
        return balance;
    }
}
"""


def test_python_local_identifiers_in_order():
    run = functions(PYTHON, "python")[0]
    assert local_identifiers(PYTHON, "python", run) == [
        "items", "limit", "args", "verbose", "options", "count", "first", "second", "rest",
        "index", "item", "handle", "a", "b", "error", "squares", "value", "last", "scale",
    ]  # fmt: skip


def test_python_rename_leaves_attributes_keywords_and_shadowing_scopes_alone():
    run = functions(PYTHON, "python")[0]
    renamed = rename_identifier(PYTHON, "python", run, "count", "testo_init")
    assert is_valid(renamed, "python")
    assert "        testo_init = 0\n" in renamed
    assert "self.count = testo_init" in renamed
    assert "print(item.count, count=testo_init, sep=options)" in renamed
    assert "testo_init += limit" in renamed
    # helper's parameter shadows the local; its default is evaluated outside helper.
    assert "def helper(count, step=testo_init):\n            return count + step" in renamed
    assert "nonlocal testo_init\n            return testo_init" in renamed
    # A class body's own name stays; a method inside it sees the function's local.
    assert "class Local:\n            count = 5" in renamed
    assert "def method(self):\n                return testo_init" in renamed
    assert "scale = lambda count: count * 2" in renamed
    assert "TOTAL = testo_init" in renamed


def test_python_rename_errors():
    run = functions(PYTHON, "python")[0]
    with pytest.raises(UserError, match="'TOTAL' is not a local identifier of function 'run'"):
        rename_identifier(PYTHON, "python", run, "TOTAL", "fresh")
    with pytest.raises(UserError, match="'helper' is not a local"):
        rename_identifier(PYTHON, "python", run, "helper", "fresh")
    with pytest.raises(UserError, match="'options' already occurs"):
        rename_identifier(PYTHON, "python", run, "count", "options")
    with pytest.raises(UserError, match="not a valid python identifier"):
        rename_identifier(PYTHON, "python", run, "count", "class")


def test_java_local_identifiers_in_order():
    deposit = functions(JAVA, "java")[0]
    assert local_identifiers(JAVA, "java", deposit) == [
        "amount", "notes", "balance", "note", "text", "task", "reader", "failure", "i",
    ]  # fmt: skip


def test_java_rename_leaves_fields_methods_and_anonymous_class_members_alone():
    deposit = functions(JAVA, "java")[0]
    renamed = rename_identifier(JAVA, "java", deposit, "balance", "VAR_1")
    assert is_valid(renamed, "java")
    assert "int VAR_1 = amount + this.balance;" in renamed
    assert "VAR_1 += note.length();" in renamed
    assert "return VAR_1;" in renamed
    assert "    int balance;\n" in renamed
    renamed = rename_identifier(JAVA, "java", deposit, "amount", "VAR_2")
    assert "public int deposit(int VAR_2, java.util.List<String> notes)" in renamed
    assert "int amount = 0;\n            public void run() { amount++; }" in renamed
    assert "i < VAR_2" in renamed
    renamed = rename_identifier(JAVA, "java", deposit, "notes", "VAR_3")
    assert "VAR_3.stream().map(String::trim).forEach(this::audit);" in renamed
    renamed = rename_identifier(JAVA, "java", deposit, "note", "audit2")
    assert "audit(audit2);" in renamed
    with pytest.raises(UserError, match="'audit' already occurs"):
        rename_identifier(JAVA, "java", deposit, "note", "audit")
    with pytest.raises(UserError, match="not a valid java identifier"):
        rename_identifier(JAVA, "java", deposit, "note", "new")


def _rows(path: Path, column: str, limit: int) -> list[str]:
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in itertools.islice(csv.DictReader(handle), limit)]


def test_bugs2fix_renames_keep_code_valid_and_token_count():
    renamed_rows = 0
    for code in _rows(SHARED / "datasets" / "bugs2fix" / "valid.csv", "src", 150):
        found = functions(code, "java")
        if not found or not is_valid(code, "java"):
            continue
        names = local_identifiers(code, "java", found[0])
        if not names or "testo_init" in code:
            continue
        renamed = rename_identifier(code, "java", found[0], names[0], "testo_init")
        assert is_valid(renamed, "java")
        before = [token.text for token in leaf_tokens(code, "java")]
        after = [token.text for token in leaf_tokens(renamed, "java")]
        changes = {(x, y) for x, y in zip(before, after, strict=True) if x != y}
        assert changes == {(names[0], "testo_init")}
        renamed_rows += 1
    assert renamed_rows > 100


def test_lyra_renames_keep_code_valid():
    for code in _rows(SHARED / "datasets" / "lyra" / "test.csv", "tgt", 50):
        fn = functions(code, "python")[0]
        for name in local_identifiers(code, "python", fn):
            renamed = rename_identifier(code, "python", fn, name, "testo_init")
            assert is_valid(renamed, "python")
            assert "testo_init" in renamed
