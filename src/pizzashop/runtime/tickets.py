"""A consumed record as the kitchen and the sink take it: a `Ticket`, decoded, or with why not."""

from __future__ import annotations

from confluent_kafka import KafkaException, Message

from pizzashop import contract
from pizzashop.contract import ContractError
from pizzashop.kafka.records import record_headers, record_position
from pizzashop.observe import tracing
from pizzashop.runtime.kitchen import Ticket
from pizzashop.runtime.problems import ProblemLog
from pizzashop.runtime.producing import printable_key


def ticket_of(message: Message, problems: ProblemLog) -> Ticket | None:
    """The record's ticket; None for an error event (a fatal one is raised, to start over)."""
    error = message.error()
    if error is not None:
        if error.fatal():
            raise KafkaException(error)
        problems.report("consume", str(error))
        return None
    problems.clear("consume")
    topic, partition, offset = record_position(message)
    key, value = message.key(), message.value()
    _, timestamp = message.timestamp()
    try:
        event: contract.Event | None = contract.decode(topic, key, value, timestamp)
        reason = None
    except ContractError as e:
        event, reason = None, str(e)
    return Ticket(
        topic=topic,
        partition=partition,
        offset=offset,
        key=printable_key(key),
        event=event,
        raw_key=key,
        raw_value=value,
        error=reason,
        headers=record_headers(message) if tracing.enabled() else None,
    )
