"""Per-class file-disjoint splits, stratified samples and the label distance they are judged by;
the package task's split on the packaged corpus (and on the JDK sources where present)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import error_line

from codebackdoor.data import stratify
from codebackdoor.data.harvest import find_jdk_sources
from codebackdoor.errors import UserError
from codebackdoor.params import build_dataclass
from codebackdoor.tasks.base import Splits
from codebackdoor.tasks.package import Package
from codebackdoor.tasks.summarize import Summarize

SPLITS = ("train", "valid", "test")
# `codebackdoor data show --task package --format json` on the packaged corpus. They change only
# when the corpus file, the split rule or the task's examples do; then docs/data.md changes too.
PACKAGE_PYTHON_FINGERPRINTS = {
    "train": "sha256:540b17ddce15cc38ddd9572d29d84b72fc824989e0dc892123d8229f75937b24",
    "valid": "sha256:2546b9a5532f5b8e2855db26c39afe3de386b2485d3cf1de99fc591de1f91793",
    "test": "sha256:b9e96387a6e67c73952af9df12a3de5951b82a21295060a9a87866cbce46bc30",
}


def labels_of(splits: Splits, name: str) -> Counter:
    return Counter(example.target for example in getattr(splits, name))


def test_split_files_places_large_files_first_and_fills_the_furthest_split() -> None:
    # A class of three files (logging's shape): the two large ones fill train, the small one
    # goes to test, which is filled before valid when both are equally short.
    assert stratify.split_files({"a.py": 61, "b.py": 47, "c.py": 20}) == {
        "a.py": "train", "b.py": "train", "c.py": "test"}
    sizes = {f"f{i}.py": 1 + i % 4 for i in range(40)}
    assigned = stratify.split_files(sizes)
    got = stratify.shares(sizes, assigned)
    assert got == pytest.approx({"train": 0.8, "valid": 0.1, "test": 0.1}, abs=0.02)
    assert stratify.split_files(dict(reversed(sizes.items()))) == assigned  # order-free


def test_allocate_is_largest_remainder() -> None:
    # Quotas 2.5, 1.5, 1.0: floors 2, 1, 1 and the one place left goes to the tie broken by name.
    assert stratify.allocate({"a": 5, "b": 3, "c": 2}, 5) == {"a": 3, "b": 1, "c": 1}
    assert stratify.allocate({"a": 90, "b": 8, "c": 2}, 10) == {"a": 9, "b": 1, "c": 0}
    assert stratify.allocate({"a": 2, "b": 1}, 7) == {"a": 2, "b": 1}
    counts = {label: 7 + 13 * i for i, label in enumerate("abcdefg")}
    for size in (1, 9, 50, 200):
        assert sum(stratify.allocate(counts, size).values()) == size


def test_sample_is_stratified_ordered_and_fixed_by_the_ids() -> None:
    ids = [f"id-{i}" for i in range(100)]
    labels = ["x"] * 70 + ["y"] * 20 + ["z"] * 10
    chosen = stratify.sample(ids, labels, 10)
    assert chosen == sorted(chosen)
    assert Counter(labels[i] for i in chosen) == {"x": 7, "y": 2, "z": 1}
    assert stratify.sample(list(reversed(ids)), list(reversed(labels)), 10) == sorted(
        99 - i for i in chosen)
    assert len(stratify.sample(ids, None, 10)) == 10
    assert stratify.sample(ids[:5], labels[:5], 10) == [0, 1, 2, 3, 4]


def test_total_variation() -> None:
    assert stratify.total_variation({"a": 1, "b": 1}, {"a": 5, "b": 5}) == 0
    assert stratify.total_variation({"a": 3}, {"b": 2}) == 1
    assert stratify.total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def package_python() -> Splits:
    return Package(lang="python").load()


def check_stratified(splits: Splits) -> None:
    train = labels_of(splits, "train")
    for name in ("valid", "test"):
        assert set(labels_of(splits, name)) == set(train), name
        assert stratify.total_variation(labels_of(splits, name), train) <= 0.05, name
    files = {name: {e.meta["file"] for e in getattr(splits, name)} for name in SPLITS}
    assert not files["train"] & files["valid"] and not files["train"] & files["test"]
    assert not files["valid"] & files["test"]


def test_package_python_split_matches_training_and_is_frozen(package_python: Splits) -> None:
    check_stratified(package_python)
    assert package_python.fingerprints() == PACKAGE_PYTHON_FINGERPRINTS
    assert package_python.source["path"].endswith("python-stdlib-3.11.jsonl.gz")
    assert package_python.source["unsplittable"] == ["logging", "http"]
    assert len(package_python.source["classes"]) == 9


def test_package_asks_for_no_more_classes_than_split() -> None:
    with pytest.raises(UserError, match=r"only \d+ packages of the python corpus split"):
        Package(lang="python", classes=80).load()


@pytest.mark.slow
def test_package_java_split_matches_training() -> None:
    try:
        find_jdk_sources()
    except UserError:
        pytest.skip("no JDK src.zip on this machine")
    check_stratified(Package(lang="java").load())


def test_a_small_slice_keeps_every_class(package_python: Splits) -> None:
    limits = {"train": 240, "valid": 40, "test": 40}
    task = build_dataclass(Package, {"max_examples": limits}, what="task")
    small = task.load()
    for name, size in limits.items():
        full, kept = getattr(package_python, name), getattr(small, name)
        assert len(kept) == size
        assert kept == [e for e in full if e in kept]  # split order kept
        expected = stratify.allocate(labels_of(package_python, name), size)
        assert labels_of(small, name) == Counter({k: n for k, n in expected.items() if n})
        # With these sizes every class's quota is at least one place.
        assert set(labels_of(small, name)) == set(labels_of(package_python, name)), name
    assert task.load().fingerprints() == small.fingerprints()
    assert small.source["max_examples"] == limits


def test_a_text_task_sample_is_uniform_and_fixed() -> None:
    task = build_dataclass(Summarize, {"max_examples": {"test": 30}}, what="task")
    first, again = task.load().test, task.load().test
    assert len(first) == 30 and first == again


def test_data_show_json(capsys: pytest.CaptureFixture[str], package_python: Splits) -> None:
    from codebackdoor.cli import main

    assert main(["data", "show", "--task", "package", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["task"] == "package" and shown["lang"] == "python"
    for name in SPLITS:
        entry = shown["splits"][name]
        assert entry["examples"] == len(getattr(package_python, name))
        assert entry["fingerprint"] == PACKAGE_PYTHON_FINGERPRINTS[name]
        assert entry["labels"] == dict(labels_of(package_python, name))
        assert entry["tv_to_train"] <= 0.05
    assert shown["source"]["classes"] == package_python.source["classes"]
    assert main(["data", "show", "--task", "summarize", "--format", "json"]) == 0
    assert "labels" not in json.loads(capsys.readouterr().out)["splits"]["test"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["--format", "yaml"], "--format must be one of table, json, got 'yaml'"),
     (["--examples", "-1"], "--examples must be 0 or more")],
)
def test_data_show_bad_flags(capsys: pytest.CaptureFixture[str], argv: list[str],
                             expected: str) -> None:
    assert expected in error_line(capsys, ["data", "show", "--task", "package", *argv])
