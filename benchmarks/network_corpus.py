"""Every controller on every network of the corpus: ok, refused with its reason, or failed.

The corpus (tests/network_variants.py) holds, each on a small network made with SUMO's own tools
or hand-edited from the bundled `single`, every signal-program feature found in real files:
static, actuated, delay_based and NEMA programs, a WAUT between two programs, a signal joined
over several junctions, pedestrian crossings, an unused state, the states u/o/s with an offset
and `next`, no internal lanes, a signal with one green, minDur/maxDur that contradict the
durations, and a program without yellow. Each run is seed 1 with randomTrips demand; its safety
is checked on the signal states SUMO showed.

Target (issue 15): no `failed` cell, and no run that left the safety envelope. Writes
`benchmarks/results/network_corpus.md` (the matrix) and `network_corpus.csv`; exit code 1 when
the target is missed.

    python benchmarks/network_corpus.py [--end 600] [--networks static,nema,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from network_variants import CORPUS, CORPUS_CONTROLLERS, corpus_matrix  # noqa: E402  (the tests' corpus)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--end", type=float, default=600.0, help="Window of each run, s (default 600)."
    )
    parser.add_argument(
        "--networks", default=",".join(CORPUS), help="Corpus networks, comma-separated."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import pandas as pd

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ctraffic-corpus-") as tmp:
        rows = corpus_matrix(Path(tmp), args.networks.split(","), end_s=args.end)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "network_corpus.csv", index=False, float_format="%.2f")

    def cell(row) -> str:
        if row["outcome"] == "ok":
            unsafe = f", **{row['safety_violations']} unsafe**" if row["safety_violations"] else ""
            return f"ok {row['mean_delay_s']:.1f} s{unsafe}"
        return f"{row['outcome']}: {row['detail'].split(':', 1)[-1].strip()[:48]}..."

    lines = [
        "# Network corpus: every controller on every signal-program feature",
        "",
        f"`python benchmarks/network_corpus.py --end {args.end:g}`: seed 1, randomTrips demand; "
        "a cell is the mean delay (s/veh) of a run whose signal states SUMO showed stayed in the "
        "safety envelope, or why the controller refused the network, or how it failed.",
        "",
        "| network | signals | " + " | ".join(CORPUS_CONTROLLERS) + " |",
        "|---|---|" + "---|" * len(CORPUS_CONTROLLERS),
    ]
    for name, group in table.groupby("network", sort=False):
        by = {row["controller"]: row for _, row in group.iterrows()}
        lines.append(
            f"| {name} | {group['signals'].iloc[0]} | "
            + " | ".join(cell(by[c]) if c in by else "" for c in CORPUS_CONTROLLERS)
            + " |"
        )
    failed = table[table["outcome"] == "failed"]
    unsafe = table[(table["outcome"] == "ok") & (table["safety_violations"] > 0)]
    lines += [
        "",
        f"Failed: {len(failed)}; runs that left the safety envelope: {len(unsafe)}; "
        f"refused: {int((table['outcome'] == 'refused').sum())}; "
        f"wall time {time.perf_counter() - started:.0f} s.",
    ]
    (args.out / "network_corpus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if len(failed) or len(unsafe) else 0


if __name__ == "__main__":
    sys.exit(main())
