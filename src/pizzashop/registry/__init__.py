"""The contract in a Schema Registry (Confluent's REST API: Confluent's own or Cloud's,
Apicurio's ccompat, Karapace): each JSON value's schema under its topic's subject
(`pizza-ordered-value`, ...), BACKWARD compatibility kept by the registry, and records framed
with the ids it gives (`contract.framing`). `client` talks to it; `local` runs one.

A process that writes or reads the contract's records calls `use_schema_registry` once at its
start: it registers the contract's schemas (the same schema again is the same id), so the
registry's refusal of a breaking change, or its absence, is one line before any record.
"""

from __future__ import annotations

from pizzashop.config import Settings, registry_client_config
from pizzashop.contract import framing


def use_schema_registry(settings: Settings) -> None:
    """Frame this process's records with the configured registry's ids and check the ids of
    those it reads; with none configured, records stay plain JSON."""
    if registry_client_config(settings) is None:
        framing.use(None)
        return
    # Only now: the registry's client (confluent-kafka's, on httpx and authlib) takes over a
    # second to import, which a shop without a registry does not pay.
    from pizzashop.registry.client import registry_framing

    framing.use(registry_framing(settings))
