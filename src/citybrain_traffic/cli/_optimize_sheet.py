"""The parts of ``ctraffic optimize``'s sheet beyond the phases: movements, storage, pedestrians."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from rich.console import Console

    from ..network import Network
    from ..optimize import SignalTiming
    from ..optimize.saturation import SaturationModel
    from ..plans import TimingPlan

#: The files ``DeploymentTables.write`` adds to the output folder.
STORAGE_FILE, PEDESTRIAN_FILE = "queue_storage.csv", "pedestrian_timing.csv"
_DECIMALS = {"flow_veh_h": 1, "v_c": 3, "queue95_veh": 1, "queue95_m": 1, "ratio": 2}


@dataclass(frozen=True)
class DeploymentTables:
    """The sheet's tables beyond the phases.

    Per movement its flow, v/c, delay and LOS; per lane group its 95th-percentile queue against
    its storage; per crossing its walk and flashing don't walk (empty without crossings).
    """

    movements: pd.DataFrame
    storage: pd.DataFrame
    pedestrians: pd.DataFrame

    def write(self, out: Path) -> list[Path]:
        """Write the storage check, and the pedestrian timing where there are crossings."""
        written = [out / STORAGE_FILE]
        self.storage.round(_DECIMALS).to_csv(written[0], index=False)
        if len(self.pedestrians):
            written.append(out / PEDESTRIAN_FILE)
            self.pedestrians.round(2).to_csv(written[-1], index=False)
        return written

    def print(self, console: Console, *, title: str) -> None:
        """Show the movement table; warn of every lane group whose queue may spill back."""
        from ..optimize.sheet_movements import movements_rich

        console.print(movements_rich(self.movements, title=f"{title}: movements"))
        risky = self.storage[self.storage["spillback_risk"].astype(bool)]
        for row in risky.to_dict("records"):
            console.print(
                f"[yellow]warning[/]: {row['intersection']} {row['movements']}: the "
                f"95th-percentile queue ({row['queue95_m']:.0f} m) exceeds the storage of its "
                f"lanes ({row['storage_m']:.0f} m): spillback risk"
            )
        if len(self.pedestrians):
            capped = self.pedestrians[self.pedestrians["capped"].astype(bool)]
            console.print(
                f"pedestrian timing: {len(self.pedestrians)} crossing green(s), walk "
                "7 s minimum + flashing don't walk at 1.07 m/s (MUTCD)"
                + (f"; {len(capped)} capped at the program's own green" if len(capped) else "")
            )


def deployment_tables(
    network: Network,
    plans: Sequence[TimingPlan],
    timings: Mapping[str, SignalTiming],
    flows: pd.DataFrame,
    model: SaturationModel | float,
) -> DeploymentTables:
    """Tabulate the movements, the queue storage and the pedestrian timing of the plans.

    ``model`` is the saturation flow the plans were made with: a model, or one veh/h/lane.
    """
    from ..optimize.pedestrians import pedestrian_times
    from ..optimize.sheet_movements import movement_table
    from ..optimize.storage import storage_check
    from ._optimize_check import signal_demands

    demands = signal_demands(network, flows, model, list(timings))
    return DeploymentTables(
        movements=movement_table(plans, network, timings=timings, demands=demands),
        storage=storage_check(
            network,
            timings,
            flows,
            saturation_veh_h_lane=model if isinstance(model, float) else model.base_veh_h_lane,
        ),
        pedestrians=pedestrian_times(network),
    )
