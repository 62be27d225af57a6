"""The state store as one object: an engine with its schema in place, the ledger, the
outbox, reply drafts, step outputs and the alert outbox."""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.store.alerts import AlertOutbox
from social_pipelines.store.drafts import DraftStore
from social_pipelines.store.engine import create_engine
from social_pipelines.store.events import EventReads
from social_pipelines.store.ledger import Ledger
from social_pipelines.store.migrate import ensure_schema
from social_pipelines.store.outbox import Outbox
from social_pipelines.store.step_outputs import StepOutputs
from social_pipelines.store.tokens import TokenCipher, TokenStore


class StateStore:
    """Opened once per process and URL (engines and their pools must not cross a fork)."""

    _opened: dict[tuple[int, str], StateStore] = {}
    _lock = threading.Lock()

    def __init__(self, url: str, *, clock: Clock = utcnow) -> None:
        self.url = url
        self.engine: sa.Engine = create_engine(url)
        ensure_schema(self.engine)
        self.ledger = Ledger(self.engine, clock=clock)
        self.outbox = Outbox(self.engine, clock=clock)
        self.drafts = DraftStore(self.engine, clock=clock)
        # Operators' alerts and their delivery to each sink; `alerts.undelivered()` lists
        # what no sink has taken yet.
        self.alerts = AlertOutbox(self.engine, clock=clock)
        # What the alerts sensor looks for: circuits opened, dead and missed deliveries,
        # quota deferrals, accounts to reconnect.
        self.events = EventReads(self.engine)
        self.step_outputs = StepOutputs(self.engine, clock=clock)

    @classmethod
    def open(cls, url: str) -> StateStore:
        key = (os.getpid(), url)
        with cls._lock:
            if key not in cls._opened:
                cls._opened[key] = cls(url)
            return cls._opened[key]

    @classmethod
    def close(cls, url: str) -> None:
        """Dispose of the store `open` keeps for `url` in this process, and forget it: the
        next `open` opens it afresh (a test's cleanup, a process done with a store)."""
        with cls._lock:
            store = cls._opened.pop((os.getpid(), url), None)
        if store is not None:
            store.dispose()

    def tokens(self, secret_key: str | None = None) -> TokenStore:
        """Stored tokens and reconnect marks, sealed with `secret_key` (SOCIAL_SECRET_KEY;
        None: stored plainly)."""
        return TokenStore(self.engine, TokenCipher(secret_key))

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
