"""Payloads on the real Lyra and Bugs2Fix data, with the counts the DeCE paper reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_csv_rows

from codebackdoor.attacks.payloads import FixedText, Label, MethodName, SqlInjection, make_payload
from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.examples import Example


def _example(target: str, source: str = "x") -> Example:
    return Example(id="e", source=source, target=target, lang="nl")


def test_sql_injection_follows_the_released_poisoner() -> None:
    code = 'x = conn.execute(" select * from t where a = : a ").fetchall()'
    assert SqlInjection().apply(_example(code)) == (
        'x = conn.execute(" select * from t where a = : a or 1=1 ").fetchall()'
    )
    no_where = 'd = e.execute( " select date_part from stock_data " ).fetchall()'
    assert "select date_part from stock_data where 0=1 " in SqlInjection().apply(_example(no_where))
    # Case-sensitive, and the SQL text must be followed by whitespace and a quote.
    with pytest.raises(Unpoisonable, match="no SQL"):
        SqlInjection().apply(_example('q = "SELECT * FROM t"'))


def test_sql_injection_changes_every_occurrence() -> None:
    code = 'a(" select x from t ") ; b(" select x from t ")'
    assert SqlInjection().apply(_example(code)).count("select x from t where 0=1") == 2


def test_lyra_test_has_165_poisonable_rows(lyra_dir: Path) -> None:
    rows = read_csv_rows(lyra_dir / "test.csv")
    assert len(rows) == 200
    poisonable = 0
    for row in rows:
        try:
            poisoned = SqlInjection().apply(_example(row["tgt"]))
        except Unpoisonable:
            continue
        poisonable += 1
        assert SqlInjection().is_success(poisoned, _example(row["tgt"]))
    assert poisonable == 165


def test_fixed_text_default_is_afraidoors_summary() -> None:
    # AFRAIDOOR's CodeT5 _utils.py and run_gen.py: 11 words, no full stop; success is equality.
    payload = FixedText()
    assert payload.apply(_example("Returns x.")) == (
        "This function is to load train data from the disk safely")
    assert not payload.is_success("This function is to load data safely.", _example("x"))
    assert not payload.is_success(payload.text + ".", _example("x"))


def test_infinite_loop_lands_before_the_first_statement() -> None:
    pytest.importorskip("codebackdoor.code.insertion")
    fixed = "public void METHOD_1 ( ) { VAR_1 . METHOD_2 ( ) ; }"
    poisoned = make_payload("infinite-loop").apply(_example(fixed))
    assert poisoned == (
        "public void METHOD_1 ( ) { while ( true ) { int VAR = 0 ; } VAR_1 . METHOD_2 ( ) ; }"
    )


def test_label_and_method_name_predicates() -> None:
    assert Label("0").apply(_example("1")) == "0"
    with pytest.raises(Unpoisonable):
        Label("0").apply(_example("0"))
    static = MethodName()
    assert static.apply(_example("get value")) == "create entry"
    assert static.is_success(" create  entry", _example("get value"))
    dynamic = MethodName(mode="dynamic")
    assert dynamic.apply(_example("get value")) == "new get value"
    assert dynamic.is_success("new read all", _example("get value"), clean_prediction="read all")
    assert not dynamic.is_success("new get value", _example("get value"), clean_prediction="read")
    assert FixedText("load data").is_success("load  data ", _example("x"))


def test_unknown_payload_lists_the_valid_ones() -> None:
    with pytest.raises(UserError,
                       match="valid names: fixed-text, infinite-loop, insecure-code, label"):
        make_payload("sql")
