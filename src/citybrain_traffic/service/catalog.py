"""The networks the plan service serves, by file name, and the network of each of their signals."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from ..errors import InputError
from ..network import Network


class Catalog:
    """The served networks by file name, and the network of each signal (an id names one).

    Parameters
    ----------
    networks
        The networks to serve; they must not share a signal id.

    Raises
    ------
    InputError
        When two networks have a signal of the same id.
    """

    def __init__(self, networks: Sequence[Network]):
        self.networks = {network.path.name: network for network in networks}
        self.signals: dict[str, str] = {}
        for name, network in self.networks.items():
            for tls_id in network.intersections:
                if tls_id in self.signals:
                    raise InputError(
                        f"signal {tls_id!r} is in both {self.signals[tls_id]} and {name}: "
                        "serve them from separate servers"
                    )
                self.signals[tls_id] = name

    def network_of(self, tls_id: str) -> str:
        """Return the file name of the network of signal ``tls_id``.

        Raises
        ------
        HTTPException
            404 when no served network has the signal.
        """
        if tls_id not in self.signals:
            sample = ", ".join(list(self.signals)[:10])
            raise HTTPException(
                404, f"unknown intersection {tls_id!r}: the served signals are {sample}"
            )
        return self.signals[tls_id]
