import csv
import inspect
import itertools
import textwrap
import zipfile
from pathlib import Path

import pytest

from codebackdoor.code.functions import (
    extract,
    first_sentence,
    functions,
    with_name,
    without_docstring,
)
from codebackdoor.code.parser import is_valid

SHARED = Path(__file__).resolve().parents[2] / "shared"
JDK_SOURCES = Path("/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip")

PYTHON = '''\
import functools


@functools.cache
async def fetch(url, *, retries=3):
    """Fetch a URL.

    Retries on failure.
    """
    return await get(url)


class Store:
    @property
    def size(self):
        r"""Number of items.\\n kept raw."""
        return len(self.items)

    def put(self, key, value):
        # no docstring here
        def check(k):
            """Check one key."""
            return k is not None
        self.items[key] = value

    def only_doc(self):
        """Only a docstring."""


def one_liner(): return 1


def not_a_docstring():
    b"bytes are not docstrings"
    return f"nor are {1} f-strings"
'''

JAVA = """\
package demo;

class Box<T extends Comparable<T>> {
    private T value;

    /**
     * Creates a box holding {@code value}.
     *
     * @param value the initial value
     */
    public Box(T value) {
        this.value = value;
    }

    /** Returns the value; see {@link Box#set(Object) set}. */
    @Override
    @SuppressWarnings("unchecked")
    public synchronized <U extends T> U get() {
        return (U) value;
    }

    /* not a Javadoc */
    void set(T value) { }

    abstract int size();

    Runnable task() {
        return new Runnable() {
            public void run() { }
        };
    }
}
"""


def _text(code: str, start: int, end: int) -> str:
    return code.encode("utf-8")[start:end].decode("utf-8")


def test_python_functions_in_source_order_with_nested_and_methods():
    found = functions(PYTHON, "python")
    assert [fn.name for fn in found] == [
        "fetch", "size", "put", "check", "only_doc", "one_liner", "not_a_docstring"
    ]  # fmt: skip
    for fn in found:
        assert _text(PYTHON, fn.name_start, fn.name_end) == fn.name
        assert _text(PYTHON, fn.start, fn.end).startswith(("def ", "async def "))


def test_python_decorated_async_function_starts_at_async_def():
    fetch = functions(PYTHON, "python")[0]
    assert _text(PYTHON, fetch.start, fetch.end).startswith("async def fetch(url")
    assert _text(PYTHON, fetch.body_start, fetch.body_end).startswith('"""Fetch a URL.')
    assert fetch.docstring == "Fetch a URL.\n\nRetries on failure."
    assert _text(PYTHON, fetch.doc_start, fetch.doc_end).endswith('failure.\n    """')


def test_python_docstrings_raw_prefix_and_non_docstrings():
    by_name = {fn.name: fn for fn in functions(PYTHON, "python")}
    assert by_name["size"].docstring == "Number of items.\\n kept raw."
    assert by_name["check"].docstring == "Check one key."
    assert by_name["put"].docstring is None
    assert by_name["not_a_docstring"].docstring is None
    assert by_name["not_a_docstring"].doc_start is None


def test_python_docstrings_match_inspect_on_the_stdlib():
    source = inspect.getsource(textwrap)
    checked = 0
    for fn in functions(source, "python"):
        if _text(source, fn.start - 1, fn.start) != "\n":
            continue  # a method: getattr below finds module-level functions only
        documented = getattr(textwrap, fn.name, None)
        if documented is None or fn.docstring is None or "\\" in (documented.__doc__ or ""):
            continue
        if inspect.isfunction(documented):
            assert fn.docstring == inspect.getdoc(documented)
            checked += 1
    assert checked >= 4


def test_first_sentence_on_stdlib_docstrings():
    by_name = {fn.name: fn for fn in functions(inspect.getsource(textwrap), "python")}
    assert first_sentence(by_name["dedent"].docstring, "python") == (
        "Remove any common leading whitespace from every line in `text`."
    )
    assert first_sentence(by_name["shorten"].docstring, "python") == (
        "Collapse and truncate the given text to fit in the given width."
    )


def test_first_sentence_rules():
    assert first_sentence("Return  the\n  sum. Then more.", "python") == "Return the sum."
    assert first_sentence("No period here\n\nSecond paragraph.", "python") == "No period here"
    assert first_sentence("Version 1.2 is parsed.", "python") == "Version 1.2 is parsed."
    assert first_sentence("", "python") == ""


def test_first_sentence_javadoc_rendering():
    javadoc = (
        "Returns the {@code List<String>} of {@link java.util.Map#keySet keys} in <b>order</b>\n"
        "via {@link #sorted(int)} and {@literal a<b}. More text.\n@param x ignored"
    )
    assert first_sentence(javadoc, "java") == (
        "Returns the List<String> of keys in order via sorted and a<b."
    )
    assert first_sentence("Summary without period\n@return the value", "java") == (
        "Summary without period"
    )
    assert first_sentence("First part<p>Second part.", "java") == "First part"
    assert first_sentence("Uses &lt;T&gt; and {@link Box}.", "java") == "Uses <T> and Box."


def test_python_extract_dedents_methods_and_parses():
    for fn in functions(PYTHON, "python"):
        code = extract(PYTHON, fn)
        assert code.startswith(("def ", "async def "))
        assert is_valid(code, "python")
    put = functions(PYTHON, "python")[2]
    assert extract(PYTHON, put).splitlines()[1] == "    # no docstring here"


def test_python_extract_tab_indented_lyra_method():
    code = "class A :\n\t def m ( self ) :\n\t \t if self :\n\t \t \t return 1\n"
    method = functions(code, "python")[0]
    assert extract(code, method) == "def m ( self ) :\n\t if self :\n\t \t return 1"


def test_without_docstring_removes_the_line_or_leaves_pass():
    by_name = {fn.name: fn for fn in functions(PYTHON, "python")}
    stripped = without_docstring(PYTHON, "python", by_name["fetch"])
    assert "Fetch a URL" not in stripped
    assert '@functools.cache\nasync def fetch(url, *, retries=3):\n    return await' in stripped
    only = without_docstring(PYTHON, "python", by_name["only_doc"])
    assert "    def only_doc(self):\n        pass\n" in only
    for name in ("fetch", "size", "check", "only_doc"):
        result = without_docstring(PYTHON, "python", by_name[name])
        assert is_valid(result, "python")
        assert functions(result, "python")[list(by_name).index(name)].docstring is None
    assert without_docstring(PYTHON, "python", by_name["put"]) == PYTHON


def test_with_name_replaces_only_the_definition_name():
    size = functions(PYTHON, "python")[1]
    renamed = with_name(PYTHON, size, "count")
    assert "def count(self):" in renamed
    assert "len(self.items)" in renamed
    assert renamed.count("count") == 1


def test_java_methods_constructors_and_anonymous_class_methods():
    found = functions(JAVA, "java")
    assert [fn.name for fn in found] == ["Box", "get", "set", "task", "run"]
    constructor, getter, setter = found[:3]
    assert _text(JAVA, getter.start, getter.end).startswith("@Override\n")
    assert _text(JAVA, getter.body_start, getter.body_end).startswith("{")
    assert _text(JAVA, getter.body_start, getter.body_end).endswith("}")
    assert _text(JAVA, setter.body_start, setter.body_end) == "{ }"
    assert constructor.docstring == (
        "Creates a box holding {@code value}.\n\n@param value the initial value"
    )
    assert first_sentence(constructor.docstring, "java") == "Creates a box holding value."
    assert first_sentence(getter.docstring, "java") == "Returns the value; see set."
    assert _text(JAVA, getter.doc_start, getter.doc_end).startswith("/** Returns")
    assert setter.docstring is None


def test_java_without_docstring_and_extract():
    getter = functions(JAVA, "java")[1]
    stripped = without_docstring(JAVA, "java", getter)
    assert "Returns the value" not in stripped
    assert "    }\n\n    @Override\n" in stripped
    assert is_valid(stripped, "java")
    assert extract(JAVA, getter).splitlines()[-1] == "}"
    assert is_valid(extract(JAVA, getter), "java")


def _csv_column(path: Path, column: str, limit: int) -> list[str]:
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in itertools.islice(csv.DictReader(handle), limit)]


def test_java_token_style_bugs2fix_methods():
    rows = _csv_column(SHARED / "datasets" / "bugs2fix" / "valid.csv", "src", 300)
    with_body = 0
    for code in rows:
        found = functions(code, "java")
        if code.rstrip().endswith("}") and is_valid(code, "java"):
            assert len(found) >= 1
            outer = found[0]
            assert outer.start == 0 and outer.end == len(code.encode("utf-8"))
            assert _text(code, outer.body_start, outer.body_end).startswith("{")
            with_body += 1
        if code.rstrip().endswith(") ;"):
            assert found == []  # a declaration without a body
    assert with_body > 250


def test_lyra_functions_found_with_tab_bodies():
    rows = _csv_column(SHARED / "datasets" / "lyra" / "train.csv", "tgt", 100)
    for code in rows:
        found = functions(code, "python")
        assert found, code
        assert _text(code, found[0].body_start - 3, found[0].body_start) == "\n\t "


@pytest.mark.skipif(not JDK_SOURCES.exists(), reason="no JDK src.zip on this machine")
def test_real_javadoc_from_the_jdk():
    with zipfile.ZipFile(JDK_SOURCES) as archive:
        source = archive.read("java.base/java/util/ArrayList.java").decode("utf-8")
    summaries = {
        fn.name: first_sentence(fn.docstring, "java")
        for fn in functions(source, "java")
        if fn.docstring
    }
    assert summaries["isEmpty"] == "Returns true if this list contains no elements."
    assert summaries["trimToSize"] == (
        "Trims the capacity of this ArrayList instance to be the list's current size."
    )
