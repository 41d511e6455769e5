"""The metadata file of a saved forecast model, readable without loading LightGBM.

The adaptive controller checks a ``--model`` folder in the command's own process, which forks the
simulation workers and so must not load LightGBM (its OpenMP runtime); the forecasters read the
same file through :func:`read_metadata` when they load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from citybrain_traffic.errors import InputError

MODEL_FORMAT = "citybrain-traffic-forecast"
MODEL_FORMAT_VERSION = 1
METADATA_FILE = "model.json"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read the metadata of the model folder ``path``.

    Raises
    ------
    InputError
        When ``path`` is not a readable model folder of this format version.
    """
    path = Path(path)
    file = path / METADATA_FILE
    if not file.is_file():
        raise InputError(
            f"{path} is not a forecast model folder (no {METADATA_FILE}); expected a folder "
            "written by `train`"
        )
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
        raise InputError(
            f"{file} is not a citybrain-traffic forecast model (format {MODEL_FORMAT!r} expected)"
        )
    if metadata.get("format_version") != MODEL_FORMAT_VERSION:
        raise InputError(
            f"{file} has model format version {metadata.get('format_version')!r}; this version "
            f"reads {MODEL_FORMAT_VERSION}; retrain the model"
        )
    return metadata
