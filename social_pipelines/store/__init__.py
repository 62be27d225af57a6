"""The state store: the delivery ledger (and, later, outbox, tokens, breakers, limits)."""

from social_pipelines.store.ledger import Claim, ClaimResult, DeliveryRecord, Ledger
from social_pipelines.store.state import StateStore

__all__ = ["Claim", "ClaimResult", "DeliveryRecord", "Ledger", "StateStore"]
