"""Per-run copies of the user's additional files, their detector and edgeData outputs moved.

Each run's outputs land in the run's own folder.
"""

from __future__ import annotations

import gzip
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Elements of a SUMO additional file that write an output file, and the attribute naming it.
OUTPUT_ATTRIBUTES = {
    "e1Detector": "file",
    "inductionLoop": "file",
    "instantInductionLoop": "file",
    "e2Detector": "file",
    "laneAreaDetector": "file",
    "e3Detector": "file",
    "entryExitDetector": "file",
    "edgeData": "file",
    "laneData": "file",
    "routeProbe": "file",
    "vTypeProbe": "file",
    "calibrator": "output",
    "timedEvent": "dest",
}

#: Attributes naming input files. SUMO reads a relative name from the additional file's folder,
#: so in a copy elsewhere it is written out in full.
INPUT_ATTRIBUTES = {
    "include": "href",
    "variableSpeedSign": "file",
    "calibrator": "file",
    "poly": "imgFile",
    "poi": "imgFile",
}

#: Outputs that are no file of the user's folder: SUMO's null device, or a socket (host:port).
_NOT_A_FILE = re.compile(r"(?i)^(nul|/dev/null|[\w.-]+:\d+)$")


def redirect_outputs(
    text: str | bytes, *, source_dir: Path, folder: Path, targets: Mapping[Path, Path] | None = None
) -> tuple[str | None, dict[Path, Path]]:
    """Return an additional file's text with every output file it declares moved into ``folder``.

    Parameters
    ----------
    text
        The additional file as it is in ``source_dir`` (an absolute folder).
    folder
        Where its outputs go: each under its own file name, so that several detectors writing
        one file (SUMO allows it) still share it, and two files of the same name from
        different folders get different names.
    targets
        Outputs already moved (original path -> new path) by other files of the same run.

    Returns
    -------
    The new text, with relative input file names written in full (the copy lives elsewhere),
    or None when the file declares no output; and ``targets`` with this file's outputs added.
    Outputs of files it includes (``<include href>``) stay where they are.
    """
    root = ET.fromstring(text)
    targets = dict(targets or {})
    moved = False
    for element in root.iter():
        output = OUTPUT_ATTRIBUTES.get(element.tag)
        value = element.get(output) if output else None
        if output and value and not _NOT_A_FILE.match(value):
            original = Path(os.path.normpath(source_dir / value))
            if original not in targets:
                targets[original] = folder / _unused_name(
                    original.name, {t.name for t in targets.values()}
                )
            element.set(output, str(targets[original]))
            moved = True
        source = INPUT_ATTRIBUTES.get(element.tag)
        name = element.get(source) if source else None
        if source and name and not Path(name).is_absolute():
            element.set(source, os.path.normpath(source_dir / name))
    return (ET.tostring(root, encoding="unicode") if moved else None), targets


def run_additionals(paths: Sequence[Path], folder: Path) -> list[Path]:
    """Return the user's additional files as a run in ``folder`` loads them.

    Each file that declares an output is replaced by a copy in ``folder/user-additionals`` whose
    outputs land in ``folder/user-outputs`` (parallel runs would otherwise all write the one file
    beside the user's config, and only the last run's data would survive); the others stay as
    they are.
    """
    loaded: list[Path] = []
    targets: dict[Path, Path] = {}
    for path in paths:
        path = Path(path).resolve()
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text, targets = redirect_outputs(
            raw, source_dir=path.parent, folder=folder / "user-outputs", targets=targets
        )
        if text is None:
            loaded.append(path)
            continue
        copies = folder / "user-additionals"
        copies.mkdir(parents=True, exist_ok=True)
        copy = copies / _unused_name(path.name.removesuffix(".gz"), {p.name for p in loaded})
        copy.write_text(text)
        loaded.append(copy)
    if targets:
        (folder / "user-outputs").mkdir(parents=True, exist_ok=True)
    return loaded


def _unused_name(name: str, taken: set[str]) -> str:
    """``name``, or ``2-name``, ``3-name``... the first not in ``taken``."""
    k, candidate = 1, name
    while candidate in taken:
        k += 1
        candidate = f"{k}-{name}"
    return candidate
