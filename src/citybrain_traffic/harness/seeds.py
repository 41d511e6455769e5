"""Seeds: parse what the user asks for, within what SUMO takes."""

from __future__ import annotations

from ..errors import InputError

#: Most seeds one command runs: each is a SUMO run per controller, so a typo such as 0-100000
#: would start days of simulation. A 95% confidence interval over 30 seeds is already tight.
MAX_SEEDS = 1000
#: SUMO's --seed is a C int.
MAX_SEED = 2**31 - 1


def parse_seeds(text: str) -> list[int]:
    """Return the seeds of ``"3"``, ``"1-5"`` or ``"1,4,7"`` (inclusive), ``MAX_SEEDS`` at most."""
    too_many = (
        f"--seeds {text!r} names more than {MAX_SEEDS} seeds (each is one SUMO run per controller)"
    )
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise InputError(f"invalid seed range {part!r}: {high} is below {low}")
                # Checked before the range is expanded: 0-10**12 fails at once, memory intact.
                if len(seeds) + high - low + 1 > MAX_SEEDS:
                    raise InputError(too_many)
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InputError(
                f"invalid seeds {text!r}: expected N, N-M or N,M,... with whole numbers"
            ) from None
    if len(seeds) > MAX_SEEDS:
        raise InputError(too_many)
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise InputError(
            f"invalid seeds {text!r}: seeds are whole numbers from 0 to {MAX_SEED} (SUMO's --seed)"
        )
    if len(set(seeds)) != len(seeds):
        raise InputError(f"invalid seeds {text!r}: a seed is repeated")
    return seeds
