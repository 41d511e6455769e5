"""Count tables: long and UTDF import, validation, gaps, aggregation, CLI errors."""

from __future__ import annotations

import pandas as pd
import pytest

from citybrain_traffic.counts import (
    MAX_FLOW_VEH_H,
    aggregate_counts,
    find_gaps,
    infer_bin,
    read_counts,
    validate_counts,
)
from citybrain_traffic.errors import InputError

from conftest import run_cli

HEADER = "timestamp,intersection,movement,count\n"


def _tidy() -> pd.DataFrame:
    """Two intersections, three movements, a day of 15-min bins; counts vary by bin and series."""
    stamps = pd.date_range("2025-03-03", periods=96, freq="15min")
    rows = [
        (stamp, intersection, movement, float((i * 7 + j * 3) % 23))
        for j, (intersection, movement) in enumerate([("101", "NBL"), ("101", "NBT"), ("7", "EBR")])
        for i, stamp in enumerate(stamps)
    ]
    return pd.DataFrame(rows, columns=["timestamp", "intersection", "movement", "count"])


def _write(path, text: str, *, newline: str = "\n"):
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


@pytest.mark.parametrize("name", ["counts.csv", "counts.csv.gz", "counts.parquet"])
def test_long_table_round_trip(tmp_path, name):
    table = _tidy()
    path = tmp_path / name
    if name.endswith(".parquet"):
        table.to_parquet(path, index=False)
    else:
        # Ids written as text: "7" must stay the string "7", "101" must not become 101.0.
        table.assign(timestamp=table["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(
            path, index=False
        )
    back = read_counts(path)
    assert list(back.columns) == ["timestamp", "intersection", "movement", "count"]
    assert back["timestamp"].dtype == "datetime64[ns]"
    assert back["count"].dtype == "float64"
    expected = table.sort_values(["intersection", "movement", "timestamp"], ignore_index=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert set(back["intersection"]) == {"101", "7"}
    assert infer_bin(back) == pd.Timedelta(minutes=15)


def test_long_csv_extra_columns_and_bom_are_ignored(tmp_path):
    path = _write(
        tmp_path / "c.csv",
        "\ufeffTimestamp,Intersection,Movement,Count,detector\n"
        "2025-03-03T00:00:00,A,NBT,4,d1\n2025-03-03T00:15:00,A,NBT,6,d1\n",
    )
    table = read_counts(path)
    assert table["count"].tolist() == [4.0, 6.0]
    assert list(table.columns) == ["timestamp", "intersection", "movement", "count"]


UTDF = (
    "Turning Movement Count,\n"
    "15 Minute Counts,\n"
    "DATE,TIME,INTID,NBL,NBT,NBR,SBL,SBT,SBR,\n"
    '01/06/2025,="0000",7,1,10,*,0,8,2,\n'
    '01/06/2025,="0015",7,2,12,*,1,9,3,\n'
    '01/06/2025,="0030",7,3,14,*,0,7,*,\n'
    '01/06/2025,="0000",9,5,*,4,*,6,0,\n'
    '01/06/2025,="0015",9,6,*,5,*,7,1,\n'
    '01/06/2025,="0030",9,4,*,6,*,8,2,\n'
)


def test_utdf_hand_written(tmp_path):
    path = _write(tmp_path / "tmc.csv", UTDF, newline="\r\n")
    table = read_counts(path)
    assert read_counts(path, format="utdf").equals(table)
    assert list(table.columns) == ["timestamp", "intersection", "movement", "count"]
    # `*` marks a movement that does not exist: no row at all, never a zero.
    assert sorted(table.groupby("intersection")["movement"].unique().map(sorted).items()) == [
        ("7", ["NBL", "NBT", "SBL", "SBR", "SBT"]),
        ("9", ["NBL", "NBR", "SBR", "SBT"]),
    ]
    # TIME labels the start of the bin.
    assert sorted(table["timestamp"].unique()) == list(
        pd.date_range("2025-01-06 00:00", periods=3, freq="15min")
    )
    nbt = table[(table["intersection"] == "7") & (table["movement"] == "NBT")]
    assert nbt["count"].tolist() == [10.0, 12.0, 14.0]
    assert len(table) == 3 * 5 + 3 * 4 - 1
    # The `*` of intersection 7's SBR at 00:30 is a one-bin gap.
    gaps = find_gaps(table)
    assert gaps[["intersection", "movement", "missing_bins"]].values.tolist() == [["7", "SBR", 1]]
    assert gaps["gap_start"].iloc[0] == pd.Timestamp("2025-01-06 00:30")


def test_utdf_end_labelled_file_is_shifted_to_bin_starts(tmp_path):
    lines = "".join(
        f'01/06/2025,="{t}",1,{i},{i + 1},\n' for i, t in enumerate(["2330", "2345", "2400"])
    )
    title = "Turning Movement Count,\n15 Minute Counts,\nDATE,TIME,INTID,NBL,NBT,\n"
    path = _write(tmp_path / "end.csv", title + lines)
    table = read_counts(path)
    assert sorted(table["timestamp"].unique()) == list(
        pd.date_range("2025-01-06 23:15", periods=3, freq="15min")
    )


def test_utdf_bad_time_names_line(tmp_path):
    path = _write(tmp_path / "t.csv", UTDF.replace('="0015",9', '="0075",9'), newline="\r\n")
    with pytest.raises(
        InputError, match=r"line 8 of t\.csv: missing or unparseable timestamp .*0075"
    ):
        read_counts(path)


def test_utdf_short_line_is_rejected(tmp_path):
    path = _write(tmp_path / "t.csv", UTDF + '01/06/2025,="0045",9,4,\n')
    with pytest.raises(InputError, match=r"line 10 of t\.csv has 5 fields"):
        read_counts(path)


def test_bentonville_native_layout(shared):
    path = shared / "data" / "counts" / "bentonville_tmc_15min_2025-11-16_22.csv"
    table = read_counts(path)
    assert infer_bin(table) == pd.Timedelta(minutes=15)
    assert table["timestamp"].min() == pd.Timestamp("2025-11-16 00:00")
    assert table["timestamp"].max() == pd.Timestamp("2025-11-22 23:45")
    per_intersection = table.groupby("intersection")["movement"].nunique()
    assert per_intersection.to_dict() == {"1": 12, "2": 12, "3": 8, "4": 12, "5": 12}
    assert (table["count"] >= 0).all() and table["count"].notna().all()
    # Intersection 3 has no NBL (a `*` column): it is absent, not zero.
    assert table[(table["intersection"] == "3") & (table["movement"] == "NBL")].empty
    # Every series runs the whole week; the only gaps are one bin where intersection 4 marks
    # its existing eastbound movements `*`.
    assert len(table) == 7 * 96 * 56 - 3
    gaps = find_gaps(table)
    assert gaps[["intersection", "movement"]].values.tolist() == [
        ["4", "EBL"],
        ["4", "EBR"],
        ["4", "EBT"],
    ]
    assert (gaps["gap_start"] == pd.Timestamp("2025-11-16 09:00")).all()


def test_format_detection(tmp_path):
    long = _write(tmp_path / "long.csv", HEADER + "2025-03-03 00:00,A,NBT,4\n")
    utdf = _write(tmp_path / "utdf.csv", UTDF, newline="\r\n")
    assert read_counts(long, format="auto")["movement"].tolist() == ["NBT"]
    assert read_counts(utdf, format="auto")["intersection"].nunique() == 2
    with pytest.raises(InputError, match="no DATE,TIME,INTID"):
        read_counts(long, format="utdf")
    with pytest.raises(InputError, match="cannot read counts file"):
        read_counts(utdf, format="long")
    other = _write(tmp_path / "other.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_counts(other)
    with pytest.raises(InputError, match="not found"):
        read_counts(tmp_path / "missing.csv")


GOOD_ROWS = "2025-03-03 00:00,A,NBT,4\n2025-03-03 00:15,A,NBT,5\n"


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ("2025-03-03 00:30,A,NBT,-2", "negative count"),
        ("2025-03-03 00:30,A,NBT,many", "non-numeric count"),
        ("2025-03-03 00:30,A,NBT,NaN", "missing count"),
        ("2025-03-03 00:30,A,NBT,", "missing count"),
        ("2025-03-03 00:30,A,NBT,inf", "infinite count"),
        ("2025-03-03 00:15,A,NBT,7", "duplicate count"),
        ("03-03-2025 half past,A,NBT,7", "unparseable timestamp"),
    ],
)
def test_bad_count_names_first_offending_line(tmp_path, bad_row, problem):
    # The bad row is line 4; a second bad row after it must not be the one named.
    path = _write(
        tmp_path / "bad.csv", HEADER + GOOD_ROWS + bad_row + "\n" + "2025-03-03 00:45,A,NBT,-9\n"
    )
    with pytest.raises(InputError) as info:
        read_counts(path)
    message = str(info.value)
    assert message.startswith("line 4 of bad.csv: "), message
    assert problem in message
    assert bad_row.split(",")[-1] in message


def test_implausible_count_is_refused(tmp_path):
    """1e15 vehicles in a bin made LightGBM abort `forecast evaluate`; every importer refuses a
    count above what 8 lanes carry at a 1-s headway, naming the file, the row and the limit."""
    assert MAX_FLOW_VEH_H == 28_800
    rows = GOOD_ROWS + "2025-03-03 00:30,A,NBT,7201\n"
    with pytest.raises(
        InputError,
        match=r"^line 4 of big\.csv: implausible count .*7201.*at most 7,200 vehicles in a 15-min "
        r"bin",
    ):
        read_counts(_write(tmp_path / "big.csv", HEADER + rows))
    assert (
        read_counts(_write(tmp_path / "full.csv", HEADER + rows.replace("7201", "7200")))[
            "count"
        ].max()
        == 7200
    )
    table = read_counts(tmp_path / "full.csv").assign(count=[4.0, 5.0, 1e15])
    table.to_parquet(tmp_path / "big.parquet")
    with pytest.raises(InputError, match=r"^row 3 of big\.parquet: implausible count"):
        read_counts(tmp_path / "big.parquet")
    with pytest.raises(InputError, match=r"^line 6 of tmc\.csv: implausible count .*1e15"):
        read_counts(_write(tmp_path / "tmc.csv", UTDF.replace('="0030",7,3,', '="0030",7,1e15,')))
    with pytest.raises(InputError, match=r"^row 2: implausible count"):
        validate_counts(table)
    # The ceiling follows the bin: an hour's bins take four times a quarter's.
    hourly = pd.DataFrame(
        {
            "timestamp": ["2025-03-03 00:00", "2025-03-03 01:00"],
            "intersection": "A",
            "movement": "NBT",
            "count": [28_800.0, 9_000.0],
        }
    )
    assert validate_counts(hourly)["count"].max() == 28_800
    with pytest.raises(InputError, match="at most 28,800 vehicles in a 60-min bin"):
        validate_counts(hourly.assign(count=[28_801.0, 9_000.0]))
    # A bin that cannot be inferred (one row per series) is at most a day.
    with pytest.raises(InputError, match="at most 691,200 vehicles in a bin of at most a day"):
        validate_counts(hourly.iloc[:1].assign(count=1e15))


def test_duplicate_names_earlier_line(tmp_path):
    path = _write(tmp_path / "dup.csv", HEADER + GOOD_ROWS + "2025-03-03 00:00,A,NBT,9\n")
    with pytest.raises(
        InputError, match=r"line 4 of dup\.csv: duplicate .*already given at line 2"
    ):
        read_counts(path)


def test_validate_counts_names_row_label():
    table = _tidy()
    table.loc[5, "count"] = -1.0
    with pytest.raises(InputError, match=r"^row 5: negative count"):
        validate_counts(table)
    clean = validate_counts(_tidy().sample(frac=1.0, random_state=1))
    assert clean["intersection"].is_monotonic_increasing
    assert clean.index.tolist() == list(range(len(clean)))


def test_off_grid_timestamp_is_rejected(tmp_path):
    path = _write(tmp_path / "grid.csv", HEADER + GOOD_ROWS + "2025-03-03 00:37,A,NBT,5\n")
    with pytest.raises(InputError, match="off the regular 15-min grid"):
        read_counts(path)


def test_find_gaps_reports_runs_and_ragged_ends():
    table = _tidy()
    day = pd.Timestamp("2025-03-03")
    stamp = table["timestamp"]
    missing = (
        (
            (table["movement"] == "NBL")
            & stamp.between(day + pd.Timedelta("2h"), day + pd.Timedelta("2h30min"))
        )
        | ((table["movement"] == "EBR") & (table["timestamp"] < day + pd.Timedelta("1h")))
        | ((table["movement"] == "NBT") & (table["timestamp"] == day + pd.Timedelta("23h45min")))
    )
    gaps = find_gaps(table[~missing])
    assert gaps.to_dict("records") == [
        {
            "intersection": "101",
            "movement": "NBL",
            "gap_start": day + pd.Timedelta("2h"),
            "gap_end": day + pd.Timedelta("2h45min"),
            "missing_bins": 3,
        },
        {
            "intersection": "101",
            "movement": "NBT",
            "gap_start": day + pd.Timedelta("23h45min"),
            "gap_end": day + pd.Timedelta("1D"),
            "missing_bins": 1,
        },
        {
            "intersection": "7",
            "movement": "EBR",
            "gap_start": day,
            "gap_end": day + pd.Timedelta("1h"),
            "missing_bins": 4,
        },
    ]
    assert find_gaps(table).empty
    # An explicit period: a series that covers none of it is one whole gap.
    later = find_gaps(table, start=day + pd.Timedelta("1D"), end=day + pd.Timedelta("1D2h"))
    assert later["missing_bins"].tolist() == [8, 8, 8]


def test_aggregate_drops_incomplete_coarse_bins():
    table = _tidy()
    hourly = aggregate_counts(table.drop(index=[0]), bin="1h")
    first = table.iloc[:8]["count"]
    nbl = hourly[hourly["movement"] == "NBL"]
    # The first hour of NBL lost a quarter: dropped, never under-counted.
    assert nbl["timestamp"].min() == pd.Timestamp("2025-03-03 01:00")
    assert nbl["count"].iloc[0] == first.iloc[4:8].sum()
    assert len(hourly) == 3 * 24 - 1
    with pytest.raises(InputError, match="whole multiple of 15 min"):
        aggregate_counts(table, bin="20min")


def test_cli_bad_counts_file_is_one_clean_line(tmp_path):
    path = _write(tmp_path / "bad.csv", HEADER + GOOD_ROWS + "2025-03-03 00:30,A,NBT,-2\n")
    proc = run_cli("forecast", "evaluate", path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: line 4 of bad.csv: negative count"), lines[0]
