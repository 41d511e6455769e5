"""Wake-ups for long polls: a new version published by this server process or another one."""

from __future__ import annotations

import asyncio
import contextlib

from .store import PlanStore

#: How often each server process looks for versions published by other processes (s).
WATCH_INTERVAL_S = 0.1


class Changes:
    """Wake long polls when a new version is published, by this process or another one.

    Parameters
    ----------
    store
        The plan store whose newest version is watched.
    """

    def __init__(self, store: PlanStore):
        self.store = store
        self.version = store.latest_version()
        self.event = asyncio.Event()

    def notify(self, version: int) -> None:
        """Wake every waiter when ``version`` is not the newest version seen so far."""
        if version != self.version:
            self.version = version
            self.event.set()
            self.event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return at the next new version, or after ``timeout`` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)

    async def watch(self) -> None:
        """Look for new versions every ``WATCH_INTERVAL_S`` s, forever (a task of the app's)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            self.notify(self.store.latest_version())
