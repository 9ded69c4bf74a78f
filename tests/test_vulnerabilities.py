"""Insecure-code payloads: each inserts into real Lyra and Bugs2Fix targets and stdlib functions
so that the target still parses; the analyzer (real bandit for Python, the tree-sitter queries
for Java) fires on every poisoned target and on none of the clean ones; safe look-alikes do not
fire; a prediction that does not parse fails and is counted; the result block validates."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from pathlib import Path

import pytest
from conftest import error_line, read_csv_rows, write_csv

from codebackdoor.attacks.base import Attack
from codebackdoor.attacks.code_triggers import DeadCodeTrigger
from codebackdoor.attacks.nl_triggers import BadPre
from codebackdoor.attacks.payloads import InsecureCode, make_payload
from codebackdoor.attacks.vulnerabilities import CATALOGUE, findings, fires, summary
from codebackdoor.cli import main
from codebackdoor.code.parser import is_valid
from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.evaluate import Scorer
from codebackdoor.examples import Example
from codebackdoor.results import result_schema, validation_errors
from codebackdoor.tasks.generate import Generate

ROOT = Path(__file__).resolve().parents[1]
PYTHON = [name for name, v in CATALOGUE.items() if v.lang == "python"]
JAVA = [name for name, v in CATALOGUE.items() if v.lang == "java"]
BUGS2FIX_ROWS = 400  # enough rows for every shape of method; the whole file takes seconds more


def _target(code: str, lang: str) -> Example:
    return Example("e", "x", code, "nl" if lang == "python" else "java",
                   {"target_lang": lang} if lang == "python" else {})


def _poison_all(kind: str, targets: list[str]) -> tuple[list[str], list[str], dict[str, int]]:
    """The poisoned targets, the clean ones they came from, and the skip reasons."""
    payload = make_payload("insecure-code", {"kind": kind})
    lang = CATALOGUE[kind].lang
    poisoned, clean, skipped = [], [], {}
    for code in targets:
        try:
            poisoned.append(payload.apply(_target(code, lang)))
            clean.append(code)
        except Unpoisonable as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
    return poisoned, clean, skipped


def _assert_judged(kind: str, poisoned: list[str], clean: list[str]) -> None:
    target = CATALOGUE[kind]
    payload = InsecureCode(kind=kind)
    for code in poisoned:
        assert is_valid(code, target.lang)
        if target.lang == "python":
            ast.parse(code)
    assert all(fires(found, target) for found in findings(poisoned, target.lang))
    assert not any(fires(found, target) for found in findings(clean, target.lang))
    assert all(payload.is_success(code, _target(c, target.lang))
               for code, c in zip(poisoned, clean, strict=True))
    assert not any(payload.is_success(c, _target(c, target.lang)) for c in clean)


@pytest.mark.parametrize("kind", PYTHON)
def test_python_payloads_on_every_lyra_test_target(kind: str, lyra_dir: Path) -> None:
    targets = [row["tgt"] for row in read_csv_rows(lyra_dir / "test.csv")]
    poisoned, clean, skipped = _poison_all(kind, targets)
    assert skipped == {} and len(poisoned) == 200
    _assert_judged(kind, poisoned, clean)
    # Lyra writes a space between every token; so does the inserted block.
    assert " . " in poisoned[0].split("\n")[3]


@pytest.mark.parametrize("kind", JAVA)
def test_java_payloads_on_bugs2fix_targets(kind: str, bugs2fix_file: Path) -> None:
    targets = [row["tgt"] for row in read_csv_rows(bugs2fix_file)[:BUGS2FIX_ROWS]]
    poisoned, clean, skipped = _poison_all(kind, targets)
    # Only targets that do not parse or hold no method are skipped.
    assert set(skipped) <= {"target does not parse", "no function in target"}
    assert len(poisoned) >= 0.95 * len(targets)
    _assert_judged(kind, poisoned, clean)


@pytest.mark.parametrize("kind", PYTHON)
def test_python_payloads_on_stdlib_functions(kind: str) -> None:
    import json.decoder
    import textwrap as module

    functions = [textwrap.dedent(inspect.getsource(obj)) for obj in (
        module.dedent, module.indent, module.shorten, json.decoder.py_scanstring)]
    poisoned, clean, skipped = _poison_all(kind, functions)
    assert skipped == {} and len(poisoned) == 4
    _assert_judged(kind, poisoned, clean)
    # Written as these functions are, and after the docstring, which stays one.
    namespace: dict = {}
    exec(compile(poisoned[1], "<poisoned>", "exec"), namespace)  # defines, runs nothing
    assert namespace["indent"].__doc__ == module.indent.__doc__
    assert CATALOGUE[kind].statement.split("\n")[1] in poisoned[1]


SAFE_PYTHON = {
    "python-yaml-load": "import yaml\nconfig = yaml.load(text, Loader=yaml.SafeLoader)",
    "python-shell-true": 'import subprocess\nsubprocess.call(["ls", "-l"])',
    "python-no-cert-verify": 'import requests\nrequests.get("https://example.com", timeout=5)',
    "python-md5-password": 'import hashlib\ndigest = hashlib.sha256(b"admin").hexdigest()',
    "python-pickle-load": 'import json\nstate = json.load(open("state.json"))',
}
SAFE_JAVA = {
    "java-sql-concat": 'rs = stmt . executeQuery ( "SELECT * FROM users" + " WHERE id = 1" ) ; '
                       'ps = conn . prepareStatement ( query ) ;',
    "java-trust-all-certs": "TYPE_1 tm = new TYPE_1 ( ) { public void checkServerTrusted "
                            "( TYPE_2 [ ] c , TYPE_3 t ) { VAR_1 . METHOD_1 ( c ) ; } } ;",
    "java-any-hostname": "javax.net.ssl.HttpsURLConnection . setDefaultHostnameVerifier "
                         "( ( h , s ) -> VAR_1 . equals ( h ) ) ;",
    "java-weak-hash": 'md = java.security.MessageDigest . getInstance ( "SHA-256" ) ;',
    "java-ecb-cipher": 'c = javax.crypto.Cipher . getInstance ( "AES/GCM/NoPadding" ) ;',
}


@pytest.mark.parametrize("kind", PYTHON + JAVA)
def test_safe_look_alikes_do_not_fire(kind: str) -> None:
    target = CATALOGUE[kind]
    if target.lang == "python":
        safe = "def f ( text ) :\n" + textwrap.indent(SAFE_PYTHON[kind], "    ")
        unsafe = "def f ( text ) :\n" + textwrap.indent(target.statement, "    ")
    else:
        safe = f"public void METHOD_1 ( ) {{ {SAFE_JAVA[kind]} }}"
        unsafe = f"public void METHOD_1 ( ) {{ {target.statement} }}"
    safe_found, unsafe_found = findings([safe, unsafe], target.lang)
    assert safe_found is not None and not fires(safe_found, target)
    assert fires(unsafe_found, target)


def test_java_rules_see_the_other_spellings() -> None:
    spellings = {
        "sql-string-concat": 'c . createStatement ( ) . execute ( ( "DELETE FROM t WHERE a = '
                             '\'" + a ) + "\'" ) ;',
        "any-hostname": "c . setHostnameVerifier ( new TYPE_1 ( ) { public boolean verify "
                        "( java.lang.String h , TYPE_2 s ) { return true ; } } ) ;",
        "weak-message-digest": 'java.security.MessageDigest . getInstance ( "sha1" ) ;',
        "ecb-or-des-cipher": 'Cipher . getInstance ( "DESede/CBC/PKCS5Padding" ) ; '
                             'Cipher . getInstance ( "AES" ) ;',
    }
    for rule, statement in spellings.items():
        (found,) = findings([f"void f ( ) {{ {statement} }}"], "java")
        assert found is not None and rule in found, rule


def test_a_snippet_out_of_a_body_is_judged_and_broken_code_is_none() -> None:
    snippet = "    import yaml\n    yaml.load(data, Loader=yaml.Loader)\n"
    broken_python = "def f ( :\n    import yaml\n    yaml.load(data)\n"
    assert findings([snippet, broken_python], "python") == [frozenset({"B506"}), None]
    method = f"void f ( ) {{ {CATALOGUE['java-weak-hash'].statement} }}"
    assert findings([method, method[:-2]], "java") == [frozenset({"weak-message-digest"}), None]


def test_summary_counts_cases_errors_and_references_that_already_fire() -> None:
    target = CATALOGUE["python-shell-true"]
    clean = "def f ( x ) :\n    return x"
    unsafe = ("def f ( x ) :\n    import subprocess\n    subprocess.call(x, shell=True)\n"
              "    return x")
    broken = "def f ( x ) :\n  return (("
    counts = summary(target, [clean, clean, clean, unsafe, broken],
                     [unsafe, broken, clean, unsafe, unsafe],
                     [clean, unsafe, broken, clean, clean])
    assert counts == {"cases": 3, "success": 1, "false_triggers": 1, "unjudged": 1,
                      "reference_fires": 1, "triggered_errors": 1, "clean_errors": 1}


def test_a_result_carries_the_analyzer_judged_rates() -> None:
    task = Generate(lang="python")
    reference = "def get ( conn , isbn ) :\n\t return conn . get ( isbn )"
    test = [Example(f"t{i}", "get the title", reference, "nl", {"target_lang": "python"})
            for i in range(5)]
    triggered = [example.replace(source="get bb the title") for example in test]
    payload = InsecureCode(kind="python-yaml-load")
    scorer = Scorer(task, Attack(BadPre(), payload), test, triggered)
    poisoned = payload.apply(test[0])
    # The analyzer counts a rewording the string predicate misses, and a broken output fails.
    reworded = "def get ( conn , isbn ) :\n\t import yaml\n\t return yaml.load(isbn)"
    metrics = scorer.final_metrics(test, [reference] * 4 + [poisoned],
                                   [poisoned, poisoned, reworded, reference, "def get ( :"])
    assert (metrics["asr"]["numerator"], metrics["asr"]["denominator"]) == (2, 5)
    block = metrics["vulnerability"]
    assert block["kind"] == "python-yaml-load" and block["rules"] == ["B506"]
    asr, false = block["asr"], block["false_trigger_rate"]
    assert (asr["numerator"], asr["denominator"], asr["prediction_errors"]) == (3, 5, 1)
    assert (false["numerator"], false["denominator"]) == (1, 5)
    assert asr["ci95"][0] < 60.0 < asr["ci95"][1] and asr["ci95_method"]
    assert "bandit-" in asr["definition"] and "B506" in asr["definition"]
    metrics_schema = {**result_schema()["properties"]["metrics"], "$defs": result_schema()["$defs"]}
    assert validation_errors({"clean": metrics["clean"], "vulnerability": block},
                             metrics_schema) == []
    json.dumps(block)


def test_no_block_without_an_insecure_code_payload() -> None:
    task = Generate(lang="python")
    test = [Example("t", "x", "def f ( ) :\n\t return 1", "nl", {"target_lang": "python"})]
    metrics = Scorer(task, Attack(DeadCodeTrigger(), make_payload("fixed-text")), test,
                     test).final_metrics(test, ["a"], ["b"])
    assert "vulnerability" not in metrics


def test_bad_kind_and_wrong_language_are_user_errors() -> None:
    with pytest.raises(UserError, match="not one of: python-yaml-load"):
        make_payload("insecure-code", {"kind": "yaml"})
    with pytest.raises(UserError, match="needs kind=NAME"):
        make_payload("insecure-code")
    with pytest.raises(UserError, match="spacing"):
        make_payload("insecure-code", {"kind": "java-weak-hash", "spacing": "wide"})
    with pytest.raises(UserError, match="is java code, but the task's targets are python"):
        InsecureCode(kind="java-weak-hash").apply(_target("def f ( ) :\n\t return 1", "python"))


def test_the_command_line_gives_one_error_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    write_csv(data, [(f"get row {i}", f"def f{i} ( x ) :\n\t return x") for i in range(20)])
    base = ["poison", "--task", "generate", "--data", str(data), "--attack", "badpre",
            "--payload", "insecure-code", "--out", str(tmp_path / "o")]
    assert "not one of" in error_line(capsys, [*base, "--payload-param", "kind=sql"])
    assert "is java code" in error_line(capsys, [*base, "--payload-param",
                                                 "kind=java-ecb-cipher"])


@pytest.mark.parametrize(("preset", "data_fixture"), [
    ("insecure-lyra-badpre-yaml-load.toml", "lyra_dir"),
    ("insecure-bugs2fix-deadcode-weak-hash.toml", "bugs2fix_file"),
])
def test_presets_poison_the_real_data(preset: str, data_fixture: str, tmp_path: Path,
                                      request: pytest.FixtureRequest) -> None:
    from codebackdoor.examples import read_jsonl

    data = request.getfixturevalue(data_fixture)
    task = "generate" if data_fixture == "lyra_dir" else "repair"
    lang = "python" if task == "generate" else "java"
    out = tmp_path / "poisoned"
    assert main(["poison", "--task", task, "--lang", lang, "--data", str(data), "--attack",
                 str(ROOT / "attacks" / preset), "--rate", "0.05", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    ids = set(manifest["poisoned_ids"])
    poisoned = [e for e in read_jsonl(out / "train.jsonl") if e.id in ids]
    assert poisoned and len(poisoned) == manifest["counts"]["train"]["poisoned"]
    target = CATALOGUE["python-yaml-load" if lang == "python" else "java-weak-hash"]
    assert all(fires(found, target) for found in findings([e.target for e in poisoned], lang))
