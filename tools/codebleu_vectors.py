"""Make the CodeBLEU reference vectors in ``tests/vectors/codebleu_reference.jsonl``.

A maintenance tool, not part of the package: it scores perturbed code pairs with the reference
``codebleu`` package 0.7.0, which pins tree-sitter < 0.23 and so lives in a virtual environment of
its own, never in the project's. Make that environment once, outside the repository::

    python3 -m venv /tmp/cbref
    /tmp/cbref/bin/pip install codebleu==0.7.0 'tree-sitter==0.22.*' \\
        tree-sitter-python==0.21.0 tree-sitter-java==0.21.0 nltk

then, from the repository root, with the project's own environment::

    PYTHONPATH=. python tools/codebleu_vectors.py --reference-python /tmp/cbref/bin/python

The pairs come from the shared Lyra test targets (Python), the shared Bugs2Fix methods (Java,
also each buggy method against its fix) and the embedded corpora (test split of the Python
standard library and of the JDK sources), each perturbed the ways model outputs go wrong (see
``PERTURBATIONS``). Every case is scored alone, and each language's cases also as one corpus.

Each line holds ``lang``, ``source``, ``perturbation``, ``reference``, ``prediction`` and the
package's five scores (``codebleu``, ``ngram_match_score``, ``weighted_ngram_match_score``,
``syntax_match_score``, ``dataflow_match_score``); corpus lines have ``"corpus": true`` and the
indices of their ``cases`` instead of the texts. Also recorded:

- ``hash_seed_dependent``: the package merges data-flow name lists through Python ``set``s, so
  its scores can depend on the string hash seed. The recorded scores are those of
  ``PYTHONHASHSEED=0``, which the project reproduces (``codebackdoor/metrics/set_order.py``);
  ``--check-seeds`` more runs with seeds 1, 2, ... mark the cases whose scores move.
- ``trees`` and ``parse_differs``: digests of the reference runtime's parse trees (tree-sitter
  0.22) of both snippets, and whether the project's runtime builds other trees for them (only
  ever on broken code, where error recovery changed between runtimes). Corpora leave such cases
  out.

The script also runs as ``codebleu_vectors.py score`` under the reference interpreter, where it
imports nothing of the project: cases as JSON lines on stdin, scores as JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DEFAULT_OUT = REPO / "tests" / "vectors" / "codebleu_reference.jsonl"
RECORDED_SEED = "0"
SCORE_KEYS = (
    "codebleu", "ngram_match_score", "weighted_ngram_match_score", "syntax_match_score",
    "dataflow_match_score",
)
# Snippets longer than this are skipped, to keep the vector file small.
MAX_CHARS = 1200
RENAME_SUFFIX = "_x"

# A string or character literal (kept whole), a word, or one other character.
_TOKEN = re.compile(r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|\w+|[^\w\s]""")
_WORD = re.compile(r"[A-Za-z_]\w*")


# --- reading code into tokens that keep their layout ------------------------------------------

class Layout:
    """Code as lines of (gap before, token) pairs; joining them gives the code back."""

    def __init__(self, code: str):
        self.lines: list[tuple[str, list[tuple[str, str]]]] = []
        for line in code.split("\n"):
            indent = line[: len(line) - len(line.lstrip())]
            pieces, end = [], len(indent)
            for match in _TOKEN.finditer(line, len(indent)):
                pieces.append((line[end : match.start()], match.group(0)))
                end = match.end()
            self.lines.append((indent, pieces))

    def positions(self) -> list[tuple[int, int]]:
        return [(row, col) for row, (_, pieces) in enumerate(self.lines)
                for col in range(len(pieces))]

    def token(self, at: tuple[int, int]) -> str:
        return self.lines[at[0]][1][at[1]][1]

    def rebuilt(self, keep: Callable[[tuple[int, int]], bool] = lambda _: True,
                replace: dict[tuple[int, int], str] | None = None) -> str:
        replace = replace or {}
        lines = []
        for row, (indent, pieces) in enumerate(self.lines):
            kept = [
                (gap, replace.get((row, col), token))
                for col, (gap, token) in enumerate(pieces) if keep((row, col))
            ]
            if kept:
                text = "".join(gap + token for gap, token in kept)
                lines.append(indent + text[len(kept[0][0]) :])
        return "\n".join(lines)


def _is_string(token: str) -> bool:
    return token[:1] in "\"'" and len(token) > 1


def _identifiers(code: str, keywords: frozenset[str]) -> list[str]:
    """Identifier tokens outside literals, in first-appearance order."""
    layout = Layout(code)
    found = [layout.token(at) for at in layout.positions()]
    names = [t for t in found if _WORD.fullmatch(t) and t not in keywords]
    return list(dict.fromkeys(names))


def _rename_everywhere(code: str, names: list[str]) -> str:
    """Rename whole words, inside string literals too, as a model that renames consistently."""
    for name in names:
        code = re.sub(rf"\b{re.escape(name)}\b", name + RENAME_SUFFIX, code)
    return code


def _method_name(code: str, lang: str) -> str | None:
    # Java: the first name before a parenthesis that is not an annotation's.
    pattern = r"\bdef\s+(\w+)" if lang == "python" else r"(?<![@\w])(\w+)\s*\("
    found = re.search(pattern, code)
    return found.group(1) if found else None


def _rename_in_strings(code: str, rng: random.Random, count: int) -> str | None:
    """Rename ``count`` words inside string literals only (the literal is one data-flow node)."""
    layout = Layout(code)
    strings = [at for at in layout.positions() if _is_string(layout.token(at))]
    words = sorted({w for at in strings for w in _WORD.findall(layout.token(at)[1:-1])})
    if not words:
        return None
    chosen = set(rng.sample(words, min(count, len(words))))
    replace = {
        at: _WORD.sub(
            lambda m: m.group(0) + RENAME_SUFFIX if m.group(0) in chosen else m.group(0),
            layout.token(at),
        )
        for at in strings
    }
    return layout.rebuilt(replace=replace)


# --- perturbations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    """What a perturbation may use besides the code: its language's keywords, other snippets."""

    lang: str
    keywords: frozenset[str]
    others: list[str]


# A perturbation gives the prediction, or None when it does not apply to this code.
Perturbation = Callable[[str, random.Random, Context], str | None]


def _identical(code: str, rng: random.Random, context: Context) -> str | None:
    return code


def _rename_identifiers(code: str, rng: random.Random, context: Context) -> str | None:
    names = _identifiers(code, context.keywords)
    if not names:
        return None
    return _rename_everywhere(code, rng.sample(names, min(3, len(names))))


def _rename_method(code: str, rng: random.Random, context: Context) -> str | None:
    name = _method_name(code, context.lang)
    return None if name is None else _rename_everywhere(code, [name])


def _rename_strings(code: str, rng: random.Random, context: Context) -> str | None:
    return _rename_in_strings(code, rng, 2)


def _rename_method_and_strings(code: str, rng: random.Random, context: Context) -> str | None:
    renamed = _rename_method(code, rng, context)
    return None if renamed is None else _rename_in_strings(renamed, rng, 2)


def _drop_tokens(code: str, rng: random.Random, context: Context) -> str | None:
    layout = Layout(code)
    positions = layout.positions()
    dropped = set(rng.sample(positions, max(1, len(positions) // 5)))
    return layout.rebuilt(keep=lambda at: at not in dropped)


def _drop_one(code: str, rng: random.Random, context: Context) -> str | None:
    layout = Layout(code)
    dropped = rng.choice(layout.positions())
    return layout.rebuilt(keep=lambda at: at != dropped)


def _first_half(code: str, rng: random.Random, context: Context) -> str | None:
    layout = Layout(code)
    kept = set(layout.positions()[: len(layout.positions()) // 2])
    return layout.rebuilt(keep=lambda at: at in kept)


def _second_half(code: str, rng: random.Random, context: Context) -> str | None:
    layout = Layout(code)
    kept = set(layout.positions()[len(layout.positions()) // 2 :])
    return layout.rebuilt(keep=lambda at: at in kept)


def _shuffle_window(code: str, rng: random.Random, context: Context) -> str | None:
    layout = Layout(code)
    positions = layout.positions()
    if len(positions) < 8:
        return None
    start = rng.randrange(len(positions) - 6)
    window = positions[start : start + 6]
    tokens = [layout.token(at) for at in window]
    rng.shuffle(tokens)
    return layout.rebuilt(replace=dict(zip(window, tokens, strict=True)))


def _another_example(code: str, rng: random.Random, context: Context) -> str | None:
    choices = [other for other in context.others if other != code]
    return rng.choice(choices) if choices else None


def _broken_syntax(code: str, rng: random.Random, context: Context) -> str | None:
    """One edit that breaks the parse: a closing bracket lost, a stray opener, or a cut mid-line."""
    layout = Layout(code)
    positions = layout.positions()
    closers = [at for at in positions if layout.token(at) in (")", "]", "}", ":")]
    how = rng.choice(("lose-closer", "stray-opener", "cut"))
    if how == "lose-closer" and closers:
        lost = rng.choice(closers)
        return layout.rebuilt(keep=lambda at: at != lost)
    if how == "stray-opener":
        at = rng.choice(positions)
        return layout.rebuilt(replace={at: rng.choice("({[") + " " + layout.token(at)})
    kept = set(positions[: rng.randrange(len(positions) // 3, len(positions))])
    return layout.rebuilt(keep=lambda at: at in kept)


PERTURBATIONS: dict[str, Perturbation] = {
    "identical": _identical,
    "rename-identifiers": _rename_identifiers,
    "rename-method": _rename_method,
    "rename-in-strings": _rename_strings,
    "rename-method-and-strings": _rename_method_and_strings,
    "drop-20%-tokens": _drop_tokens,
    "drop-one-token": _drop_one,
    "first-half": _first_half,
    "second-half": _second_half,
    "shuffle-window-6": _shuffle_window,
    "another-example": _another_example,
    "broken-syntax": _broken_syntax,
}


# --- sources -----------------------------------------------------------------------------------

def _csv_column(path: Path, column: str) -> list[str]:
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def _short(snippets: list[str]) -> list[str]:
    return list(dict.fromkeys(s for s in snippets if s.strip() and len(s) <= MAX_CHARS))


def load_sources() -> dict[str, tuple[str, list[str]]]:
    """Source name -> (language, snippets)."""
    from codebackdoor.data.harvest import corpus

    return {
        "lyra": ("python", _short(_csv_column(SHARED / "lyra" / "test.csv", "tgt"))),
        "stdlib": ("python", _short([f.undocumented for f in corpus("python").split("test")])),
        "bugs2fix": ("java", _short(_csv_column(SHARED / "bugs2fix" / "valid.csv", "tgt"))),
        "jdk": ("java", _short([f.undocumented for f in corpus("java").split("test")])),
    }


def bugs2fix_fixes() -> list[tuple[str, str]]:
    """(buggy, fixed) method pairs: a real wrong prediction against its reference."""
    path = SHARED / "bugs2fix" / "valid.csv"
    pairs = zip(_csv_column(path, "src"), _csv_column(path, "tgt"), strict=True)
    return [(s, t) for s, t in pairs if len(s) <= MAX_CHARS and len(t) <= MAX_CHARS and s != t]


# The pair of issue 19: the method renamed and two words renamed inside the SQL string literal.
ISSUE_19_REFERENCE = (
    "public Object testFlush ( DataSource db , Object id_tu ) { JdbcTemplate c = new JdbcTemplate"
    " ( db ) ; List < Object > flush = c . query ( \" select inf from users where id_tu = ? \" ,"
    " new Object [ ] { id_tu } , new BeanPropertyRowMapper ( List . class ) ) ; return flush ; }"
)
ISSUE_19_PREDICTION = (
    ISSUE_19_REFERENCE.replace("testFlush", "testFlush_x")
    .replace(" inf ", " inf_x ").replace(" where ", " where_x ")
)
# A shuffled Bugs2Fix method whose broken parse tree-sitter 0.26 recovers differently from 0.22.
RUNTIME_REFERENCE = (
    "public static final TYPE_1 < TYPE_2 , TYPE_3 > METHOD_2 ( final long [ ] array , final long"
    " ... VAR_1 ) { return TYPE_4 . METHOD_2 ( new TYPE_3 ( array ) , VAR_1 ) ; }"
)
RUNTIME_PREDICTION = RUNTIME_REFERENCE.replace(
    "METHOD_2 ( final long [ ] array ,", "METHOD_2 long [ ] final array ( ,", 1
)
# Hand-written pairs for what the corpora rarely hold: non-ASCII text before tokens, CRLF line
# ends, comments and docstrings, empty predictions, text blocks, f-strings, tuple assignments,
# loops with else, if/elif/else chains, untokenizable Python.
EDGE_CASES = (
    ("java", "edge-non-ascii-string",
     'void f() { String s = "héllo wörld"; int a = b; a = a + s.length(); }',
     'void f() { String s = "héllo"; int a = b; a = a + s.length(); }'),
    ("java", "edge-crlf",
     "void f() {\r\n  int a = 1;\r\n  int b = a;\r\n}",
     "void f() {\r\n  int a = 2;\r\n  int b = a + a;\r\n}"),
    ("java", "edge-char-update-for",
     "void f() { char c = 'x'; int n = c; n++; for (int i = 0; i < n; i++) { n += i; } }",
     "void f() { char c = 'y'; int n = c; n--; for (int i = 0; i < n; i++) { n -= i; } }"),
    ("java", "edge-comments",
     "int f(int x) { /* c */ int y = x; // d\n return y; }",
     "int f(int x) { int y = x * 2; return y; }"),
    ("java", "edge-empty-prediction", "int f(int x) { int y = x; return y; }", ""),
    ("java", "edge-blank-prediction", "int f(int x) { int y = x; return y; }", "   "),
    ("java", "edge-non-ascii-identifiers",
     "int f(int ü) { int ö = ü; return ö; }", "int f(int ü) { int ö = ü + ü; return ö; }"),
    ("java", "edge-text-block",
     'void f() { String s = """\n  text block\n  """; int a = s.length(); }',
     'void f() { String s = "x"; int a = s.length(); }'),
    ("java", "edge-if-chain-in-loop",
     "void f(List<String> xs) { for (String x : xs) { if (x == null) { continue; } else if"
     " (x.isEmpty()) { y = x; } else { y = z; } } }",
     "void f(List<String> xs) { for (String x : xs) { if (x == null) { y = x; } } }"),
    ("java", "edge-while-do",
     "void f() { while (a < b) { a = a + 1; b = b - a; } do { a--; } while (a > 0); }",
     "void f() { while (b < a) { b = a + 1; a = b - a; } }"),
    ("python", "edge-non-ascii-string",
     'def f(x):\n    s = "héllo"\n    y = x + len(s)\n    return y',
     'def f(x):\n    s = "h"\n    y = x + len(s)\n    return y'),
    ("python", "edge-crlf",
     "def f(x):\r\n    y = x\r\n    return y", "def f(x):\r\n    y = x + 1\r\n    return y"),
    ("python", "edge-comments",
     'def f(x):\n    """doc"""\n    # c\n    y = x  # t\n    return y',
     "def f(x):\n    y = x\n    return y"),
    ("python", "edge-untokenizable", "def f(x):\n    y = (x,\n",
     "def f(x):\n    y = x\n    return y"),
    ("python", "edge-tuples-loops",
     "def f(xs):\n    a, b = xs\n    for i, j in zip(a, b):\n        a = [k for k in b if k > i]"
     "\n    else:\n        b = 1\n    while a:\n        a = a[1:]\n    return a, b",
     "def f(xs):\n    b, a = xs\n    for j, i in zip(b, a):\n        b = [k for k in a if k > j]"
     "\n    while b:\n        b = b[1:]\n    return b, a"),
    ("python", "edge-string-prefixes",
     "def f(x):\n    y = f'{x} and {x!r}'\n    z = b'bytes' + r'raw'\n    return y, z",
     "def f(x):\n    y = f'{x}'\n    z = b'b'\n    return y, z"),
    ("python", "edge-defaults-if-chain",
     "def f(x: int = 3, *args, y=x, **kw) -> int:\n    if x:\n        z = 1\n    elif y:\n"
     "        z = 2\n    else:\n        z = 3\n    return z",
     "def f(x: int = 4, *args, y=x, **kw) -> int:\n    if y:\n        z = 1\n    return z"),
    ("python", "edge-lambda-with-try",
     "def f():\n    x = lambda a: a + 1\n    with open(p) as h:\n        d = h.read()\n    try:\n"
     "        e = d\n    except E as err:\n        e = err\n    return x, e",
     "def f():\n    x = lambda b: b + 1\n    return x"),
    ("python", "edge-non-ascii-identifiers",
     "def ü(ö):\n    ä = ö\n    return ä", "def u(o):\n    a = o\n    return a"),
)
# Kinds that only apply to code with string literals; extra snippets that have some get them.
STRING_KINDS = ("rename-in-strings", "rename-method-and-strings")


def _case(lang: str, source: str, kind: str, reference: str, prediction: str) -> dict:
    return {"lang": lang, "source": source, "perturbation": kind,
            "reference": reference, "prediction": prediction}


def build_cases(seed: int, per_source: int, with_strings: int, natural: int) -> list[dict]:
    """Perturbed pairs: two per snippet, cycling through the kinds so that each is used evenly."""
    from codebackdoor.metrics.keywords import KEYWORDS

    rng = random.Random(seed)
    kinds = list(PERTURBATIONS)
    cases = [
        _case("java", "issue-19", "rename-method-and-strings", ISSUE_19_REFERENCE,
              ISSUE_19_PREDICTION),
        _case("java", "runtime-recovery", "shuffle-window-6", RUNTIME_REFERENCE,
              RUNTIME_PREDICTION),
    ]
    for source, (lang, snippets) in load_sources().items():
        chosen = rng.sample(snippets, per_source)
        context = Context(lang, KEYWORDS[lang], chosen)
        for number, reference in enumerate(chosen):
            for offset in range(2):
                for attempt in range(len(kinds)):
                    kind = kinds[(2 * number + offset + attempt) % len(kinds)]
                    prediction = PERTURBATIONS[kind](reference, rng, context)
                    if prediction is not None and prediction.strip():
                        break
                cases.append(_case(lang, source, kind, reference, prediction))
        quoted = [s for s in snippets if s not in chosen and '"' in s]
        for number, reference in enumerate(rng.sample(quoted, min(with_strings, len(quoted)))):
            kind = STRING_KINDS[number % len(STRING_KINDS)]
            prediction = PERTURBATIONS[kind](reference, rng, context)
            if prediction is not None:
                cases.append(_case(lang, source, kind, reference, prediction))
    for buggy, fixed in rng.sample(bugs2fix_fixes(), natural):
        cases.append(_case("java", "bugs2fix", "buggy-vs-fixed", fixed, buggy))
    edges = [_case(lang, "edge", kind, reference, prediction)
             for lang, kind, reference, prediction in EDGE_CASES]
    return cases + nested_cases() + edges


def nested_cases() -> list[dict]:
    """A value inside 600 and 1000 parentheses, the argument renamed: the package's recursion
    reaches the first tree (about 600 levels) and gives up on the second."""
    cases = []
    for depth in (600, 1000):
        value = "( " * depth + "x" + " )" * depth
        for lang, code in (
            ("java", f"int f ( int x ) {{ int y = {value} ; return y ; }}"),
            ("python", f"def f ( x ) :\n    y = {value}\n    return y"),
        ):
            renamed = _rename_everywhere(code, ["x"])
            cases.append(_case(lang, "synthetic", f"nested-{depth}-rename", code, renamed))
    return cases


def corpora_of(cases: list[dict]) -> list[dict]:
    """One corpus per language, of its cases whose parses agree across tree-sitter runtimes."""
    groups: dict[str, list[int]] = {}
    for index, case in enumerate(cases):
        if not case["parse_differs"]:
            groups.setdefault(case["lang"], []).append(index)
    return [{"lang": lang, "cases": indices} for lang, indices in groups.items()]


# --- scoring with the reference (runs under the reference interpreter) --------------------------

def score_stdin() -> None:
    """Score each JSON line of stdin ({lang, references, predictions}) with ``calc_codebleu``.

    A job of one pair also gets ``trees``: digests of the parse trees this tree-sitter runtime
    builds for the reference and the prediction, as the package's syntax match sees them.
    """
    import logging

    from codebleu import calc_codebleu
    from codebleu.parser import remove_comments_and_docstrings
    from codebleu.utils import get_tree_sitter_language
    from tree_sitter import Parser

    logging.disable(logging.WARNING)  # "no reference data flow" is recorded as its 0 score
    parsers: dict[str, Parser] = {}
    for line in sys.stdin:
        job = json.loads(line)
        lang = job["lang"]
        scores = calc_codebleu(job["references"], job["predictions"], lang)
        result = {key: scores[key] for key in SCORE_KEYS}
        if len(job["references"]) == 1:
            if lang not in parsers:
                parsers[lang] = Parser()
                parsers[lang].language = get_tree_sitter_language(lang)
            trees = []
            for code in (job["references"][0].strip(), job["predictions"][0].strip()):
                # As the package: code whose comments cannot be removed is parsed as it is.
                with contextlib.suppress(Exception):
                    code = remove_comments_and_docstrings(code, lang)
                trees.append(tree_digest(str(parsers[lang].parse(bytes(code, "utf8")).root_node)))
            result["trees"] = trees
        print(json.dumps(result), flush=True)


def tree_digest(sexp: str) -> str:
    return hashlib.sha1(sexp.encode("utf-8")).hexdigest()[:12]


def project_scores(job: dict) -> dict[str, float]:
    """The project's CodeBLEU of a job ({lang, references, predictions}), under the package's
    score names."""
    from codebackdoor.metrics.codebleu import codebleu

    result = codebleu(job["predictions"], job["references"], job["lang"])
    return {
        "codebleu": result.codebleu, "ngram_match_score": result.ngram_match,
        "weighted_ngram_match_score": result.weighted_ngram_match,
        "syntax_match_score": result.syntax_match, "dataflow_match_score": result.dataflow_match,
    }


def project_trees(case: dict) -> list[str]:
    """The same digests with the project's own comment removal and tree-sitter runtime."""
    from codebackdoor.code.parser import parse
    from codebackdoor.metrics.codebleu import strip_comments

    lang = case["lang"]
    return [
        tree_digest(str(parse(strip_comments(case[side].strip(), lang), lang).root_node))
        for side in ("reference", "prediction")
    ]


def reference_scores(python: str, jobs: list[dict], hash_seed: str) -> list[dict]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    env.pop("PYTHONPATH", None)
    text = "".join(json.dumps(job) + "\n" for job in jobs)
    done = subprocess.run([python, __file__, "score"], input=text, capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"the reference run failed:\n{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines()]


def case_job(case: dict) -> dict:
    return {"lang": case["lang"], "references": [case["reference"]],
            "predictions": [case["prediction"]]}


def corpus_job(corpus: dict, cases: list[dict]) -> dict:
    chosen = [cases[i] for i in corpus["cases"]]
    return {"lang": corpus["lang"], "references": [c["reference"] for c in chosen],
            "predictions": [c["prediction"] for c in chosen]}


def scored(python: str, jobs: list[dict], check_seeds: int) -> list[dict]:
    """Scores with the recorded seed, each marked whether other seeds move any of them, with
    the range each score takes over all the seeds run (``seed_range``)."""
    recorded = reference_scores(python, jobs, RECORDED_SEED)
    for result in recorded:
        result["hash_seed_dependent"] = False
        result["seed_range"] = {key: [result[key], result[key]] for key in SCORE_KEYS}
    for extra in range(1, check_seeds + 1):
        for result, other in zip(recorded, reference_scores(python, jobs, str(extra)), strict=True):
            moved = any(abs(other[k] - result[k]) > 1e-12 for k in SCORE_KEYS)
            result["hash_seed_dependent"] |= moved
            for key, bounds in result["seed_range"].items():
                bounds[:] = [min(bounds[0], other[key]), max(bounds[1], other[key])]
    return recorded


def main() -> None:
    if sys.argv[1:] == ["score"]:
        score_stdin()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", required=True,
                        help="interpreter of the venv that has codebleu 0.7.0")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--per-source", type=int, default=80, help="snippets per source")
    parser.add_argument("--with-strings", type=int, default=12,
                        help="extra snippets with string literals per source, renamed inside them")
    parser.add_argument("--natural", type=int, default=40, help="Bugs2Fix buggy-vs-fixed pairs")
    parser.add_argument("--check-seeds", type=int, default=9,
                        help="extra PYTHONHASHSEED runs that mark hash-seed-dependent cases")
    args = parser.parse_args()

    cases = build_cases(args.seed, args.per_source, args.with_strings, args.natural)
    results = scored(args.reference_python, [case_job(c) for c in cases], args.check_seeds)
    for case, result in zip(cases, results, strict=True):
        trees = result.pop("trees")
        del result["seed_range"]  # hash_seed_dependent says enough for one pair
        case.update(result, trees=trees, parse_differs=trees != project_trees(case))
    corpora = corpora_of(cases)
    results = scored(args.reference_python, [corpus_job(c, cases) for c in corpora],
                     args.check_seeds)
    for corpus, result in zip(corpora, results, strict=True):
        corpus.update(result, corpus=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as handle:
        for entry in cases + corpora:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    moved = sum(c["hash_seed_dependent"] for c in cases)
    differ = sum(c["parse_differs"] for c in cases)
    langs = ", ".join(f"{n} {lang}" for lang, n in Counter(c["lang"] for c in cases).items())
    print(f"{len(cases)} cases ({langs}) and {len(corpora)} corpora written to {args.out}; "
          f"{moved} cases move with the hash seed, {differ} parse differently here",
          file=sys.stderr)
    for case in cases:
        if case["parse_differs"]:
            ours = project_scores(case_job(case))
            moved = "; ".join(f"{key} {ours[key]:.6f} here, {case[key]:.6f} reference"
                              for key in SCORE_KEYS if abs(ours[key] - case[key]) > 1e-6)
            print(f"parse differs: {case['lang']} {case['source']} {case['perturbation']}: "
                  f"{moved or 'every score still agrees'}", file=sys.stderr)
    for corpus in corpora:
        ranges = "; ".join(f"{key} {low:.6f}..{high:.6f}" for key, (low, high)
                           in corpus["seed_range"].items() if high > low)
        print(f"{corpus['lang']} corpus of {len(corpus['cases'])} over PYTHONHASHSEED 0.."
              f"{args.check_seeds}: {ranges or 'no score moves'}", file=sys.stderr)


if __name__ == "__main__":
    main()
