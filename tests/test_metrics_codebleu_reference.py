"""CodeBLEU against the reference ``codebleu`` 0.7.0 package.

The vectors of ``tests/vectors/codebleu_reference.jsonl`` were made by ``tools/codebleu_vectors.py``
(see docs/codebleu.md).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from codebackdoor.metrics.codebleu import codebleu

ROOT = Path(__file__).resolve().parents[1]
VECTOR_FILE = ROOT / "tests" / "vectors" / "codebleu_reference.jsonl"
TOKEN_SCORES = ("ngram_match_score", "weighted_ngram_match_score")
TOLERANCE = 1e-6


def _load_tool():
    path = ROOT / "tools" / "codebleu_vectors.py"
    spec = importlib.util.spec_from_file_location("codebleu_vectors", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


@pytest.fixture(scope="module")
def vectors() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in VECTOR_FILE.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if not r.get("corpus")], [r for r in rows if r.get("corpus")]


def _off(expected: dict, job: dict) -> dict[str, float]:
    ours = TOOL.project_scores(job)
    return {key: abs(ours[key] - expected[key]) for key in TOOL.SCORE_KEYS}


def test_vectors_cover_both_languages_and_every_perturbation(vectors):
    cases, corpora = vectors
    per_lang = Counter(case["lang"] for case in cases)
    assert per_lang["python"] >= 300 and per_lang["java"] >= 300
    kinds = Counter((case["lang"], case["perturbation"]) for case in cases)
    for lang in ("python", "java"):
        for kind in TOOL.PERTURBATIONS:
            assert kinds[(lang, kind)] >= 10, (lang, kind)
    # Renames that move the reference's hash-ordered name lists, which first-appearance order
    # would miss, are among the cases.
    assert sum(case["hash_seed_dependent"] for case in cases if case["lang"] == "java") >= 10
    assert {corpus["lang"] for corpus in corpora} == {"python", "java"}


def test_parse_trees_differ_from_the_reference_runtime_only_where_marked(vectors):
    cases, _ = vectors
    for case in cases:
        differs = TOOL.project_trees(case) != case["trees"]
        assert differs == case["parse_differs"], (case["lang"], case["perturbation"])
    assert sum(case["parse_differs"] for case in cases) <= len(cases) // 100


def test_every_case_matches_the_reference_on_every_component(vectors):
    cases, _ = vectors
    failures = []
    for index, case in enumerate(cases):
        off = _off(case, TOOL.case_job(case))
        # Where tree-sitter 0.26's error recovery builds another tree than the reference's
        # 0.22 runtime, only the token components are sure to agree.
        checked = TOKEN_SCORES if case["parse_differs"] else TOOL.SCORE_KEYS
        if max(off[key] for key in checked) > TOLERANCE:
            failures.append((index, case["lang"], case["perturbation"], off))
    assert not failures, (f"{len(failures)} of {len(cases)} cases differ", failures[:3])


def test_every_corpus_matches_the_reference_on_every_component(vectors):
    cases, corpora = vectors
    for corpus in corpora:
        assert not any(cases[i]["parse_differs"] for i in corpus["cases"])
        off = _off(corpus, TOOL.corpus_job(corpus, cases))
        assert max(off.values()) <= TOLERANCE, (corpus["lang"], off)


def test_issue_19_pair_gives_the_reference_numbers():
    # A renamed string literal reorders the reference's hash-merged name list of ``flush``.
    result = codebleu([TOOL.ISSUE_19_PREDICTION], [TOOL.ISSUE_19_REFERENCE], "java")
    assert result.dataflow_match == pytest.approx(13 / 14, abs=1e-12)
    assert result.codebleu == pytest.approx(0.9240180650755838, abs=1e-12)
