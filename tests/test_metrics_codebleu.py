from __future__ import annotations

import json
import math

import pytest
from conftest import VECTORS

from codebackdoor.errors import UserError
from codebackdoor.metrics.codebleu import codebleu, strip_comments, weighted_ngram_match
from codebackdoor.metrics.keywords import PYTHON_KEYWORDS

COMPONENTS = {
    "codebleu": "codebleu",
    "ngram_match": "ngram_match_score",
    "weighted_ngram_match": "weighted_ngram_match_score",
    "syntax_match": "syntax_match_score",
    "dataflow_match": "dataflow_match_score",
}


def load_vectors() -> list[dict]:
    path = VECTORS / "codebleu.jsonl"
    if not path.is_file():
        pytest.skip("../shared/vectors/codebleu.jsonl is not present")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def score_vector(case: dict):
    if case.get("corpus"):
        return codebleu(case["predictions"], case["references"], case["lang"])
    return codebleu([case["prediction"]], [case["reference"]], case["lang"])


@pytest.fixture(scope="module")
def scored() -> list[tuple[dict, object]]:
    return [(case, score_vector(case)) for case in load_vectors()]


def deviations(case: dict, result) -> dict[str, float]:
    return {name: abs(getattr(result, name) - case[key]) for name, key in COMPONENTS.items()}


def test_token_components_match_every_vector(scored):
    assert len(scored) == 74
    for case, result in scored:
        off = deviations(case, result)
        assert off["ngram_match"] <= 1e-6, case.get("perturbation", "corpus")
        assert off["weighted_ngram_match"] <= 1e-6, case.get("perturbation", "corpus")


def test_every_component_matches_every_vector(scored):
    # The grammar pins (0.21.0, as the vectors were made) matter here: tree-sitter's recovery
    # from syntax errors changed in later grammars and moves syntax and data-flow match.
    for case, result in scored:
        off = deviations(case, result)
        if case.get("corpus"):
            # These two lines were scored under an unrecorded PYTHONHASHSEED, on which the
            # package's data flow over them depends; tests/vectors/codebleu_reference.jsonl
            # pins seed 0 and checks data flow exactly (docs/codebleu.md).
            del off["dataflow_match"], off["codebleu"]
        assert max(off.values()) <= 1e-6, (case["lang"], case.get("perturbation"), off)


def test_identical_code_scores_one_and_comments_do_not_count():
    reference = "def f(a, b):\n    c = a + b\n    return c\n"
    commented = (
        'def f(a, b):\n    """Add."""\n    # sum them\n    c = a + b  # here\n    return c\n'
    )
    same = codebleu([reference], [reference], "python")
    assert same.codebleu == pytest.approx(1.0)
    with_comments = codebleu([commented], [reference], "python")
    assert with_comments.syntax_match == pytest.approx(1.0)
    assert with_comments.dataflow_match == pytest.approx(1.0)
    assert with_comments.ngram_match < 1.0


def test_missing_reference_data_flow_degenerates_to_zero_and_counts_as_one():
    result = codebleu(["return;"], ["return;"], "java")
    assert result.dataflow_match == 0.0
    expected = 0.25 * (result.ngram_match + result.weighted_ngram_match + result.syntax_match + 1)
    assert result.codebleu == pytest.approx(expected)


def test_weighted_match_is_keyword_weighted_recall_without_length_penalty():
    # unigrams: reference weights if=1, a=b=c=0.2 -> 1.2 of 1.6 found; bigrams 1 of 3;
    # trigrams 0 of 2 and 4-grams 0 of 1 -> epsilon 0.1; no brevity penalty (package quirk).
    score = weighted_ngram_match([(["if", "a"], ["if", "a", "b", "c"])], PYTHON_KEYWORDS)
    logs = [math.log(1.2 / 1.6), math.log(1 / 3), math.log(0.1 / 2), math.log(0.1 / 1)]
    assert score == pytest.approx(math.exp(sum(logs) / 4), abs=1e-15)


def test_strip_comments_python_keeps_strings_inside_expressions():
    code = 'def f():\n    """Doc."""\n    # note\n    x = "kept"  # gone\n    return x\n'
    stripped = strip_comments(code, "python")
    assert "Doc" not in stripped and "note" not in stripped and "gone" not in stripped
    assert '"kept"' in stripped
    assert all(line.strip() for line in stripped.split("\n"))


def test_strip_comments_python_leaves_untokenizable_code_alone():
    broken = "def f(:\n    x = (1,\n"
    assert strip_comments(broken, "python") == broken


def test_strip_comments_java_keeps_comment_markers_inside_literals():
    code = 'int f() {\n  // line\n  /* block\n  */ String s = "// not a comment";\n  return 1;\n}'
    stripped = strip_comments(code, "java")
    assert "line" not in stripped and "block" not in stripped
    assert '"// not a comment"' in stripped


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="empty"):
        codebleu([], [], "python")
    with pytest.raises(UserError, match="1 predictions against 2 references"):
        codebleu(["x"], ["x", "y"], "python")
    with pytest.raises(UserError, match="not 'go'"):
        codebleu(["x"], ["x"], "go")
    with pytest.raises(UserError, match="4 weights"):
        codebleu(["x"], ["x"], "java", weights=(0.5, 0.5))
