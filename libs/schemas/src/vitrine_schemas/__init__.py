"""Vitrine's event contracts: envelope, events, topics and money."""

from vitrine_schemas.envelope import Contract, Envelope, Event, RawEnvelope
from vitrine_schemas.money import Money

__all__ = ["Contract", "Envelope", "Event", "Money", "RawEnvelope"]
