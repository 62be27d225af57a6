"""Which campaigns and accounts may run now: circuit closed, account not marked
`reconnect_needed`.

Schedules and sensors ask this before launching a run, so a run is not started only to
fail against a platform we already know is down, or as an account the platform refused
for good (its mark says why, until `accounts connect` or `token_refresh_job` clears it).
"""

from dataclasses import dataclass, field

from social_pipelines.campaigns import Campaign
from social_pipelines.resilience.breaker import BreakerSnapshot
from social_pipelines.wiring import Wiring


@dataclass(frozen=True)
class Runnable:
    runnable: list[Campaign]
    blocked: list[tuple[Campaign, BreakerSnapshot]]
    # Campaigns whose account needs reconnecting, with the mark's reason.
    reconnect: list[tuple[Campaign, str]] = field(default_factory=list)

    @property
    def held_accounts(self) -> set[str]:
        return {c.account for c, _ in self.blocked} | {c.account for c, _ in self.reconnect}

    def skip_reason(self) -> str:
        parts = []
        if self.blocked:
            circuits = sorted({(s.name, s.reset_at) for _, s in self.blocked}, key=str)
            named = ", ".join(
                f"{name} (open until {reset:%Y-%m-%d %H:%M:%S} UTC)" if reset else name
                for name, reset in circuits
            )
            parts.append(f"circuit open: {named}")
        if self.reconnect:
            accounts = sorted({(c.account, reason) for c, reason in self.reconnect})
            parts.append(
                "reconnect needed: "
                + ", ".join(f"{account} ({reason})" for account, reason in accounts)
            )
        return "; ".join(parts)


def held_accounts(wiring: Wiring) -> dict[str, str]:
    """Accounts marked `reconnect_needed`, with the reason: nothing posts as them."""
    return {row.account: f"reconnect needed: {row.reason}" for row in wiring.tokens.marked()}


def runnable_campaigns(wiring: Wiring) -> Runnable:
    book = wiring.campaigns()
    marked = {row.account: row.reason or "refused" for row in wiring.tokens.marked()}
    runnable, blocked, reconnect = [], [], []
    for campaign in book.enabled():
        account = book.accounts.get(campaign.account)
        if account.name in marked:
            reconnect.append((campaign, marked[account.name]))
            continue
        snapshot = wiring.connector.breaker(account.platform, account.name).snapshot()
        if snapshot.is_open:
            blocked.append((campaign, snapshot))
        else:
            runnable.append(campaign)
    return Runnable(runnable, blocked, reconnect)
