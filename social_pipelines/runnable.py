"""Which campaigns may run now: the ones whose account's circuit is closed.

Schedules and sensors ask this before launching a run, so a run is not started only to
fail against a platform we already know is down.
"""

from dataclasses import dataclass

from social_pipelines.campaigns import Campaign
from social_pipelines.resilience.breaker import BreakerSnapshot
from social_pipelines.wiring import Wiring


@dataclass(frozen=True)
class Runnable:
    runnable: list[Campaign]
    blocked: list[tuple[Campaign, BreakerSnapshot]]

    def skip_reason(self) -> str:
        circuits = sorted({(s.name, s.reset_at) for _, s in self.blocked}, key=str)
        named = ", ".join(
            f"{name} (open until {reset:%Y-%m-%d %H:%M:%S} UTC)" if reset else name
            for name, reset in circuits
        )
        return f"circuit open: {named}"


def runnable_campaigns(wiring: Wiring) -> Runnable:
    book = wiring.campaigns()
    runnable, blocked = [], []
    for campaign in book.enabled():
        account = book.accounts.get(campaign.account)
        snapshot = wiring.connector.breaker(account.platform, account.name).snapshot()
        if snapshot.is_open:
            blocked.append((campaign, snapshot))
        else:
            runnable.append(campaign)
    return Runnable(runnable, blocked)
