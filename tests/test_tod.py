"""``ctraffic optimize --counts FILE --tod``: periods from a day of counts with two peaks, a plan
per period, the cycle-change rule, the schedule and NTCIP tables; clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.flows import flows_from_routes, route_demand
from citybrain_traffic.network import read_network
from citybrain_traffic.optimize.segments import knee, period_count, segment_day
from citybrain_traffic.optimize.tod import MAX_CYCLE_CHANGE, day_profiles
from citybrain_traffic.plans import read_plans, validate_all
from citybrain_traffic.network import fit_network
from citybrain_traffic.plans.ntcip import day_mask
from citybrain_traffic.scenario import load_scenario

from conftest import run_cli
from test_cli_errors import assert_clean_error

TUESDAY = pd.Timestamp("2026-01-06")


def double_peak(hour: np.ndarray) -> np.ndarray:
    """Share of the peak flow by hour of day: a night floor, peaks at 08:00 and 17:30."""
    share = (
        0.08
        + 0.9 * np.exp(-(((hour - 8) / 1.2) ** 2))
        + 0.85 * np.exp(-(((hour - 17.5) / 1.5) ** 2))
        + 0.35 * ((hour > 6) & (hour < 21))
    )
    return share / share.max()


def counts_of_days(flows: pd.DataFrame, days: dict[pd.Timestamp, float]) -> pd.DataFrame:
    """15-min counts of every movement on ``days`` (date -> scale): the double peak x flows."""
    hours = np.arange(96) / 4
    tables = [
        flows.assign(
            timestamp=day + pd.Timedelta(minutes=15 * k),
            count=np.round(flows["flow_veh_h"] / 4 * share * scale),
        )
        for day, scale in days.items()
        for k, share in enumerate(double_peak(hours))
    ]
    return pd.concat(tables, ignore_index=True)[["timestamp", "intersection", "movement", "count"]]


@pytest.fixture(scope="session")
def corridor_flows(tmp_path_factory):
    """Flows (veh/h) of every corridor movement in its peak quarter-hour, from its routes."""
    sc = load_scenario("corridor")
    network = read_network(sc.net_file)
    routed = route_demand(sc, tmp_path_factory.mktemp("routes"))
    return flows_from_routes(routed, network, begin=3600, end=4500), network


@pytest.fixture(scope="module")
def one_day(corridor_flows, tmp_path_factory):
    flows, network = corridor_flows
    folder = tmp_path_factory.mktemp("tod")
    path = folder / "counts.csv"
    counts_of_days(flows, {TUESDAY: 1.0}).to_csv(path, index=False)
    out = folder / "out"
    proc = run_cli("optimize", "corridor", "--counts", path, "--tod", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out, network, pd.read_csv(out / "tod_schedule.csv")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _covers(row, hhmm: str) -> bool:
    start, end, t = _minutes(row["start"]), _minutes(row["end"]), _minutes(hhmm)
    return (t - start) % 1440 < ((end - start) % 1440 or 1440)


def test_two_peaks_give_am_pm_and_off_peak_plans(one_day):
    proc, _, network, schedule = one_day
    periods = schedule.drop_duplicates("program_id")
    named = {row["period"]: row for _, row in periods.iterrows()}
    assert {"AM peak", "PM peak"} <= set(named), proc.stdout
    assert _covers(named["AM peak"], "08:00") and _covers(named["PM peak"], "17:30")
    night = next(row for _, row in periods.iterrows() if _covers(row, "03:00"))
    assert night["period"] not in ("AM peak", "PM peak")
    per_period = schedule.groupby("program_id")[["cycle_s", "design_flow_veh_h"]].max()
    for peak in ("AM peak", "PM peak"):
        assert (
            per_period.loc[named[peak]["program_id"], "design_flow_veh_h"]
            > per_period.loc[night["program_id"], "design_flow_veh_h"]
        )
        assert (
            per_period.loc[named[peak]["program_id"], "cycle_s"]
            > per_period.loc[night["program_id"], "cycle_s"]
        )
    # The peaks are designed for their own peak bin.
    assert set(schedule[schedule["period"] == "AM peak"]["design_bin"]) == {"08:00"}
    assert set(schedule[schedule["period"] == "PM peak"]["design_bin"]) == {"17:30"}
    assert "time-of-day schedule" in proc.stdout and "AM peak" in proc.stdout
    assert "knee" in proc.stdout


def test_periods_tile_the_day_each_at_least_an_hour(one_day):
    _, _, _, schedule = one_day
    periods = schedule.drop_duplicates("program_id")
    lengths = [
        (_minutes(r["end"]) - _minutes(r["start"])) % 1440 or 1440 for _, r in periods.iterrows()
    ]
    assert sum(lengths) == 1440 and min(lengths) >= 60
    starts = {r["start"] for _, r in periods.iterrows()}
    assert {r["end"] if r["end"] != "24:00" else "00:00" for _, r in periods.iterrows()} == starts


def test_neighbouring_cycles_change_by_at_most_the_rule(one_day):
    _, _, network, schedule = one_day
    periods = schedule.drop_duplicates("program_id").sort_values("start")
    order = list(periods["program_id"])
    for tls in network.intersections:
        cycle = schedule[schedule["intersection"] == tls].set_index("program_id")["cycle_s"]
        for a, b in zip(order, order[1:] + order[:1]):
            ratio = max(cycle[a], cycle[b]) / min(cycle[a], cycle[b])
            assert ratio <= 1 + MAX_CYCLE_CHANGE + 1e-9, (tls, a, b, ratio)
    # The rule bit: some cycle was raised (the peak cycles are far above the off-peak ones).
    assert (schedule["cycle_floor_s"] > 0).any()


def test_plans_are_valid_distinct_programs(one_day):
    _, out, network, schedule = one_day
    plans = read_plans(out / "tod_plans.add.xml")
    assert validate_all(plans, network) == plans
    keys = {(p.tls_id, p.program_id) for p in plans}
    assert len(keys) == len(plans) == len(schedule)
    cycles = {(p.tls_id, p.program_id): p.cycle_s for p in plans}
    for _, row in schedule.iterrows():
        assert cycles[(row["intersection"], row["program_id"])] == pytest.approx(row["cycle_s"])


def read_sections(path) -> dict[str, pd.DataFrame]:
    """The ``[Section]`` tables of an NTCIP CSV (comment lines start with '#')."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line:
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            sections[current].append(line)
    return {
        name: pd.DataFrame([r.split(",") for r in rows[1:]], columns=rows[0].split(","))
        for name, rows in sections.items()
    }


def test_ntcip_tables_agree_with_the_plans(one_day):
    _, out, network, schedule = one_day
    fits = fit_network(network)
    text = (out / "tod_ntcip.csv").read_text()
    for column in ("patternCycleTime", "splitTime", "dayPlanHour", "timeBaseScheduleDay"):
        assert column in text  # documented in the header comment
    tables = read_sections(out / "tod_ntcip.csv")
    patterns, splits = tables["Patterns"], tables["Splits"]
    plans = {(p.tls_id, p.program_id): p for p in read_plans(out / "tod_plans.add.xml")}
    assert len(patterns) == len(plans)
    for _, row in patterns.iterrows():
        plan = plans[(row["intersection"], row["program_id"])]
        assert float(row["cycle_s"]) == pytest.approx(plan.cycle_s)
        assert float(row["offset_s"]) == pytest.approx(plan.offset)
        mine = splits[
            (splits["intersection"] == row["intersection"]) & (splits["split"] == row["split"])
        ]
        assert fits[row["intersection"]].fits  # corridor's programs fit the dual ring
        phases = mine["phase"].astype(int)
        assert set(phases) <= set(range(1, 9))
        # Each ring's phases add up to the cycle (NEMA 1-4 ring 1, 5-8 ring 2).
        for ring in (phases <= 4, phases >= 5):
            assert mine[ring]["split_s"].astype(float).sum() == pytest.approx(plan.cycle_s)
        through = {2, 4, 6, 8} & set(phases)
        assert through  # every signal has a through phase
        assert mine["coord_phase"].astype(int).sum() in (1, 2)  # e.g. 2 and 6, one green
    assert list(tables["Schedule"]["days"]) == ["Mon-Sun"]
    assert tables["Schedule"]["day_mask"].tolist() == [str(day_mask("Mon-Sun"))] == ["254"]
    events = tables["DayPlans"]
    number = dict(zip(patterns["program_id"], patterns["pattern"]))
    starts = schedule.drop_duplicates("program_id")
    expected = {
        f"{int(r['start'][:2])}:{int(r['start'][3:])}": number[r["program_id"]]
        for _, r in starts.iterrows()
    }
    got = {f"{h}:{m}": p for h, m, p in zip(events["hour"], events["minute"], events["pattern"])}
    assert {k: v for k, v in got.items() if k != "0:0"} == {
        k: v for k, v in expected.items() if k != "0:0"
    }
    midnight = next(r for _, r in starts.iterrows() if _covers(r, "00:00"))
    assert got["0:0"] == number[midnight["program_id"]]


def test_tod_needs_counts(tmp_path):
    proc = run_cli("optimize", "corridor", "--tod", "--out", tmp_path / "o")
    assert_clean_error(proc, "--tod needs --counts")


def test_tod_refuses_a_window(corridor_flows, tmp_path):
    flows, _ = corridor_flows
    path = tmp_path / "c.csv"
    counts_of_days(flows, {TUESDAY: 1.0}).to_csv(path, index=False)
    proc = run_cli(
        "optimize", "corridor", "--counts", path, "--tod", "--at", "08:00", "--out", tmp_path / "o"
    )
    assert_clean_error(proc, "--at")


def test_history_shorter_than_a_day_is_refused(corridor_flows, tmp_path):
    flows, _ = corridor_flows
    counts = counts_of_days(flows, {TUESDAY: 1.0})
    path = tmp_path / "c.csv"
    counts[counts["timestamp"] < TUESDAY + pd.Timedelta(hours=20)].to_csv(path, index=False)
    proc = run_cli("optimize", "corridor", "--counts", path, "--tod", "--out", tmp_path / "o")
    assert_clean_error(proc, "whole day", "20 h")
    assert not (tmp_path / "o").exists()


def test_weekdays_and_weekends_are_profiled_apart(corridor_flows):
    flows, _ = corridor_flows
    days = {TUESDAY + pd.Timedelta(days=d): (0.5 if d in (4, 5) else 1.0) for d in range(7)}
    profiles, bin_s = day_profiles(counts_of_days(flows, days))
    assert bin_s == 900
    assert sorted(profiles["day_type"].unique()) == ["weekday", "weekend"]
    per_type = profiles.groupby("day_type")["flow_veh_h"].sum()
    assert per_type["weekend"] == pytest.approx(0.5 * per_type["weekday"], rel=0.01)
    assert dict(profiles.groupby("day_type")["days"].max()) == {"weekday": 5, "weekend": 2}


def test_a_day_type_with_uncounted_hours_is_refused(corridor_flows):
    flows, _ = corridor_flows
    counts = counts_of_days(flows, {TUESDAY: 1.0, TUESDAY + pd.Timedelta(days=1): 1.0})
    hour = counts["timestamp"].dt.hour
    with pytest.raises(InputError, match="no bin at 4 time"):
        day_profiles(counts[hour != 3])


def test_segmentation_finds_the_steps_of_a_stepped_day():
    # Levels change at 07:00, 10:00, 16:00, 19:00 and midnight (veh/h, two signals).
    levels = [(0, 100), (28, 800), (40, 400), (64, 900), (76, 300)]
    profile = np.zeros((96, 2))
    for (start, level), (end, _) in zip(levels, [*levels[1:], (96, 0)]):
        profile[start:end] = [level, level / 2]
    fits = segment_day(profile, min_slots=4)
    k = period_count(fits, noise_var=profile.mean() * 4, slots=96, series=2)
    assert k == 5
    assert fits[5][1] == [0, 28, 40, 64, 76] and fits[5][0] == pytest.approx(0.0, abs=1e-6)
    # Every extra period only lowers the error.
    errors = [fits[k][0] for k in sorted(fits)]
    assert all(b <= a + 1e-6 for a, b in zip(errors[:5], errors[1:5]))


def test_a_flat_day_stays_one_period():
    rng = np.random.default_rng(7)
    profile = rng.poisson(300 / 4, size=(96, 3)) * 4.0
    fits = segment_day(profile, min_slots=4)
    assert period_count(fits, noise_var=profile.mean() * 4, slots=96, series=3) == 1


def test_a_period_may_span_midnight():
    profile = np.full((96, 1), 100.0)
    profile[24:88] = 700.0  # 06:00-22:00 busy
    fits = segment_day(profile, min_slots=4)
    assert fits[2][1] == [24, 88] and fits[2][0] == pytest.approx(0.0, abs=1e-6)


def test_knee_of_an_l_shaped_curve():
    assert knee([100, 20, 10, 8, 7, 6, 5, 4]) == 2
    assert knee([1.0, 0.5]) == 2 and knee([1.0, 1.0, 1.0]) == 1
    assert math.isclose(MAX_CYCLE_CHANGE, 0.25)


def test_a_movement_never_counted_is_named(corridor_flows, tmp_path):
    flows, _ = corridor_flows
    dropped = flows.iloc[0]
    counts = counts_of_days(flows, {TUESDAY: 1.0})
    counts = counts[
        ~(
            (counts["intersection"] == dropped["intersection"])
            & (counts["movement"] == dropped["movement"])
        )
    ]
    path = tmp_path / "counts.csv"
    counts.to_csv(path, index=False)
    proc = run_cli("optimize", "corridor", "--counts", path, "--tod", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "never counted in the history" in text
    assert f"{dropped['intersection']} {dropped['movement']}" in text
