"""A kitchen service's memory: its state per partition (changelog.py says what it holds),
what of it goes to its changelog topic, restoring it when partitions come, and looking after
it now and then (orders handled long ago forgotten, entries waiting too long settled)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.kafka.topics import PIPELINE_TOPIC_NAMES
from pizzashop.runtime.changelog import (
    ServiceState,
    Waiting,
    kept_in_changelog,
    read_changelog,
    read_handled,
)
from pizzashop.runtime.clients import TopicAdmin
from pizzashop.runtime.deadletters import dead_letter_record
from pizzashop.runtime.problems import KAFKA_STEP_TIMEOUT
from pizzashop.runtime.producing import OutgoingRecord, Retry
from pizzashop.service import Expiry, KitchenService

log = logging.getLogger("pizzashop.runtime")

# How often the state is looked after (handled orders forgotten, overdue entries settled).
STATE_CHECK_SECONDS = 60.0
MIN_STATE_CHECK_SECONDS = 0.1


class KitchenMemory:
    def __init__(self, service: KitchenService, settings: Settings, committed_only: bool) -> None:
        self.service, self.settings, self._committed_only = service, settings, committed_only
        self.state = ServiceState(int(settings.remember_orders_for * 1000))
        self.state_topic = contract.state_topic(service.name)
        self.keeps_state = service.keeps_state
        self.topics = (self.state_topic,) if service.keeps_state else ()
        self._next_check = 0.0

    def prepare_topics(self, admin: TopicAdmin, retry: Retry) -> None:
        """Wait for the pipeline's topics; refuse to start (TopicsNotCoPartitioned) unless they,
        and the service's changelog, have one partition count: every output goes to the
        partition number of its input, so an order must find its partition everywhere."""
        wait = KAFKA_STEP_TIMEOUT
        partitions = retry(
            "find the shop's topics", lambda: admin.partition_count(PIPELINE_TOPIC_NAMES, wait)
        )
        if not self.keeps_state:
            return
        retry(
            "create the state topic",
            lambda: admin.create_state_topic(self.state_topic, partitions, wait),
        )
        # Retried too: on a cluster, the node asked may not know the new topic yet.
        with_state = [*PIPELINE_TOPIC_NAMES, self.state_topic]
        retry("find the state topic", lambda: admin.partition_count(with_state, wait))

    def changing_the_changelog(self, partition: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The changes that change what the changelog holds: an order handled of which it
        holds nothing (each pizza bake bakes) needs no tombstone there."""
        state = self.state.of(partition)
        return {
            order_id: value
            for order_id, value in changes.items()
            if kept_in_changelog(value) or kept_in_changelog(state.get(order_id))
        }

    # --- partitions coming and going ----------------------------------------------------------

    def restore(self, partitions: set[int]) -> None:
        """The state from the changelog, then the orders handled, from pizza-status."""
        service = self.service
        if not service.keeps_state and not service.handled_statuses:
            return
        changes = itertools.chain(
            read_changelog(self.settings, self.state_topic, partitions, self._committed_only)
            if service.keeps_state
            else (),
            read_handled(
                self.settings,
                partitions,
                service.handled_statuses,
                contract.now_ms() - self.state.remember_for_ms,
                self._committed_only,
            )
            if service.handled_statuses
            else (),
        )
        restored = self.state.restore(partitions, changes)
        log.info(
            "Restored state of %d order(s) in partition(s) %s",
            restored,
            ", ".join(map(str, sorted(partitions))),
        )

    def drop(self, partitions: set[int]) -> None:
        self.state.drop(partitions)

    # --- looking after it -------------------------------------------------------------------

    def look_after(self, now: float) -> list[OutgoingRecord]:
        """Now and then: forget the orders handled long ago, and settle entries overdue; the
        records that settling them writes (tombstones, dead letters)."""
        if now < self._next_check:
            return []
        self._next_check = now + self._check_seconds()
        if self.service.handled_statuses:
            self._forget_handled()
        if self.service.expire is None:
            return []
        return self._settle_overdue(self.service.expire)

    def _check_seconds(self) -> float:
        """At most a quarter of the shortest wait late (and no more than a minute)."""
        waits = [self.settings.remember_orders_for]
        if self.service.expire is not None:
            waits.append(self.service.expire_after)
        return max(MIN_STATE_CHECK_SECONDS, min(STATE_CHECK_SECONDS, *(w / 4 for w in waits)))

    def _forget_handled(self) -> None:
        forgotten = self.state.forget_handled(contract.now_ms())
        if forgotten:
            log.info(
                "Forgot %d order(s) handled over %gs ago",
                forgotten,
                self.settings.remember_orders_for,
            )

    def _settle_overdue(self, expire: Expiry) -> list[OutgoingRecord]:
        """Each entry the service calls overdue leaves the state (and its changelog), and the
        event it stands for is parked with the service's reason, in the next transaction."""
        now = contract.now_ms()
        records = []
        for entry in self.state.waiting_since(now - int(self.service.expire_after * 1000)):
            overdue = expire(entry.order_id, entry.value, (now - entry.since) / 1000)
            if overdue is None:
                continue
            self.state.change(entry.partition, {entry.order_id: None}, now)
            records.append(
                OutgoingRecord(self.state_topic, entry.order_id.encode(), None, entry.partition)
            )
            if overdue.park is not None:
                letter = self._overdue_letter(entry, overdue.park, overdue.reason)
                records.append(dead_letter_record(letter))
        return records

    def _overdue_letter(self, entry: Waiting, event: contract.Event, reason: str) -> DeadLetter:
        record = contract.encode(event)
        # Rebuilt from the state: where it was first read is not kept, hence offset -1.
        return DeadLetter(
            str(record.topic),
            entry.partition,
            -1,
            record.key,
            record.value,
            reason,
            self.service.name,
        )
