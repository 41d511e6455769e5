"""The JSON plan file: plans as strict JSON objects, written and read."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..errors import InputError, UnsafePlanError
from ..network import Phase
from .plan import TimingPlan
from .units import is_finite

#: Version of the JSON plan format.
PLAN_FORMAT_VERSION = 1


def write_json(
    path: Path,
    plans: Sequence[TimingPlan],
    *,
    phase_labels: Mapping[str, Mapping[int, Mapping[str, Any]]] | None = None,
) -> Path:
    """Write plans as JSON: ``{"format": "citybrain-traffic/plans", "version": 1, "plans": [...]}``.

    ``phase_labels`` adds fields to phases, per signal and program index (the optimizer's
    ``nema``, ``movements`` and ``name`` of each green); readers ignore them.

    The file is strict JSON: a plan field that is not a finite number is refused
    (``UnsafePlanError``), and a non-finite number in the provenance (audit data, such as the
    objective of a solve that found none) is written as ``null``. Times are in s.
    """
    bad = [
        f"{p.tls_id}: {name} {value!r}"
        for p in plans
        for name, value in [("cycle_s", p.cycle_s), ("offset_s", p.offset)]
        + [
            (f"phase {i} {n}", v)
            for i, ph in enumerate(p.phases)
            for n, v in (("duration_s", ph.duration), ("min_s", ph.min_dur), ("max_s", ph.max_dur))
        ]
        if not is_finite(value)
    ]
    if bad:
        raise UnsafePlanError(
            "not written, a plan carries a number that is not finite: " + "; ".join(bad)
        )
    doc = {
        "format": "citybrain-traffic/plans",
        "version": PLAN_FORMAT_VERSION,
        "plans": [
            _labelled(plan_to_dict(p), (phase_labels or {}).get(p.tls_id, {}))
            | {"provenance": _finite_or_null(p.provenance)}
            for p in plans
        ],
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False, default=plans_json_default) + "\n")
    return path


def _labelled(doc: dict, labels: Mapping[int, Mapping[str, Any]]) -> dict:
    for k, phase in enumerate(doc["phases"]):
        phase.update(labels.get(k, {}))
    return doc


def plan_to_dict(p: TimingPlan) -> dict:
    """Return one plan as the JSON object ``write_json`` stores (times in s).

    The object is JSON-ready except for numpy scalars in the provenance;
    ``json.dumps(..., default=plans_json_default)`` handles those.
    """
    return {
        "tls_id": p.tls_id,
        "program_id": p.program_id,
        "kind": p.kind,
        "cycle_s": p.cycle_s,
        "offset_s": p.offset,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "phases": [
            {
                "state": ph.state,
                "duration_s": ph.duration,
                "min_s": ph.min_dur,
                "max_s": ph.max_dur,
                "kind": ph.kind,
            }
            for ph in p.phases
        ],
        "provenance": p.provenance,
    }


def plan_from_dict(doc: dict) -> TimingPlan:
    """Build a plan from a ``plan_to_dict`` object; ``min_s``/``max_s`` default to the duration.

    Raises
    ------
    InputError
        When a field is missing, or a number is not a finite number (NaN, infinity, text).
    """
    if not isinstance(doc, dict):
        raise InputError(f"a plan must be a JSON object, got {type(doc).__name__}")
    tls_id = doc.get("tls_id")
    if not isinstance(tls_id, str) or not tls_id:
        raise InputError(f"a plan has no tls_id (got {tls_id!r})")
    phases = doc.get("phases")
    if not isinstance(phases, list) or not all(isinstance(ph, dict) for ph in phases):
        raise InputError(f"{tls_id}: phases must be a list of objects")
    out = []
    for k, ph in enumerate(phases):
        where = f"{tls_id} phase {k}"
        if not isinstance(ph.get("state"), str):
            raise InputError(f"{where}: state {ph.get('state')!r} is not a signal state string")
        duration = _json_seconds(ph, "duration_s", where)
        out.append(
            Phase(
                state=ph["state"],
                duration=duration,
                min_dur=_json_seconds(ph, "min_s", where, duration),
                max_dur=_json_seconds(ph, "max_s", where, duration),
                clearance=ph.get("kind") == "clearance",
            )
        )
    for name in ("valid_from", "valid_until"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            raise InputError(f"{tls_id}: {name} {doc[name]!r} is not ISO 8601 text")
    provenance = doc.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise InputError(f"{tls_id}: provenance must be a JSON object")
    return TimingPlan(
        tls_id=tls_id,
        program_id=str(doc.get("program_id", "ctraffic")),
        phases=tuple(out),
        offset=_json_seconds(doc, "offset_s", tls_id, 0.0),
        kind=str(doc.get("kind", "static")),
        cycle_s=_json_seconds(doc, "cycle_s", tls_id),
        valid_from=doc.get("valid_from"),
        valid_until=doc.get("valid_until"),
        provenance=dict(provenance),
    )


def _json_seconds(doc: dict, name: str, where: str, default: float | None = None) -> float:
    value = doc.get(name)
    if value is None and default is not None:
        return default
    if not is_finite(value):
        raise InputError(f"{where}: {name} {value!r} is not a finite number of seconds")
    return float(value)


def read_json(path: Path) -> list[TimingPlan]:
    """Read plans written by ``write_json``; a malformed file is an ``InputError`` naming it.

    Strict JSON: ``NaN`` and ``Infinity`` are refused, as JSON itself has no such numbers.
    """
    try:
        doc = json.loads(Path(path).read_text(), parse_constant=_refuse_constant)
        if not isinstance(doc, dict) or doc.get("format") != "citybrain-traffic/plans":
            raise InputError(f"{path} is not a citybrain-traffic plan file (no format marker)")
        if not isinstance(doc.get("plans"), list):
            raise InputError(f"{path}: 'plans' must be a list of plans")
        return [plan_from_dict(p) for p in doc["plans"]]
    except InputError as exc:
        if str(path) in str(exc):
            raise
        raise InputError(f"cannot read plans from {path}: {exc}") from exc
    except RecursionError:
        raise InputError(
            f"cannot read plans from {path}: nested too deeply to be a plan file"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read plans from {path}: {type(exc).__name__}: {exc}") from exc


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(
        f"{name} is not a finite number (a plan's numbers must be, and JSON has no {name})"
    )


def _finite_or_null(value: Any) -> Any:
    """Return ``value`` (JSON-like) with non-finite numbers as None, numpy scalars as Python's."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plans_json_default(value: Any) -> Any:
    """Return a JSON-ready form of what ``json.dumps`` cannot encode (its ``default`` hook).

    A path becomes its text and a numpy scalar its Python number.

    Raises
    ------
    TypeError
        For anything else, as ``json.dumps`` expects.
    """
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
