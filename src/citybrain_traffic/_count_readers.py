"""Read count files (long CSV, .csv.gz, Parquet; UTDF turning-movement CSV) into tidy tables."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from citybrain_traffic._count_checks import COLUMNS, ISO_HINT, infer_bin, normalise
from citybrain_traffic.errors import InputError

if TYPE_CHECKING:
    # The type csv.reader() returns; the csv module does not export it.
    from _csv import Reader

_UTDF_ID_COLUMNS = ("DATE", "TIME", "INTID")
_UTDF_MISSING_MOVEMENT = "*"
# Vendor files put a title block of a few lines above the header; look a little further than
# the usual two lines before deciding a file is not UTDF.
_HEADER_SEARCH_LINES = 10
_UTDF_HINT = "expected DATE as MM/DD/YYYY and TIME as HHMM from 0000 to 2400"


def sniff_format(path: Path) -> Literal["long", "utdf"]:
    """Tell a long count CSV from a UTDF one by its first lines; InputError when neither."""
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


def read_long_csv(path: Path) -> pd.DataFrame:
    """Read a long count CSV (optionally gzipped); errors name the file line."""
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
    return normalise(
        raw,
        describe=lambda i: f"line {lines[i]} of {path.name}",
        bin=None,
        timestamp_hint=ISO_HINT,
    )


def read_long_parquet(path: Path) -> pd.DataFrame:
    """Read a long count table from Parquet; errors name the row (1-based)."""
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise InputError(f"cannot read Parquet counts file {path}: {exc}") from exc
    raw.columns = [str(column).strip().lower() for column in raw.columns]
    _require_columns(raw, path)
    return normalise(
        raw.reset_index(drop=True),
        describe=lambda i: f"row {i + 1} of {path.name}",
        bin=None,
        timestamp_hint=ISO_HINT,
    )


def _require_columns(raw: pd.DataFrame, path: Path) -> None:
    missing = [column for column in COLUMNS if column not in raw.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; expected a header with "
            f"{','.join(COLUMNS)} (found {','.join(map(str, raw.columns))})"
        )


def read_utdf(path: Path) -> pd.DataFrame:
    """Read a UTDF turning-movement CSV; an end-labelled file is shifted to bin starts."""
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
    counts = normalise(
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


def _find_utdf_header(reader: Reader, path: Path) -> list[str]:
    for fields in reader:
        names = [field.strip().upper() for field in fields]
        if tuple(names[:3]) == _UTDF_ID_COLUMNS:
            movements = [name for name in names[3:] if name]
            if not movements or len(set(movements)) != len(movements):
                raise InputError(
                    f"line {reader.line_num} of {path.name}: UTDF header {','.join(fields)!r} "
                    "needs distinct movement columns (e.g. NBL,NBT,NBR) after DATE,TIME,INTID"
                )
            return movements
        if reader.line_num >= _HEADER_SEARCH_LINES:
            break
    raise InputError(
        f"no DATE,TIME,INTID,... header in the first {_HEADER_SEARCH_LINES} lines of {path}; "
        "expected a UTDF-style turning-movement-count file"
    )
