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

The file readers live in ``_count_readers`` and the table checks in ``_count_checks``; import
from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from citybrain_traffic._count_checks import (
    COLUMNS,
    ISO_HINT,
    MAX_FLOW_VEH_H,
    MAX_LANES_PER_MOVEMENT,
    MIN_HEADWAY_S,
    SERIES_KEYS,
    as_timedelta,
    format_minutes,
    infer_bin,
    max_plausible_count,
    normalise,
    sort_counts,
)
from citybrain_traffic._count_readers import (
    read_long_csv,
    read_long_parquet,
    read_utdf,
    sniff_format,
)
from citybrain_traffic.errors import InputError

__all__ = [
    "COLUMNS",
    "MAX_FLOW_VEH_H",
    "MAX_LANES_PER_MOVEMENT",
    "MIN_HEADWAY_S",
    "SERIES_KEYS",
    "CountsFormat",
    "aggregate_counts",
    "find_gaps",
    "infer_bin",
    "max_plausible_count",
    "read_counts",
    "validate_counts",
]

CountsFormat = Literal["auto", "long", "utdf"]


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
        format = "long" if is_parquet else sniff_format(path)
    if format == "utdf":
        if is_parquet:
            raise InputError(f"{path} is a Parquet file; a UTDF count file is a CSV text file")
        counts = read_utdf(path)
    elif is_parquet:
        counts = read_long_parquet(path)
    else:
        counts = read_long_csv(path)
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
    return normalise(
        counts, describe=lambda i: f"row {index[i]!r}", bin=bin, timestamp_hint=ISO_HINT
    )


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
    target = as_timedelta(bin, what="bin")
    native = infer_bin(counts)
    if target == native:
        return counts
    if target < native or target % native != pd.Timedelta(0):
        raise InputError(
            f"cannot aggregate {format_minutes(native)}-min counts into bin={bin!r}; "
            f"expected a whole multiple of {format_minutes(native)} min"
        )
    coarse = counts.assign(timestamp=counts["timestamp"].dt.floor(target))
    grouped = coarse.groupby(["timestamp", *SERIES_KEYS], sort=False)["count"].agg(["sum", "size"])
    complete = grouped[grouped["size"] == target // native]
    out = complete["sum"].rename("count").reset_index()
    return sort_counts(out[list(COLUMNS)])


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
    step = infer_bin(counts) if bin is None else as_timedelta(bin, what="bin")
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
    stamps: pd.Series[pd.Timestamp] = counts["timestamp"]
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


def _series_codes(counts: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code per row for its (intersection, movement) series, and the series keys."""
    grouped = counts.groupby(SERIES_KEYS, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = grouped.size().index.to_frame(index=False)[SERIES_KEYS]
    return codes, keys
