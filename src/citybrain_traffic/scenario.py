"""Scenarios: a SUMO config or a net with routes, its time window; the bundled scenarios by name."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import InputError

DEFAULT_SCENARIO = "corridor"


@dataclass(frozen=True)
class Scenario:
    """What to simulate: files and the evaluation window (s of simulation time).

    ``config_file`` is the user's ``.sumocfg`` when there is one: SUMO is started with it, so every
    option in it applies, and the harness only overrides what it must (window, seed, outputs).
    """

    name: str
    net_file: Path
    route_files: tuple[Path, ...]
    begin: float
    end: float
    additional_files: tuple[Path, ...] = ()
    config_file: Path | None = None
    description: str = ""
    bundled: bool = field(default=False, compare=False)
    #: The config's time-to-teleport (s), when it sets one; runs use their own (``RunSpec``).
    time_to_teleport: float | None = None

    def sumo_args(self, *, net_file: Path | None = None) -> list[str]:
        """Return the SUMO options that load this scenario (without outputs, seed or window).

        With ``net_file``, that network instead of the scenario's.
        """
        if self.config_file is not None:
            return [
                "-c",
                str(self.config_file),
                *(["--net-file", str(net_file.resolve())] if net_file else []),
            ]
        return ["-n", str(net_file or self.net_file), "-r", ",".join(map(str, self.route_files))]

    @property
    def duration_s(self) -> float:
        """The length of the evaluation window (s)."""
        return self.end - self.begin


def scenarios_dir() -> Path:
    """Return the folder of the bundled scenarios: in the installed package, or the checkout's."""
    packaged = Path(__file__).parent / "_scenarios"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "scenarios" / "sumo"


def bundled_scenarios() -> dict[str, str]:
    """Return the bundled scenario names with their one-line descriptions."""
    root = scenarios_dir()
    found = {}
    for meta in sorted(root.glob("*/scenario.json")):
        found[meta.parent.name] = json.loads(meta.read_text()).get("description", "")
    return found


def load_scenario(
    spec: str | None = None,
    *,
    net: str | Path | None = None,
    routes: str | None = None,
    begin: float | None = None,
    end: float | None = None,
) -> Scenario:
    """Resolve a bundled scenario name, a ``.sumocfg`` path, or a net with route files.

    Parameters
    ----------
    spec
        Bundled scenario name or path to a ``.sumocfg`` (or a folder holding exactly one).
    net, routes
        A ``.net.xml`` and comma-separated route files, instead of ``spec``.
    begin, end
        Evaluation window in s of simulation time; default: the config's, else 0 to 3600.

    Raises
    ------
    InputError
        For an unknown name, a missing or malformed file, or an empty window.
    """
    if net is not None or routes is not None:
        if spec is not None:
            raise InputError(
                "give either a scenario (name or .sumocfg) or --net/--routes, not both"
            )
        if net is None or not routes:
            raise InputError("--net and --routes go together: give both")
        route_files = tuple(
            _existing(Path(r.strip()), "route file") for r in routes.split(",") if r.strip()
        )
        net_path = _existing(Path(net), "network file")
        scenario = Scenario(
            name=net_path.name.removesuffix(".gz").removesuffix(".xml").removesuffix(".net"),
            net_file=net_path,
            route_files=route_files,
            begin=0.0,
            end=3600.0,
        )
    else:
        scenario = _from_spec(spec or DEFAULT_SCENARIO)
    for path in scenario.route_files + scenario.additional_files:
        _check_well_formed(path)
    scenario = replace(
        scenario,
        begin=scenario.begin if begin is None else float(begin),
        end=scenario.end if end is None else float(end),
    )
    if not scenario.end > scenario.begin:
        raise InputError(
            f"empty time window: begin {scenario.begin:g} s is not before end {scenario.end:g} s"
        )
    return scenario


def _from_spec(spec: str) -> Scenario:
    path = Path(spec)
    if path.is_dir():
        configs = sorted(path.glob("*.sumocfg"))
        if len(configs) != 1:
            raise InputError(f"folder {path} must hold exactly one .sumocfg, found {len(configs)}")
        return read_sumocfg(configs[0])
    if path.suffix == ".sumocfg" or path.exists():
        return read_sumocfg(_existing(path, "SUMO config"))
    bundled = scenarios_dir() / spec
    configs = sorted(bundled.glob("*.sumocfg")) if bundled.is_dir() else []
    if configs:
        scenario = read_sumocfg(configs[0])
        description = bundled_scenarios().get(spec, "")
        return replace(scenario, name=spec, description=description, bundled=True)
    names = ", ".join(bundled_scenarios()) or "(none installed)"
    raise InputError(f"unknown scenario {spec!r}: expected one of {names}, or a path to a .sumocfg")


#: The short synonyms SUMO accepts for the options read here, as written in config files.
_OPTION_NAMES = {
    "n": "net-file",
    "net": "net-file",
    "r": "route-files",
    "routes": "route-files",
    "a": "additional-files",
    "additional": "additional-files",
    "b": "begin",
    "e": "end",
}


def read_sumocfg(path: Path) -> Scenario:
    """Read the files and time window of a SUMO configuration file.

    As SUMO does: any root element name (SUMO 1.28 itself writes ``<sumoConfiguration>``),
    options inside sections or directly under the root, the options' short synonyms (``net``,
    ``routes``, ``additional``, ``b``, ``e``), and times in s or as ``h:m:s`` / ``d:h:m:s``.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{path} is not well-formed XML: {exc}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    values: dict[str, str] = {}
    for option in root.iter():
        if "value" in option.attrib:
            values[_OPTION_NAMES.get(option.tag, option.tag)] = option.attrib["value"]
    if not values:
        raise InputError(
            f"{path} is not a SUMO config: it sets no option "
            "(<root><input><net-file value=.../>...)"
        )
    base = path.parent

    def files(key: str) -> tuple[Path, ...]:
        raw = values.get(key, "")
        return tuple(base / item for item in raw.replace(",", " ").split())

    nets = files("net-file")
    if len(nets) != 1:
        raise InputError(f"{path} names no net-file: a SUMO network is needed")
    routes = files("route-files")
    if not routes:
        raise InputError(f"{path} names no route-files: there is no demand to simulate")
    for file in (*nets, *routes, *files("additional-files")):
        _existing(file, f"file named in {path.name}")
    return Scenario(
        name=path.name.removesuffix(".sumocfg"),
        net_file=nets[0],
        route_files=routes,
        additional_files=files("additional-files"),
        begin=_time_value(values.get("begin", "0"), path, "begin"),
        end=_time_value(values.get("end", "3600"), path, "end"),
        config_file=path,
        time_to_teleport=_signed_time(values["time-to-teleport"], path, "time-to-teleport")
        if "time-to-teleport" in values
        else None,
    )


def _signed_time(raw: str, path: Path, key: str) -> float:
    """Read a SUMO time option that may be negative (time-to-teleport: negative disables it)."""
    text = raw.strip()
    value = _time_value(text.removeprefix("-"), path, key)
    return -value if text.startswith("-") else value


def _time_value(raw: str, path: Path, key: str) -> float:
    """Read a SUMO time option: seconds, or ``h:m:s`` / ``d:h:m:s`` (SUMO's clock form)."""
    try:
        value = float(raw)
    except ValueError:
        parts = raw.split(":")
        try:
            if len(parts) not in (3, 4):
                raise ValueError(raw)
            value = sum(
                float(part) * unit for part, unit in zip(reversed(parts), (1, 60, 3600, 86400))
            )
        except ValueError:
            raise InputError(
                f"{path}: {key} value {raw!r} is not a time in seconds or h:m:s"
            ) from None
    if not math.isfinite(value):
        raise InputError(f"{path}: {key} value {raw!r} is not a finite time")
    if value < 0:
        # SUMO's "end -1" means "until all vehicles have left": bound it so a run terminates.
        raise InputError(f"{path}: {key} is {raw}; give --begin/--end for a bounded window")
    return value


def waut_signals(scenario: Scenario) -> dict[str, Path]:
    """Return the signals a WAUT in the scenario's additional files switches between programs.

    Each with the file that does it.
    """
    found: dict[str, Path] = {}
    for path in scenario.additional_files:
        for _, elem in ET.iterparse(path):
            junction = elem.get("junctionID")
            if elem.tag == "wautJunction" and junction:
                found[junction] = path
            elem.clear()
    return found


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    return path


def _check_well_formed(path: Path) -> None:
    """Parse an XML input once so a malformed file is reported before any run starts."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for _ in ET.iterparse(fh):
                pass
    except ET.ParseError as exc:
        raise InputError(f"{path} is not well-formed XML: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
