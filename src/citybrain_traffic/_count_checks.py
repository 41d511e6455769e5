"""Check tidy count tables: coerce the columns, name the first bad row, find the bin grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from citybrain_traffic.errors import InputError

COLUMNS = ("timestamp", "intersection", "movement", "count")
SERIES_KEYS = ["intersection", "movement"]
ISO_HINT = "expected ISO 8601 like 2025-11-16 08:15:00"

#: The most vehicles a movement can carry, veh/h: ``MAX_LANES_PER_MOVEMENT`` lanes each passing a
#: vehicle every ``MIN_HEADWAY_S``. Eight lanes are more than the widest approach counted as one
#: movement; a 1-s headway (3,600 veh/h/lane) is about twice a signalized lane's saturation
#: flow (~1,800-1,900) and above any lane's measured capacity. A count beyond it is a data
#: error (a unit slip, a counter's overflow), not traffic; LightGBM aborts the whole process on
#: counts near 1e15 instead of raising.
MAX_LANES_PER_MOVEMENT = 8
MIN_HEADWAY_S = 1.0
MAX_FLOW_VEH_H = MAX_LANES_PER_MOVEMENT * 3600.0 / MIN_HEADWAY_S

# A row mask, the problem's name and what was expected instead.
_Problem = tuple[pd.Series | np.ndarray, str, str]


def max_plausible_count(bin: pd.Timedelta | None) -> float:
    """Return the most vehicles a movement can carry in one bin: ``MAX_FLOW_VEH_H`` x its length.

    ``None`` (a table whose bin cannot be inferred) takes a day, the longest bin a table has.
    """
    length = pd.Timedelta(days=1) if bin is None else bin
    return MAX_FLOW_VEH_H * (length / pd.Timedelta(hours=1))


def infer_bin(counts: pd.DataFrame) -> pd.Timedelta:
    """Infer the bin length of a tidy count table from its timestamps.

    Parameters
    ----------
    counts
        A tidy count table (as returned by :func:`~citybrain_traffic.counts.read_counts` or
        :func:`~citybrain_traffic.counts.validate_counts`).

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


def normalise(
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
    problems: list[_Problem] = [
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
    per = f"a {format_minutes(step)}-min bin" if step is not None else "a bin of at most a day"
    implausible: list[_Problem] = [
        (
            count > ceiling,
            "implausible count",
            f"expected at most {ceiling:,.0f} vehicles in {per} ({MAX_LANES_PER_MOVEMENT} lanes "
            f"each passing a vehicle every {MIN_HEADWAY_S:g} s)",
        )
    ]
    _raise_first_problem(implausible, shown, describe)
    return sort_counts(table)


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
    problems: Sequence[_Problem],
    shown: pd.DataFrame,
    describe: Callable[[int], str],
    *,
    before: int | None = None,
) -> None:
    """Raise for the first row that has a problem, if it comes before row ``before`` (or any)."""
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
        step = as_timedelta(bin, what="bin").value
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
            f"movement={row['movement']!r}) is off the regular "
            f"{format_minutes(pd.Timedelta(step))}-min grid that starts at "
            f"{pd.Timestamp(stamps.min())}; expected every bin to start on it"
        )
    return pd.Timedelta(step)


def sort_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` sorted by intersection, movement and timestamp, with a fresh index."""
    return table.sort_values([*SERIES_KEYS, "timestamp"], ignore_index=True)


def as_timedelta(value: str | pd.Timedelta, *, what: str) -> pd.Timedelta:
    """Parse a positive duration; InputError naming the argument ``what`` otherwise."""
    try:
        step = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{what}={value!r} is not a duration; expected e.g. '15min' or '1h'"
        ) from exc
    if pd.isna(step) or step <= pd.Timedelta(0):
        raise InputError(f"{what}={value!r} must be a positive duration, e.g. '15min'")
    return step


def format_minutes(step: pd.Timedelta) -> str:
    """Format a bin length in minutes for a message, e.g. ``"15"``."""
    return f"{step / pd.Timedelta(minutes=1):g}"
