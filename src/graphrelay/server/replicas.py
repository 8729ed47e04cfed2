"""Which replica executes which run: a run belongs to the API process that renews its lease;
when the lease runs out (that process died) any replica may claim the run, to carry it on from
its last checkpoint or to end it."""

from __future__ import annotations

import os
import socket
import uuid

from graphrelay.server.ports import RunLeases


class Replicas:
    """This process's side of the run leases."""

    def __init__(self, leases: RunLeases, lease_seconds: float = 15.0) -> None:
        self.leases = leases
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._held: set[str] = set()  # runs whose lease this process renews

    @property
    def held(self) -> list[str]:
        """The runs whose lease this process renews (its runs and resumes)."""
        return list(self._held)

    async def grant(self, run_id: str) -> None:
        """Take the lease of a run this process starts, and keep renewing it."""
        await self.leases.grant(run_id, self.owner, self.lease_seconds)
        self._held.add(run_id)

    def hold(self, run_id: str) -> None:
        """Keep renewing the lease of a run this process claimed."""
        self._held.add(run_id)

    def stop_renewing(self, run_id: str) -> None:
        """The run stopped here: its lease is not renewed any more."""
        self._held.discard(run_id)

    async def release(self, run_id: str) -> None:
        """Drop the run's lease: nobody needs it."""
        self._held.discard(run_id)
        await self.leases.release(run_id)

    async def renew(self) -> None:
        """Extend the lease of every run this process executes."""
        for run_id in list(self._held):
            await self.leases.renew(run_id, self.owner, self.lease_seconds)

    async def claim(self, run_id: str) -> bool:
        """Take the lease of a run whose lease ran out; True if this process got it."""
        return await self.leases.claim(run_id, self.owner, self.lease_seconds)

    async def expired(self) -> list[str]:
        """Runs whose lease ran out."""
        return await self.leases.expired()
