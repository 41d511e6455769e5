"""Movement names from geometry on real netconvert junctions: approach by direction of travel,
turn by signed angle, crossings by side, unique names on skewed junctions and bundled scenarios."""

from __future__ import annotations

import pytest

from citybrain_traffic.network import compass_labels, name_movements, read_network, turn_class
from citybrain_traffic.scenario import load_scenario

from junctions import TURNS, junction, standard_junctions

#: The approach that comes in from each leg (direction of travel).
BOUND = {"N": "SB", "E": "WB", "S": "NB", "W": "EB"}


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("junctions")
    skew60 = {"N": (0, 1), "E": (60, 1), "S": (180, 1), "W": (240, 1)}
    return {
        **standard_junctions(folder, skew30_lanes=(1, 1)),
        "skew60": junction(folder, "skew60", skew60, options=("--no-turnarounds",)),
    }


def _names(network) -> dict[str, str]:
    return name_movements(network)["C"].by_key


def _expected(legs: str, *, uturn: bool = False) -> dict[str, str]:
    out = {}
    for leg in legs:
        for turn, to in zip("RTL", TURNS[leg]):
            if to in legs:
                out[f"{leg}C>C{to}"] = BOUND[leg] + turn
        if uturn:
            out[f"{leg}C>C{leg}"] = BOUND[leg] + "U"
    return out


def test_cross_names_every_movement_and_crossing(nets):
    names = _names(nets["cross"])
    crossings = {k: v for k, v in names.items() if k.startswith(":")}
    assert {k: v for k, v in names.items() if not k.startswith(":")} == _expected("NESW")
    assert sorted(crossings.values()) == ["PED-E", "PED-N", "PED-S", "PED-W"]
    # netconvert lists a crossing's crossed edges: the one over the north leg is PED-N.
    net_text = nets["cross"].path.read_text()
    for crossing, name in crossings.items():
        crossed = net_text.split(f'<edge id="{crossing}" function="crossing" crossingEdges="')[1]
        assert name[-1] in crossed.split('"')[0].replace("C", "")


def test_tee_has_no_through_on_its_stem(nets):
    assert _names(nets["tee"]) == _expected("ESW")


@pytest.mark.parametrize("name", ["skew30", "skew60"])
def test_skewed_junctions_get_four_distinct_approaches(nets, name):
    names = _names(nets[name])
    assert names == _expected("NESW")  # legs N, E, S, W in clockwise order, whatever the skew
    movements = name_movements(nets[name])["C"].movements
    assert all(abs(m.angle_deg) < 45 for m in movements if m.turn == "T")
    assert all(45 < m.angle_deg < 135 for m in movements if m.turn == "L")


def test_u_turns_are_named(nets):
    assert _names(nets["uturn"]) == _expected("NESW", uturn=True)
    movements = name_movements(nets["uturn"])["C"].movements
    assert all(abs(m.angle_deg) >= 135 for m in movements if m.turn == "U")


def test_turn_classes_meet_half_way():
    assert [turn_class(a) for a in (0, 44.9, 45, 46, 134, 135, -100, -179, 180)] == [
        "T",
        "T",
        "T",
        "L",
        "L",
        "U",
        "R",
        "U",
        "U",
    ]


def test_compass_labels_share_or_escalate():
    # Two edges travelling almost north are one approach (a slip lane), not NB and EB.
    assert compass_labels({"a": 0.0, "b": 10.0, "c": 180.0}) == {"a": "NB", "b": "NB", "c": "SB"}
    # Two roads crossing at 60 degrees: the one running 60-240 is EB/WB, not a second NB/SB.
    assert compass_labels({"a": 0.0, "b": 60.0, "c": 180.0, "d": 240.0}) == {
        "a": "NB",
        "b": "EB",
        "c": "SB",
        "d": "WB",
    }
    # Five legs need the 8-point compass.
    five = compass_labels({"a": 0.0, "b": 72.0, "c": 144.0, "d": 216.0, "e": 288.0})
    assert len(set(five.values())) == 5 and {"NE", "SE", "SW", "NW"} & set(five.values())


@pytest.mark.parametrize("scenario", ["single", "corridor", "grid"])
def test_bundled_scenarios_name_every_link_once(scenario):
    network = read_network(load_scenario(scenario).net_file)
    named = name_movements(network)
    assert set(named) == set(network.intersections)
    for tls, intersection in network.intersections.items():
        movements = named[tls].movements
        names = [m.name for m in movements]
        assert len(names) == len(set(names)), (tls, names)
        assert {link.movement for link in intersection.links} == {m.key for m in movements}
        covered = {k for m in movements for k in m.links}
        assert covered == {link.index for link in intersection.links} | intersection.crossings
