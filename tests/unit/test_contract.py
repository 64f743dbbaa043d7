"""Each way a file can break the data contract is refused with the column, rule and rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fraudsvc.contract import ContractError, load_contract_file

HEADER = "transaction_id,timestamp,customer_id,terminal_id,amount,is_fraud\n"
GOOD = [
    "t1,2026-01-01T10:00:00,C1,T1,10.5,0",
    "t2,2026-01-01T11:00:00Z,C2,T2,0,1",
    "t3,2026-01-01 12:30:00+02:00,C1,T1,999999.99,0",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def refused(tmp_path: Path, rows: list[str], header: str = HEADER) -> ContractError:
    with pytest.raises(ContractError) as info:
        load_contract_file(write(tmp_path, rows, header), require_labels=True)
    return info.value


def test_a_good_file_is_typed_sorted_and_in_utc(tmp_path: Path) -> None:
    checked = load_contract_file(write(tmp_path, GOOD), require_labels=True)
    df = checked.frame
    assert df.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert df["transaction_id"].to_list() == ["t1", "t3", "t2"]  # 12:30+02:00 is 10:30 UTC
    assert str(df["timestamp"][1]) == "2026-01-01 10:30:00+00:00"
    assert df["is_fraud"].dtype == pl.Int8


def test_extra_columns_are_ignored_and_reported(tmp_path: Path) -> None:
    rows = [r + ",x" for r in GOOD]
    checked = load_contract_file(
        write(tmp_path, rows, HEADER.strip() + ",note\n"), require_labels=True
    )
    assert checked.ignored_columns == ("note",)
    assert "note" not in checked.frame.columns


def test_missing_column(tmp_path: Path) -> None:
    header = "transaction_id,timestamp,customer_id,amount,is_fraud\n"
    err = refused(tmp_path, ["t1,2026-01-01T10:00:00,C1,1.0,0"], header)
    assert err.column == "terminal_id"
    assert "missing" in str(err)


def test_missing_label_only_matters_when_labels_are_required(tmp_path: Path) -> None:
    header = "transaction_id,timestamp,customer_id,terminal_id,amount\n"
    path = write(tmp_path, ["t1,2026-01-01T10:00:00,C1,T1,1.0"], header)
    assert not load_contract_file(path, require_labels=False).has_labels
    with pytest.raises(ContractError) as info:
        load_contract_file(path, require_labels=True)
    assert info.value.column == "is_fraud"


@pytest.mark.parametrize(
    ("bad_row", "column", "rule_words"),
    [
        ("t9,2026-01-01T10:00:00,C1,T1,-0.01,0", "amount", ">= 0"),
        ("t9,2026-01-01T10:00:00,C1,T1,inf,0", "amount", "finite"),
        ("t9,2026-01-01T10:00:00,C1,T1,NaN,0", "amount", "finite"),
        ("t9,2026-01-01T10:00:00,C1,T1,1000000.01,0", "amount", "1,000,000"),
        ("t9,2026-01-01T10:00:00,C1,T1,ten,0", "amount", "finite"),
        ("t9,yesterday,C1,T1,1.0,0", "timestamp", "ISO 8601"),
        ("t9,2026-13-01T10:00:00,C1,T1,1.0,0", "timestamp", "ISO 8601"),
        ("t9,0001-01-01T10:00:00,C1,T1,1.0,0", "timestamp", "from 1970-01-01"),
        ("t 9,2026-01-01T10:00:00,C1,T1,1.0,0", "transaction_id", "1-64 characters"),
        ("t9,2026-01-01T10:00:00,C/1,T1,1.0,0", "customer_id", "1-64 characters"),
        ("t9,2026-01-01T10:00:00,C1," + "T" * 65 + ",1.0,0", "terminal_id", "1-64 characters"),
        ("t9,2026-01-01T10:00:00,C1,T1,1.0,2", "is_fraud", "0 or 1"),
        ("t1,2026-01-01T10:00:00,C1,T1,1.0,0", "transaction_id", "unique"),
    ],
)
def test_each_violation_names_column_rule_and_rows(
    tmp_path: Path, bad_row: str, column: str, rule_words: str
) -> None:
    err = refused(tmp_path, [*GOOD, bad_row])
    assert err.column == column
    assert rule_words in err.rule
    message = str(err)
    assert f"column '{column}'" in message
    assert "row 4" in message or (column == "transaction_id" and "row 1" in message)


def test_only_the_first_rows_are_shown(tmp_path: Path) -> None:
    rows = [f"b{i},2026-01-01T10:00:00,C1,T1,-{i + 1},0" for i in range(20)]
    err = refused(tmp_path, rows)
    assert err.count == 20
    assert str(err).count("row ") == 5


def test_parquet_with_naive_timestamps_means_utc(tmp_path: Path) -> None:
    path = tmp_path / "naive.parquet"
    pl.DataFrame(
        {
            "transaction_id": ["a"],
            "timestamp": pl.Series(["2026-01-01 10:00:00"]).str.to_datetime(),
            "customer_id": ["C"],
            "terminal_id": ["T"],
            "amount": [1.0],
            "is_fraud": [0],
        }
    ).write_parquet(path)
    df = load_contract_file(path, require_labels=True).frame
    assert str(df["timestamp"][0]) == "2026-01-01 10:00:00+00:00"


def test_unknown_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fraudsvc generate"):
        load_contract_file(tmp_path / "nope.csv", require_labels=True)
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unsupported file type"):
        load_contract_file(odd, require_labels=True)


def test_amounts_are_exact_minor_units_and_their_exact_decimal(tmp_path: Path) -> None:
    """164 minor units are 1.64 exactly as Python divides, not 1.6400000000000001."""
    rows = [f"t{i},2026-01-01T10:00:00,C1,T1,{i / 100:.2f},0" for i in range(0, 5000, 7)]
    df = load_contract_file(write(tmp_path, rows), require_labels=True).frame
    for minor, amount in df.select("amount_minor", "amount").iter_rows():
        assert amount == minor / 100
        assert repr(amount) == repr(float(f"{minor / 100:.2f}"))


def test_an_amount_with_more_than_two_decimals_is_refused(tmp_path: Path) -> None:
    err = refused(tmp_path, ["t9,2026-01-01T10:00:00,C1,T1,10.005,0"])
    assert err.column == "amount"
    assert "at most 2 decimals" in str(err)


V2_HEADER = (
    "transaction_id,timestamp,customer_id,terminal_id,amount,currency,merchant_category,"
    "merchant_country,card_country,channel,device_id,ip,attributes,is_fraud\n"
)
V2_GOOD = (
    "t1,2026-01-01T10:00:00,C1,T1,10.5,EUR,0742,FR,DE,ecommerce,dev-1,2001:DB8::1,"
    '"{""wallet"": ""apple_pay"", ""three_ds"": true}",0'
)


def test_a_v2_file_is_checked_and_canonical(tmp_path: Path) -> None:
    rows = [V2_GOOD, "t2,2026-01-01T11:00:00,C2,T2,3,,,,,,,,,0"]
    df = load_contract_file(write(tmp_path, rows, V2_HEADER), require_labels=True).frame
    first, second = df.row(0, named=True), df.row(1, named=True)
    assert first["merchant_category"] == "0742"
    assert first["ip"] == "2001:db8::1"
    assert first["attributes"] == '{"three_ds":true,"wallet":"apple_pay"}'
    assert all(second[c] is None for c in ("currency", "channel", "device_id", "attributes"))


def test_a_five_field_file_gets_every_optional_column_as_missing(tmp_path: Path) -> None:
    df = load_contract_file(write(tmp_path, GOOD), require_labels=True).frame
    assert df["channel"].null_count() == df.height
    assert df["amount_minor"].to_list() == [1050, 99999999, 0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("currency", "eur"),
        ("merchant_category", "742"),
        ("merchant_country", "XX"),
        ("card_country", "France"),
        ("channel", "atm"),
        ("device_id", "dev 1"),
        ("ip", "300.1.1.1"),
        ("attributes", '"{""Bad"": 1}"'),
        ("attributes", '"[1, 2]"'),
        ("attributes", '"{""a"": [1]}"'),
    ],
)
def test_each_v2_column_is_refused_with_its_rule(tmp_path: Path, column: str, value: str) -> None:
    good = dict(zip(V2_HEADER.strip().split(","), V2_GOOD.split(",", 12)[:12], strict=False))
    good[column] = value
    header = V2_HEADER.strip().split(",")
    row = ",".join(
        good.get(c, '"{}"' if c == "attributes" else "0") if c != column else value for c in header
    )
    err = refused(tmp_path, [row.replace("t1,", "t9,", 1)], V2_HEADER)
    assert err.column == column
    assert "t9" in str(err)
