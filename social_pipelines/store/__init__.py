"""The state store: the delivery ledger, circuit breakers, rate blocks and budgets.

One SQLAlchemy Core schema on SQLite or PostgreSQL, brought up to date by Alembic when a
store is opened (`migrate.py`). What callers use is exported here; the modules:

- `outbox`: posts to publish and their revisions (their deliveries are in the ledger);
- `ledger`: the `Ledger` facade over `transitions` (the delivery state machine) and
  `queries` (reads for operators and sensors); `records` (what they return); `quotas`;
- `breakers`, `rate_blocks`, `rate_budgets`: the SQL behind `resilience/`;
- `alerts`: the alert outbox (one alert per event, its delivery to each sink); `events`:
  the reads that find what to alert about;
- `step_outputs`: what each step of a Dagster run handed the next (the IO manager's);
- `schema`, `engine`, `sql`, `migrate` and `migrations/`: tables, engines, shared
  statements and the schema's upgrades; `state`: `StateStore`, all of it opened once.
"""

from social_pipelines.store.ledger import Ledger
from social_pipelines.store.outbox import (
    Origin,
    Outbox,
    OutboxStatus,
    PostRecord,
    SaveOutcome,
    SaveResult,
)
from social_pipelines.store.quotas import QuotaRule
from social_pipelines.store.records import Claim, ClaimResult, DeliveryRecord, RemoteIdTaken
from social_pipelines.store.state import StateStore

__all__ = [
    "Claim",
    "ClaimResult",
    "DeliveryRecord",
    "Ledger",
    "Origin",
    "Outbox",
    "OutboxStatus",
    "PostRecord",
    "QuotaRule",
    "RemoteIdTaken",
    "SaveOutcome",
    "SaveResult",
    "StateStore",
]
