"""Read, validate, aggregate and inspect tidy per-movement vehicle count tables.

The tidy count table is the one exchange format between detectors (the simulator, a count vendor,
a SCATS export) and the forecasters. One row per series and bin:

=============  ====================================================================================
column         meaning
=============  ====================================================================================
timestamp      start of the bin (pandas ``datetime64[ns]``, naive local wall-clock time)
intersection   intersection id (str)
movement       movement or approach label within the intersection (str), e.g. ``"NBL"``
count          vehicles counted in the bin (float64, >= 0), i.e. vehicles per bin
=============  ====================================================================================

A *series* is one (intersection, movement) pair. Bins are regular (e.g. 15 min) and aligned on one
grid; a bin that has no row is a *gap* (see :func:`find_gaps`), never an implicit zero.

UTDF time convention: in UTDF-style turning-movement files the TIME column labels the **start** of
the bin. The Bentonville example confirms it: every day runs ``0000`` to ``2345``, so ``0000`` is
the first bin of its own date (an end label would make each day run ``0015`` to ``2400``). A file
that contains ``2400`` can only be end-labelled; such a file is shifted back by one bin so that
``timestamp`` always means the start of the bin.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from citybrain_traffic.errors import InputError

COLUMNS = ("timestamp", "intersection", "movement", "count")
SERIES_KEYS = ["intersection", "movement"]

_UTDF_ID_COLUMNS = ("DATE", "TIME", "INTID")
_UTDF_MISSING_MOVEMENT = "*"
# Vendor files put a title block of a few lines above the header; look a little further than
# the usual two lines before deciding a file is not UTDF.
_HEADER_SEARCH_LINES = 10
_ISO_HINT = "expected ISO 8601 like 2025-11-16 08:15:00"
_UTDF_HINT = "expected DATE as MM/DD/YYYY and TIME as HHMM from 0000 to 2400"

CountsFormat = Literal["auto", "long", "utdf"]

#: The most vehicles a movement can carry, veh/h: ``MAX_LANES_PER_MOVEMENT`` lanes each passing a
#: vehicle every ``MIN_HEADWAY_S``. Eight lanes are more than the widest approach counted as one
#: movement; a 1-s headway (3,600 veh/h/lane) is about twice a signalized lane's saturation
#: flow (~1,800-1,900) and above any lane's measured capacity. A count beyond it is a data
#: error (a unit slip, a counter's overflow), not traffic; LightGBM aborts the whole process on
#: counts near 1e15 instead of raising.
MAX_LANES_PER_MOVEMENT = 8
MIN_HEADWAY_S = 1.0
MAX_FLOW_VEH_H = MAX_LANES_PER_MOVEMENT * 3600.0 / MIN_HEADWAY_S


def read_counts(
    path: str | Path,
    *,
    format: CountsFormat = "auto",
    bin: str | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Read a count file into the tidy count table.

    Parameters
    ----------
    path
        A long table (``.csv``, ``.csv.gz`` or ``.parquet``) with columns
        ``timestamp,intersection,movement,count`` (timestamps in ISO 8601, extra columns ignored),
        or a UTDF-style turning-movement-count CSV (title lines, then a
        ``DATE,TIME,INTID,NBL,NBT,...`` header; ``DATE`` is MM/DD/YYYY, ``TIME`` is HHMM, possibly
        written as ``="0015"``, and labels the start of the bin; ``*`` marks a movement that does
        not exist at that intersection and is dropped, not read as zero).
    format
        ``"long"``, ``"utdf"``, or ``"auto"`` to detect it from the header.
    bin
        Bin length to aggregate to, e.g. ``"15min"`` or ``"1h"``. ``None`` keeps the file's own
        bins. It must be a whole multiple of the file's bin length; a coarse bin that is not fully
        covered by the file is dropped (it becomes a gap) instead of being under-counted.

    Returns
    -------
    pandas.DataFrame
        The tidy count table (see the module docstring), sorted by intersection, movement and
        timestamp. ``count`` is in vehicles per bin.

    Raises
    ------
    InputError
        If the file is missing, unreadable or malformed, or a row has a negative, missing or
        non-numeric count, an unparseable timestamp, or repeats a (timestamp, intersection,
        movement) already seen. The message names the first offending file line and its values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"counts file not found: {path} (expected an existing .csv, .csv.gz or .parquet file)"
        )
    if format not in ("auto", "long", "utdf"):
        raise InputError(f"unknown counts format {format!r}; expected 'auto', 'long' or 'utdf'")
    is_parquet = path.suffix.lower() == ".parquet"
    if format == "auto":
        format = "long" if is_parquet else _sniff_format(path)
    if format == "utdf":
        if is_parquet:
            raise InputError(f"{path} is a Parquet file; a UTDF count file is a CSV text file")
        counts = _read_utdf(path)
    elif is_parquet:
        counts = _read_long_parquet(path)
    else:
        counts = _read_long_csv(path)
    if bin is not None:
        counts = aggregate_counts(counts, bin=bin)
    return counts


def validate_counts(counts: pd.DataFrame, *, bin: str | pd.Timedelta | None = None) -> pd.DataFrame:
    """Check a count table (e.g. one produced by the simulator) and return its normalised form.

    Parameters
    ----------
    counts
        A table with at least the columns ``timestamp, intersection, movement, count``;
        timestamps may be datetimes or ISO 8601 strings, ids may be any type (they become str).
    bin
        Expected bin length (e.g. ``"15min"``); every timestamp must lie on one grid of that
        spacing. ``None`` infers the bin from the timestamps.

    Returns
    -------
    pandas.DataFrame
        A new tidy count table: the four columns only, ``timestamp`` as ``datetime64[ns]``,
        ids as str, ``count`` as float64 vehicles per bin, sorted by intersection, movement,
        timestamp, with a fresh index.

    Raises
    ------
    InputError
        Naming the first offending row (by index label) and its values when a count is negative,
        missing, non-numeric or infinite, a timestamp is missing or unparseable, an id is missing,
        a (timestamp, intersection, movement) repeats, or the timestamps are off a regular grid.
    """
    if not isinstance(counts, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of counts, got {type(counts).__name__}")
    index = counts.index
    return _normalise(
        counts, describe=lambda i: f"row {index[i]!r}", bin=bin, timestamp_hint=_ISO_HINT
    )


def max_plausible_count(bin: pd.Timedelta | None) -> float:
    """The most vehicles a movement can carry in one bin: ``MAX_FLOW_VEH_H`` times its length.

    ``None`` (a table whose bin cannot be inferred) takes a day, the longest bin a table has.
    """
    length = pd.Timedelta(days=1) if bin is None else bin
    return MAX_FLOW_VEH_H * (length / pd.Timedelta(hours=1))


def infer_bin(counts: pd.DataFrame) -> pd.Timedelta:
    """Infer the bin length of a tidy count table from its timestamps.

    Parameters
    ----------
    counts
        A tidy count table (as returned by :func:`read_counts` or :func:`validate_counts`).

    Returns
    -------
    pandas.Timedelta
        The smallest spacing between consecutive timestamps of any one series.

    Raises
    ------
    InputError
        If no series has two timestamps, or the timestamps do not lie on one regular grid.
    """
    step = _check_grid(counts, bin=None)
    if step is None:
        raise InputError(
            "cannot infer the bin length: no series has two timestamps; pass the bin length "
            "explicitly (e.g. bin='15min')"
        )
    return step


def aggregate_counts(counts: pd.DataFrame, *, bin: str | pd.Timedelta) -> pd.DataFrame:
    """Sum a tidy count table into coarser bins.

    Parameters
    ----------
    counts
        A tidy count table.
    bin
        The new bin length (e.g. ``"1h"``), a whole multiple of the table's own bin length.

    Returns
    -------
    pandas.DataFrame
        The tidy count table in the new bins (vehicles per new bin). A new bin is kept only when
        every one of its fine bins is present, so a gap never shows up as a low count.

    Raises
    ------
    InputError
        If ``bin`` is not a valid duration or not a whole multiple of the table's bin length.
    """
    target = _as_timedelta(bin, what="bin")
    native = infer_bin(counts)
    if target == native:
        return counts
    if target < native or target % native != pd.Timedelta(0):
        raise InputError(
            f"cannot aggregate {_minutes(native)}-min counts into bin={bin!r}; "
            f"expected a whole multiple of {_minutes(native)} min"
        )
    coarse = counts.assign(timestamp=counts["timestamp"].dt.floor(target))
    grouped = coarse.groupby(["timestamp", *SERIES_KEYS], sort=False)["count"].agg(["sum", "size"])
    complete = grouped[grouped["size"] == target // native]
    out = complete["sum"].rename("count").reset_index()
    return _sorted(out[list(COLUMNS)])


def find_gaps(
    counts: pd.DataFrame,
    *,
    bin: str | pd.Timedelta | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    series: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """List the missing bins of every series as runs of consecutive gaps.

    Parameters
    ----------
    counts
        A tidy count table.
    bin
        Bin length; ``None`` infers it from the timestamps.
    start, end
        The period every series is expected to cover, ``[start, end)``. Default: from the
        table's first bin to the end of its last bin, so a series that starts late or stops
        early shows a gap at that end.
    series
        Series expected besides those in the table (columns ``intersection`` and ``movement``),
        e.g. every movement of a network's signals: one the table lacks altogether is a gap
        over the whole period, not a movement that carried nothing.

    Returns
    -------
    pandas.DataFrame
        One row per gap with columns ``intersection``, ``movement``, ``gap_start`` (start of the
        first missing bin), ``gap_end`` (end of the last missing bin, exclusive) and
        ``missing_bins`` (number of bins). Empty when nothing is missing.
    """
    columns = [*SERIES_KEYS, "gap_start", "gap_end", "missing_bins"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    step = infer_bin(counts) if bin is None else _as_timedelta(bin, what="bin")
    first = pd.Timestamp(start) if start is not None else counts["timestamp"].min()
    last_end = pd.Timestamp(end) if end is not None else counts["timestamp"].max() + step
    n_bins = int((last_end - first) // step)
    codes, keys = _series_codes(counts)
    if series is not None:
        # Appended after the table's series, so the codes of its rows stay valid.
        expected = series[SERIES_KEYS].astype(str).drop_duplicates()
        known = pd.MultiIndex.from_frame(keys)
        keys = pd.concat(
            [keys, expected[~pd.MultiIndex.from_frame(expected).isin(known)]], ignore_index=True
        )
    stamps = counts["timestamp"]
    inside = ((stamps >= first) & (stamps < last_end)).to_numpy()
    codes = codes[inside]
    position = ((stamps[inside] - first) // step).to_numpy(dtype=np.int64)
    order = np.lexsort((position, codes))
    codes, position = codes[order], position[order]
    # Sentinels at -1 and n_bins turn leading and trailing gaps into ordinary between-row gaps.
    new_series = np.ones(codes.size, dtype=bool)
    new_series[1:] = codes[1:] != codes[:-1]
    last_of_series = np.ones(codes.size, dtype=bool)
    last_of_series[:-1] = new_series[1:]
    previous = np.full(codes.size, -1, dtype=np.int64)
    previous[1:] = position[:-1]
    absent = np.setdiff1d(np.arange(len(keys)), codes)
    lo = np.concatenate(
        [
            np.where(new_series, -1, previous) + 1,
            position[last_of_series] + 1,
            np.zeros(absent.size, dtype=np.int64),
        ]
    )
    hi = np.concatenate(
        [position, np.full(last_of_series.sum(), n_bins), np.full(absent.size, n_bins)]
    )
    code = np.concatenate([codes, codes[last_of_series], absent])
    is_gap = hi > lo
    lo, hi, code = lo[is_gap], hi[is_gap], code[is_gap]
    gaps = keys.iloc[code].reset_index(drop=True)
    gaps["gap_start"] = first + lo * step
    gaps["gap_end"] = first + hi * step
    gaps["missing_bins"] = hi - lo
    return gaps.sort_values([*SERIES_KEYS, "gap_start"], ignore_index=True)[columns]


def _sniff_format(path: Path) -> Literal["long", "utdf"]:
    head = _read_head(path)
    for line in head:
        fields = [field.strip().upper() for field in line.split(",")]
        if tuple(fields[:3]) == _UTDF_ID_COLUMNS:
            return "utdf"
    if head and {"timestamp", "intersection", "movement", "count"} <= {
        field.strip().lower() for field in head[0].split(",")
    }:
        return "long"
    first = head[0][:80] if head else ""
    raise InputError(
        f"cannot tell the format of {path} (first line {first!r}); expected a long CSV with the "
        "header timestamp,intersection,movement,count or a UTDF count file with a "
        "DATE,TIME,INTID,... header"
    )


def _read_head(path: Path) -> list[str]:
    try:
        with _open_text(path) as handle:
            return [
                line.lstrip("\ufeff").rstrip("\r\n")
                for _, line in zip(range(_HEADER_SEARCH_LINES), handle)
            ]
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise InputError(f"cannot read counts file {path}: {exc}") from exc


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_long_csv(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        OSError,
        EOFError,
        UnicodeDecodeError,
        zlib.error,
    ) as exc:
        raise InputError(f"cannot read counts file {path}: {str(exc).strip()}") from exc
    raw.columns = [str(column).strip().lower() for column in raw.columns]
    _require_columns(raw, path)
    # With blank lines kept, data row i is file line i + 2 (line 1 is the header).
    lines = np.arange(len(raw)) + 2
    blank = (raw[list(COLUMNS)] == "").all(axis=1).to_numpy()
    raw, lines = raw.loc[~blank], lines[~blank]
    return _normalise(
        raw,
        describe=lambda i: f"line {lines[i]} of {path.name}",
        bin=None,
        timestamp_hint=_ISO_HINT,
    )


def _read_long_parquet(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise InputError(f"cannot read Parquet counts file {path}: {exc}") from exc
    raw.columns = [str(column).strip().lower() for column in raw.columns]
    _require_columns(raw, path)
    return _normalise(
        raw.reset_index(drop=True),
        describe=lambda i: f"row {i + 1} of {path.name}",
        bin=None,
        timestamp_hint=_ISO_HINT,
    )


def _require_columns(raw: pd.DataFrame, path: Path) -> None:
    missing = [column for column in COLUMNS if column not in raw.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; expected a header with "
            f"{','.join(COLUMNS)} (found {','.join(map(str, raw.columns))})"
        )


def _read_utdf(path: Path) -> pd.DataFrame:
    rows, lines, movements = _read_utdf_rows(path)
    wide = pd.DataFrame(rows, columns=[*_UTDF_ID_COLUMNS, *movements])
    line_numbers = np.asarray(lines, dtype=np.int64)
    time = wide["TIME"].str.strip().str.removeprefix("=").str.strip('"').str.strip()
    valid_time = time.str.fullmatch(r"\d{1,4}").fillna(False)
    hhmm = pd.to_numeric(time.where(valid_time), errors="coerce")
    hours, minutes = hhmm // 100, hhmm % 100
    in_range = (hours <= 24) & (minutes < 60) & ~((hours == 24) & (minutes > 0))
    offset = pd.to_timedelta((hours * 60 + minutes).where(in_range), unit="min")
    date = pd.to_datetime(wide["DATE"].str.strip(), format="%m/%d/%Y", errors="coerce")
    long = pd.DataFrame(
        {
            "timestamp": (date + offset).repeat(len(movements)).to_numpy(),
            "intersection": wide["INTID"].str.strip().repeat(len(movements)).to_numpy(),
            "movement": np.tile(np.asarray(movements, dtype=object), len(wide)),
            "count": wide[movements].to_numpy().ravel(),
            "_raw_time": (wide["DATE"].str.strip() + " " + time).repeat(len(movements)).to_numpy(),
        }
    )
    long_lines = np.repeat(line_numbers, len(movements))
    keep = (long["count"].str.strip() != _UTDF_MISSING_MOVEMENT).to_numpy()
    long, long_lines = long.loc[keep].reset_index(drop=True), long_lines[keep]
    end_labelled = bool((hours == 24).any())
    counts = _normalise(
        long,
        describe=lambda i: f"line {long_lines[i]} of {path.name}",
        bin=None,
        timestamp_hint=_UTDF_HINT,
        raw_timestamps=long["_raw_time"],
    )
    if end_labelled:
        counts["timestamp"] -= infer_bin(counts)
    return counts


def _read_utdf_rows(path: Path) -> tuple[list[list[str]], list[int], list[str]]:
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            movements = _find_utdf_header(reader, path)
            width = len(_UTDF_ID_COLUMNS) + len(movements)
            rows: list[list[str]] = []
            lines: list[int] = []
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue
                # Vendor exports end every line with a comma; only empty trailing fields may
                # exceed the header width.
                if len(fields) < width or any(field.strip() for field in fields[width:]):
                    raise InputError(
                        f"line {reader.line_num} of {path.name} has {len(fields)} fields "
                        f"({','.join(fields)[:120]!r}); expected {width}: DATE,TIME,INTID and one "
                        f"count per movement {','.join(movements)}"
                    )
                rows.append(fields[:width])
                lines.append(reader.line_num)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, csv.Error) as exc:
        raise InputError(f"cannot read UTDF counts file {path}: {exc}") from exc
    if not rows:
        raise InputError(f"UTDF counts file {path} has a header but no data lines")
    return rows, lines, movements


def _find_utdf_header(reader: csv.reader, path: Path) -> list[str]:
    for fields in reader:
        names = [field.strip().upper() for field in fields]
        if tuple(names[:3]) == _UTDF_ID_COLUMNS:
            movements = [name for name in names[3:] if name]
            if not movements or len(set(movements)) != len(movements):
                raise InputError(
                    f"line {reader.line_num} of {path.name}: UTDF header {','.join(fields)!r} needs "
                    "distinct movement columns (e.g. NBL,NBT,NBR) after DATE,TIME,INTID"
                )
            return movements
        if reader.line_num >= _HEADER_SEARCH_LINES:
            break
    raise InputError(
        f"no DATE,TIME,INTID,... header in the first {_HEADER_SEARCH_LINES} lines of {path}; "
        "expected a UTDF-style turning-movement-count file"
    )


def _normalise(
    raw: pd.DataFrame,
    *,
    describe: Callable[[int], str],
    bin: str | pd.Timedelta | None,
    timestamp_hint: str,
    raw_timestamps: pd.Series | None = None,
) -> pd.DataFrame:
    """Coerce the four columns, reject the first bad row, and return the sorted tidy table."""
    missing = [column for column in COLUMNS if column not in raw.columns]
    if missing:
        raise InputError(
            f"count table lacks column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
        )
    timestamp = _parse_timestamps(raw["timestamp"])
    intersection = _as_id(raw["intersection"])
    movement = _as_id(raw["movement"])
    count_text = raw["count"]
    count = pd.to_numeric(count_text, errors="coerce").astype("float64")
    count_blank = count_text.isna() | (
        count_text.astype(str).str.strip().isin(["", "nan", "NaN", "NA"])
    )
    problems = [
        (timestamp.isna(), "missing or unparseable timestamp", timestamp_hint),
        (intersection.isna(), "missing intersection id", "expected a non-empty id"),
        (movement.isna(), "missing movement label", "expected a non-empty label"),
        (count.isna() & count_blank, "missing count", "expected a number of vehicles >= 0"),
        (count.isna() & ~count_blank, "non-numeric count", "expected a number of vehicles >= 0"),
        (np.isinf(count), "infinite count", "expected a finite number of vehicles >= 0"),
        (count < 0, "negative count", "expected a number of vehicles >= 0"),
    ]
    shown = raw.assign(timestamp=raw_timestamps.to_numpy()) if raw_timestamps is not None else raw
    table = pd.DataFrame(
        {
            "timestamp": timestamp.to_numpy(),
            "intersection": intersection.to_numpy(),
            "movement": movement.to_numpy(),
            "count": count.to_numpy(),
        }
    )
    keys = ["timestamp", *SERIES_KEYS]
    complete_key = table[keys].notna().all(axis=1).to_numpy()
    repeated = table.duplicated(keys, keep="first").to_numpy() & complete_key
    # A repeat is reported only if no row before it is bad in another way, so the message always
    # names the first offending row.
    _raise_first_problem(
        problems, shown, describe, before=int(repeated.argmax()) if repeated.any() else None
    )
    if repeated.any():
        position = int(repeated.argmax())
        key = table.iloc[position]
        earlier = int(((table[keys] == key[keys]).all(axis=1)).to_numpy().argmax())
        raise InputError(
            f"{describe(position)}: duplicate count for timestamp={key['timestamp']}, "
            f"intersection={key['intersection']!r}, movement={key['movement']!r} "
            f"(count={shown['count'].iloc[position]!r}; already given at {describe(earlier)}); "
            "expected one count per series and bin"
        )
    table["intersection"] = table["intersection"].astype(str)
    table["movement"] = table["movement"].astype(str)
    step = _check_grid(table, bin=bin)
    ceiling = max_plausible_count(step)
    per = f"a {_minutes(step)}-min bin" if step is not None else "a bin of at most a day"
    implausible = [
        (
            count > ceiling,
            "implausible count",
            f"expected at most {ceiling:,.0f} vehicles in {per} ({MAX_LANES_PER_MOVEMENT} lanes each passing a vehicle "
            f"every {MIN_HEADWAY_S:g} s)",
        )
    ]
    _raise_first_problem(implausible, shown, describe)
    return _sorted(table)


def _parse_timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        try:
            parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"timestamps mix time zones or UTC offsets ({exc}); expected naive local times or "
                "one common offset"
            ) from exc
    if getattr(parsed.dt, "tz", None) is not None:
        # Traffic follows the local clock, so keep local wall time and drop the zone.
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _as_id(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip()
    return text.where(values.notna() & (text != "") & (text.str.lower() != "nan"))


def _raise_first_problem(
    problems: list[tuple[pd.Series | np.ndarray, str, str]],
    shown: pd.DataFrame,
    describe: Callable[[int], str],
    *,
    before: int | None = None,
) -> None:
    """Raise for the first row that has a problem, if it comes before row ``before`` (default: any)."""
    masks = np.column_stack([np.asarray(mask, dtype=bool) for mask, _, _ in problems])
    bad_rows = masks.any(axis=1)
    if not bad_rows.any() or (before is not None and int(bad_rows.argmax()) > before):
        return
    position = int(bad_rows.argmax())
    _, problem, expected = problems[int(masks[position].argmax())]
    values = ", ".join(f"{column}={shown[column].iloc[position]!r}" for column in COLUMNS)
    more = int(bad_rows.sum()) - 1
    suffix = f" ({more} more bad row{'s' if more != 1 else ''} after it)" if more else ""
    raise InputError(f"{describe(position)}: {problem} ({values}); {expected}{suffix}")


def _check_grid(counts: pd.DataFrame, *, bin: str | pd.Timedelta | None) -> pd.Timedelta | None:
    """Return the bin length after checking every timestamp lies on one grid of that spacing.

    With ``bin=None`` the bin is inferred; ``None`` is returned when no series has two rows, as
    there is then nothing to infer from and nothing to contradict.
    """
    if bin is not None:
        step = _as_timedelta(bin, what="bin").value
    if counts.empty:
        return None if bin is None else pd.Timedelta(step)
    ordered = counts.sort_values([*SERIES_KEYS, "timestamp"])
    stamps = ordered["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if bin is None:
        inter = ordered["intersection"].to_numpy()
        move = ordered["movement"].to_numpy()
        same_series = (inter[1:] == inter[:-1]) & (move[1:] == move[:-1])
        steps = (stamps[1:] - stamps[:-1])[same_series]
        if not steps.size:
            return None
        step = int(steps.min())
    off_grid = np.flatnonzero((stamps - stamps.min()) % step != 0)
    if off_grid.size:
        row = ordered.iloc[off_grid[0]]
        raise InputError(
            f"timestamp {row['timestamp']} (intersection={row['intersection']!r}, "
            f"movement={row['movement']!r}) is off the regular {_minutes(pd.Timedelta(step))}-min "
            f"grid that starts at {pd.Timestamp(stamps.min())}; expected every bin to start on it"
        )
    return pd.Timedelta(step)


def _series_codes(counts: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code per row for its (intersection, movement) series, and the series keys."""
    grouped = counts.groupby(SERIES_KEYS, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = grouped.size().index.to_frame(index=False)[SERIES_KEYS]
    return codes, keys


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values([*SERIES_KEYS, "timestamp"], ignore_index=True)


def _as_timedelta(value: str | pd.Timedelta, *, what: str) -> pd.Timedelta:
    try:
        step = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{what}={value!r} is not a duration; expected e.g. '15min' or '1h'"
        ) from exc
    if pd.isna(step) or step <= pd.Timedelta(0):
        raise InputError(f"{what}={value!r} must be a positive duration, e.g. '15min'")
    return step


def _minutes(step: pd.Timedelta) -> str:
    return f"{step / pd.Timedelta(minutes=1):g}"
