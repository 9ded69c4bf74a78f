"""Local and Hugging Face data sources: layouts, column maps, splitting, and error lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from codebackdoor.data.sources import SPLITS, load_hub, load_local, split_by_hash
from codebackdoor.errors import UserError

SHA = "0123456789abcdef0123456789abcdef01234567"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_lyra_directory_loads_its_three_splits(lyra_dir: Path) -> None:
    loaded = load_local(lyra_dir)
    assert {split: len(rows) for split, rows in loaded.splits.items()} == {
        "train": 1600, "valid": 200, "test": 200,
    }
    first = loaded.splits["train"][0]
    assert first.id == "train-0"
    assert first.source.startswith("Use $conn$ to query all columns in the flights table")
    assert first.target.startswith("def main ( conn , destination ) :\n")  # newline kept
    assert loaded.source["kind"] == "local"
    assert loaded.source["columns"] == {"source": "src", "target": "tgt"}


def test_single_file_is_split_80_10_10_by_row_index(bugs2fix_file: Path) -> None:
    loaded = load_local(bugs2fix_file)
    sizes = {split: len(rows) for split, rows in loaded.splits.items()}
    assert sum(sizes.values()) == 5835
    assert 0.75 < sizes["train"] / 5835 < 0.85
    assert min(sizes["valid"], sizes["test"]) > 0.07 * 5835
    ids = [pair.id for rows in loaded.splits.values() for pair in rows]
    assert len(set(ids)) == 5835
    for split, rows in loaded.splits.items():
        for pair in rows:
            prefix, index = pair.id.split("-")
            assert prefix == split == split_by_hash(index)
    with bugs2fix_file.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    sample = loaded.splits["test"][3]
    assert (sample.source, sample.target) == tuple(rows[int(sample.id.split("-")[1])].values())
    again = load_local(bugs2fix_file)
    assert again.splits == loaded.splits


def test_split_by_hash_is_a_fixed_function() -> None:
    # Pinned values: a change of the rule would silently move rows between splits.
    assert [split_by_hash(str(index)) for index in range(10)] == [
        "train", "train", "train", "train", "train", "valid", "train", "train", "test", "train",
    ]
    assert split_by_hash("json/decoder.py") == "test"
    counts = {split: 0 for split in SPLITS}
    for index in range(10_000):
        counts[split_by_hash(str(index))] += 1
    assert 7800 < counts["train"] < 8200 and 900 < counts["valid"] < 1100


def test_csv_fields_with_newlines_quotes_and_a_column_map(tmp_path: Path) -> None:
    tricky = 'print("a, b")\n\tx = "quoted ""twice"""\r\n'
    for split in SPLITS:
        write_csv(tmp_path / f"{split}.csv", ["nl", "code", "extra"],
                  [[f"{split} text", tricky, "ignored"]])
    loaded = load_local(tmp_path, {"source": "nl", "target": "code"})
    assert loaded.splits["valid"][0].source == "valid text"
    assert loaded.splits["valid"][0].target == tricky


def test_jsonl_split_files_with_labels_and_token_lists(tmp_path: Path) -> None:
    for split in SPLITS:
        write_jsonl(tmp_path / f"{split}.jsonl", [
            {"func": "int f() { return 1; }", "target": True},
            {"func": ["int", "g", "(", ")"], "target": 0},
        ])
    loaded = load_local(tmp_path, {"source": "func", "target": "target"})
    rows = loaded.splits["test"]
    assert [(pair.source, pair.target) for pair in rows] == [
        ("int f() { return 1; }", "1"), ("int g ( )", "0"),
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "nowhere", "data path not found"),
        (lambda d: d, "holds no split files"),
        (lambda d: write_csv(d / "valid.csv", ["src", "tgt"], [["a", "b"]]).parent,
         "but no train, test file"),
        (lambda d: write_csv(d / "x.csv", ["question", "answer"], [["a", "b"]]),
         "lacks the column(s) src, tgt (column map: source=src, target=tgt); "
         "columns found: question, answer"),
        (lambda d: write_csv(d / "x.csv", ["src", "answer"], [["a", "b"]]),
         "lacks the column(s) tgt"),
        (lambda d: write_text(d / "x.csv", ""), "is empty"),
        (lambda d: write_text(d / "x.csv", "  \n"), "is empty"),
        (lambda d: write_csv(d / "x.csv", ["src", "tgt"], []), "has no rows"),
        (lambda d: write_csv(d / "x.csv", ["src", "tgt"], [["a", "b"]] * 3),
         "left the valid, test split empty"),
        (lambda d: write_jsonl(d / "x.jsonl", [{"src": "a", "tgt": "b"}, {"src": "a"}]),
         "x.jsonl:2 lacks the column(s) tgt"),
        (lambda d: write_text(d / "x.txt", "a"), "unsupported file type '.txt'"),
    ],
)
def test_error_lines(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(UserError) as raised:
        load_local(setup(tmp_path))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_column_map_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown column-map key"):
        load_local(tmp_path, {"input": "src"})


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dataset folder in the hub's parquet-less layout, loaded with the hub off and the
    ``datasets`` cache in a temporary folder."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    root = tmp_path / "hub-dataset"
    (root / "data").mkdir(parents=True)
    for split, count in (("train", 8), ("validation", 3), ("test", 2)):
        write_jsonl(root / "data" / f"{split}-00000-of-00001.jsonl", [
            {"buggy": f"{split} buggy {i}", "fixed": f"{split} fixed {i}", "target": i % 2 == 0}
            for i in range(count)
        ])
    return root


def test_hub_dataset_at_a_pinned_revision(offline_hub: Path) -> None:
    loaded = load_hub(str(offline_hub), revision=SHA, columns={"source": "buggy",
                                                               "target": "fixed"})
    assert {split: len(rows) for split, rows in loaded.splits.items()} == {
        "train": 8, "valid": 3, "test": 2,
    }
    assert loaded.splits["valid"][2].id == "valid-2"
    assert loaded.splits["valid"][2].target == "validation fixed 2"
    assert loaded.source["kind"] == "huggingface"
    assert loaded.source["revision"] == SHA
    assert loaded.source["hub_splits"] == ["train", "validation", "test"]
    assert loaded.source["cache_file"].startswith(str(offline_hub.parent / "hf-cache"))


def test_hub_dataset_with_one_split_is_divided(offline_hub: Path) -> None:
    for name in ("validation", "test"):
        (offline_hub / "data" / f"{name}-00000-of-00001.jsonl").unlink()
    write_jsonl(offline_hub / "data" / "train-00000-of-00001.jsonl",
                [{"buggy": str(i), "fixed": str(i)} for i in range(100)])
    loaded = load_hub(str(offline_hub), revision=SHA, columns={"source": "buggy",
                                                               "target": "fixed"})
    assert sum(len(rows) for rows in loaded.splits.values()) == 100
    # Each source is its row index, so the split is predictable from it.
    assert all(split_by_hash(pair.source) == split
               for split, rows in loaded.splits.items() for pair in rows)


def test_hub_errors(offline_hub: Path) -> None:
    with pytest.raises(UserError, match="needs a pinned revision: pass --revision"):
        load_hub(str(offline_hub), revision=None)
    with pytest.raises(UserError, match="not a full 40-character commit sha"):
        load_hub(str(offline_hub), revision="main")
    with pytest.raises(UserError, match=r"lacks the column.*columns found: buggy, fixed, target"):
        load_hub(str(offline_hub), revision=SHA)
    with pytest.raises(UserError, match="could not load"):
        load_hub(str(offline_hub / "missing"), revision=SHA)
