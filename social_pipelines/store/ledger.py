"""The delivery ledger: the record that makes every post and reply happen at most once.

`Ledger` is the one object callers hold: the state machine (`transitions.py`) and the
reads (`queries.py`) on one engine and one clock. The deliverer moves rows and reads its
clock, sensors read what is due and release a dead run's claims, the CLI lists: with one
object none of them has to know which module a method lives in, and a test drives the
ledger as the code does. A caller that only reads may take a `DeliveryQueries` instead.
"""

from __future__ import annotations

from social_pipelines.store.queries import DeliveryQueries
from social_pipelines.store.transitions import DeliveryTransitions


class Ledger(DeliveryTransitions, DeliveryQueries):
    """Reads and moves delivery rows; every method is its own short transaction.

    `DeliveryTransitions.__init__` sets what both halves use (engine, writer, clock).
    """
