"""The five built-in tasks: their declarations, data sources and example conventions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from codebackdoor.code.functions import functions
from codebackdoor.code.parser import is_valid
from codebackdoor.data.harvest import find_jdk_sources, python_corpus
from codebackdoor.errors import UserError
from codebackdoor.registry import registry
from codebackdoor.tasks.base import Splits, Task
from codebackdoor.tasks.defect import Defect
from codebackdoor.tasks.generate import Generate
from codebackdoor.tasks.method_name import MethodName, subtokens
from codebackdoor.tasks.repair import Repair
from codebackdoor.tasks.summarize import Summarize

SHA = "0123456789abcdef0123456789abcdef01234567"
TASK_NAMES = ("summarize", "generate", "repair", "defect", "method-name")


def all_examples(splits: Splits) -> list:
    return splits.train + splits.valid + splits.test


@pytest.mark.parametrize("name", TASK_NAMES)
def test_declarations(name: str) -> None:
    cls = registry("tasks").get(name)
    assert issubclass(cls, Task) and cls.name == name
    assert cls.description and "\n" not in cls.description
    assert cls.citation
    assert cls.input_kind in ("code", "nl")
    assert cls.output_kind in ("text", "code", "label")
    assert cls.metrics and cls.default_payload
    task = cls(lang=cls.langs[0])
    assert task.output_lang in ("nl", "python", "java", "label")


def test_output_languages() -> None:
    assert Summarize().output_lang == "nl"
    assert Generate(lang="java").output_lang == "java"
    assert Repair().output_lang == "java"
    assert Defect().output_lang == "label"
    assert MethodName().output_lang == "nl"


@pytest.mark.parametrize(
    ("cls", "lang", "valid"),
    [(Repair, "python", "java"), (Summarize, "c", "python, java"),
     (Defect, "go", "python, java, c"), (Generate, "nl", "python, java")],
)
def test_wrong_language_names_the_valid_ones(cls, lang: str, valid: str) -> None:
    with pytest.raises(UserError, match=f"language '{lang}'; valid languages: {valid}$"):
        cls(lang=lang)


def test_generate_on_lyra(lyra_dir: Path) -> None:
    splits = Generate(data=str(lyra_dir)).load()
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (1600, 200, 200)
    first = splits.train[0]
    assert first.lang == "nl" and first.meta == {"target_lang": "python"}
    assert first.id == "train-0" and first.target.startswith("def main ( conn")
    prints = splits.fingerprints()
    assert set(prints) == {"train", "valid", "test"}
    assert prints == Generate(data=str(lyra_dir)).load().fingerprints()
    assert splits.source["kind"] == "local" and splits.source["path"] == str(lyra_dir.resolve())


def test_repair_on_the_single_bugs2fix_file(bugs2fix_file: Path) -> None:
    splits = Repair(data=str(bugs2fix_file)).load()
    assert len(splits.train) + len(splits.valid) + len(splits.test) == 5835
    assert all(example.lang == "java" for example in all_examples(splits))
    assert splits.fingerprints() == Repair(data=str(bugs2fix_file)).load().fingerprints()


def test_defaults_that_need_a_user_choice() -> None:
    with pytest.raises(UserError, match="no default data for python: pass --data"):
        Generate().load()
    # Hub defaults exist but have no verified commit: the user must pin one (checked offline,
    # before any download).
    for task in (Repair(), Generate(lang="java"), Defect(lang="c")):
        with pytest.raises(UserError, match="needs a pinned revision: pass --revision"):
            task.load()
    with pytest.raises(UserError, match="holds C functions: use language c"):
        Defect(data="hf:google/code_x_glue_cc_defect_detection", revision=SHA).load()
    with pytest.raises(UserError, match="needs a dataset id"):
        Repair(data="hf:", revision=SHA).load()


def test_defect_labels_from_a_hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    (tmp_path / "devign").mkdir()
    for split in ("train", "validation", "test"):
        rows = [{"func": f"int f{i}() {{ return {i}; }}", "target": i % 3 == 0} for i in range(6)]
        (tmp_path / "devign" / f"{split}.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    task = Defect(lang="c", data=f"hf:{tmp_path / 'devign'}", revision=SHA,
                  columns={"source": "func", "target": "target"})
    splits = task.load()
    assert [example.target for example in splits.test] == ["1", "0", "0", "1", "0", "0"]
    assert {example.lang for example in splits.train} == {"c"}


def test_defect_rejects_labels_other_than_0_and_1(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"src": "x", "tgt": "maybe"}) + "\n" for _ in range(40)),
                    encoding="utf-8")
    with pytest.raises(UserError, match="defect labels are 0 or 1, got 'maybe'"):
        Defect(data=str(path)).load()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("createEntry", "create entry"), ("__init__", "init"), ("get_value", "get value"),
     ("parseHTTPResponse", "parse http response"), ("XMLParser", "xml parser"),
     ("_private_helper2", "private helper2"), ("toString", "to string"), ("md5sum", "md5 sum"),
     ("ALL_CAPS", "all caps")],
)
def test_method_name_subtokens(name: str, expected: str) -> None:
    assert " ".join(subtokens(name)) == expected


@pytest.fixture(scope="module")
def stdlib_tasks():
    """The three embedded tasks on the standard-library corpus (cached for the session)."""
    return {cls: cls().load() for cls in (Summarize, MethodName, Defect)}


def test_embedded_summarize(stdlib_tasks) -> None:
    splits = stdlib_tasks[Summarize]
    harvested = {fn.id: fn for fn in python_corpus().functions}
    assert len(all_examples(splits)) == len(harvested)
    for example in all_examples(splits):
        fn = harvested[example.id]
        assert example.id.startswith("python:") and example.lang == "python"
        assert example.source == fn.undocumented and example.target == fn.summary
        assert example.meta == {"file": fn.file, "function": fn.name}
    assert min(len(splits.train), len(splits.valid), len(splits.test)) > 150
    assert splits.source["kind"] == "embedded"
    assert splits.source["path"] == "codebackdoor/data/corpora/python-stdlib-3.11.jsonl.gz"


def test_embedded_method_name(stdlib_tasks) -> None:
    splits = stdlib_tasks[MethodName]
    harvested = {fn.id: fn for fn in python_corpus().functions}
    for example in all_examples(splits):
        fn = harvested[example.id]
        definition = functions(example.source, "python")[0]
        assert definition.name == "METHOD_NAME" and definition.docstring is None
        assert example.target == " ".join(subtokens(fn.name.rsplit(".", 1)[-1]))
        assert example.target == example.target.lower() and "_" not in example.target
    assert any(example.target == "decode" for example in splits.train + splits.test)


def test_embedded_defect(stdlib_tasks) -> None:
    splits = stdlib_tasks[Defect]
    harvested = {fn.id: fn for fn in python_corpus().functions}
    examples = all_examples(splits)
    labels = Counter(example.target for example in examples)
    assert set(labels) == {"0", "1"}
    assert 0.45 < labels["1"] / len(examples) < 0.55
    assert splits.source["dropped"] == len(harvested) - len(examples) > 0
    for example in examples:
        original = harvested[example.id].undocumented
        assert (example.source != original) == (example.target == "1"), example.id
        assert ("mutation" in example.meta) == (example.target == "1")
    assert {example.meta.get("mutation") for example in examples} == {
        None, "swap-operator", "swap-arguments", "change-comparison",
    }
    other_seed = Defect(seed=1).load()
    assert other_seed.fingerprints() != splits.fingerprints()
    assert Defect().load().fingerprints() == splits.fingerprints()


def test_every_embedded_python_source_parses(stdlib_tasks) -> None:
    for splits in stdlib_tasks.values():
        for example in all_examples(splits):
            assert is_valid(example.source, "python"), example.id


JAVA_SOURCE = """package demo;

public class Counter {
    /** Adds the given amount to the running total of this counter. */
    public int addAll(int[] amounts, int limit) {
        int total = 0;
        for (int amount : amounts) {
            total = Math.min(total + amount, limit);
        }
        return total;
    }
}
"""


def test_java_tasks_on_a_small_jdk_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    monkeypatch.setenv("CODEBACKDOOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODEBACKDOOR_JDK_SRC", str(tmp_path / "src.zip"))
    with zipfile.ZipFile(tmp_path / "src.zip", "w") as archive:
        archive.writestr("java.base/demo/Counter.java", JAVA_SOURCE)
    example_id = "java:java.base/demo/Counter.java:Counter.addAll:5"
    summary = Summarize(lang="java").load()
    (only,) = all_examples(summary)
    assert only.id == example_id and only.lang == "java"
    assert only.target == "Adds the given amount to the running total of this counter."
    assert only.source.startswith("public int addAll(int[] amounts, int limit) {")
    (masked,) = all_examples(MethodName(lang="java").load())
    assert masked.source.startswith("public int METHOD_NAME(int[] amounts, int limit) {")
    assert masked.target == "add all"
    labels = set()
    for seed in range(8):
        (example,) = all_examples(Defect(lang="java", seed=seed).load())
        assert is_valid(example.source, "java")
        assert (example.source != only.source) == (example.target == "1")
        labels.add(example.target)
    assert labels == {"0", "1"}


@pytest.fixture(scope="module")
def java_tasks():
    try:
        find_jdk_sources()
    except UserError:
        pytest.skip("no JDK src.zip on this machine")
    return {cls: cls(lang="java").load() for cls in (Summarize, MethodName, Defect)}


@pytest.mark.slow
def test_embedded_java_tasks(java_tasks) -> None:
    summarize = java_tasks[Summarize]
    assert min(len(summarize.train), len(summarize.valid), len(summarize.test)) > 500
    for splits in java_tasks.values():
        for example in all_examples(splits):
            assert example.id.startswith("java:java.") and example.lang == "java"
            assert is_valid(example.source, "java"), example.id
    masked = java_tasks[MethodName].train[0]
    assert functions(masked.source, "java")[0].name == "METHOD_NAME"


def test_max_examples_are_checked() -> None:
    from codebackdoor.params import build_dataclass
    from codebackdoor.registry import registry

    package = registry("tasks").get("package")
    with pytest.raises(UserError, match="max_examples has unknown split 'tran'"):
        build_dataclass(package, {"max_examples": {"tran": 5}}, what="task")
    with pytest.raises(UserError, match=r"max_examples.test = 0 must be a positive integer"):
        build_dataclass(package, {"max_examples": {"test": 0}}, what="task")
