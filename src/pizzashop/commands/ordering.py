"""The command side: an order is placed by producing `pizza-ordered`, and only that.

`place` answers once the broker has acknowledged the event (acks=all, idempotent): the order
is in the log. Otherwise it says which of two things happened: OrderNotAccepted, the order
is known not to be in the log; or OrderUnconfirmed, no answer came in time, so it may be
there or not. Either way the customer may try again with the same idempotency key: the key
gives the same order id, and every service ignores an order id it has already handled.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Event, Order, OrderPlaced, PizzaAssembled, PizzaBaked, Status
from pizzashop.menu import menu_errors
from pizzashop.observe import tracing
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.reading import settle_from_thread
from pizzashop.services.assemble import assembling_and_baking_time

ACKNOWLEDGE_TIMEOUT = 5.0
LINGER_MS = 5
# How long the taker's thread waits for delivery reports at a time: it wakes at once when one
# comes, so this only bounds how long `close` waits for the thread.
REPORTS_POLL_SECONDS = 0.2
# How much longer than the producer's own timeout the caller waits: long enough for its
# delivery report (with an outcome) to arrive, so a time-out of ours is rare.
REPORT_GRACE = 1.0
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# Delivery errors after which the record is surely not in the log. Any other, a time-out
# above all, leaves it unknown: the broker may have written it and the answer got lost.
NOT_WRITTEN = frozenset(
    {
        KafkaError._PURGE_QUEUE,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
    }
)


class InvalidOrder(ValueError):
    """An order that cannot be placed: what is wrong with it, by field."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(
            "; ".join(f"{field}: {problem}" for field, problem in self.problems.items())
        )


def valid_order(customer_id: str, choices: Mapping[str, Any]) -> Order:
    """The order a customer chose, checked against the contract and the menu: the one place an
    order is validated (the web API, the order form and the CLI only translate InvalidOrder)."""
    try:
        order = Order(customer_id=customer_id, **choices)
    except ValidationError as e:
        raise InvalidOrder({_field_of(problem): problem["msg"] for problem in e.errors()}) from None
    problems = menu_errors(order)
    if problems:
        raise InvalidOrder(problems)
    return order


def _field_of(problem: Mapping[str, Any]) -> str:
    return str(problem["loc"][0]) if problem["loc"] else "order"


class OrderNotAccepted(RuntimeError):
    """The order is known not to be in the log: nothing was ordered."""


class OrderUnconfirmed(RuntimeError):
    """No answer in time: the order may be in the log or not. Retrying with the same key is safe."""

    def __init__(self, message: str, order_id: str | None = None) -> None:
        super().__init__(message)
        self.order_id = order_id  # the order whose record went unanswered, when known


@dataclass(frozen=True)
class Written:
    """Where the broker wrote a record: what a reader must have read past to have seen it."""

    partition: int
    offset: int


# An event's delivery report: where it was written, else the broker's error.
Outcome = KafkaError | Written


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(16)


def idempotency_key_problem(key: str) -> str | None:
    """What is wrong with a client's idempotency key, or None when it is usable."""
    if (
        not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not key.isascii()
        or not key.isprintable()
    ):
        return f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
    return None


class UnusableIdempotencyKey(ValueError):
    """A client's idempotency key that cannot be one: what a usable key is."""


class PlaceOrder:
    """The command to place an order: a customer's valid order under a usable idempotency key
    (the same key is the same order). Checked as it is made, the key first, then the order:
    UnusableIdempotencyKey or InvalidOrder, before anything is looked up or produced."""

    def __init__(self, customer_id: str, choices: Mapping[str, Any], idempotency_key: str) -> None:
        problem = idempotency_key_problem(idempotency_key)
        if problem:
            raise UnusableIdempotencyKey(problem)
        self.order = valid_order(customer_id, choices)
        self.idempotency_key = idempotency_key


def order_id_for(secret: str, customer_id: str, idempotency_key: str) -> str:
    """The order id of a customer's order with this key: the same every time, and as
    unguessable as a random one without the shop's secret (128 bits, URL-safe)."""
    message = f"order-id\0{customer_id}\0{idempotency_key}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


class OrderTaker:
    """Places orders on `pizza-ordered` and waits for the broker's acknowledgement of each.

    One producer serves every caller at once: each record gets a future that its delivery
    report resolves, so a caller waits for its own record and no other (never a flush), and the
    records of concurrent callers leave together in one request (`linger.ms`). A thread of
    the taker's own polls for the reports, so neither the web app's event loop nor a caller
    ever serves another's.
    """

    def __init__(
        self, settings: Settings, timeout: float = ACKNOWLEDGE_TIMEOUT, wait: float | None = None
    ) -> None:
        self.timeout = timeout
        self.wait = timeout + REPORT_GRACE if wait is None else wait
        client = kafka_client_config(settings)
        self.address = client["bootstrap.servers"]
        self._producer = Producer(
            {
                **client,
                "enable.idempotence": True,
                "acks": "all",
                # Orders placed within the same few ms go out in one request: under a rush
                # that is fewer, bigger requests for the broker; alone, 5 ms on the answer.
                "linger.ms": LINGER_MS,
                "partitioner": contract.PARTITIONER,
                # Give up on an order as soon as the customer stops waiting for an answer.
                "message.timeout.ms": int(timeout * 1000),
            }
        )
        self._closed = threading.Event()
        self._reports = threading.Thread(
            target=self._serve_reports, name="order-acknowledgements", daemon=True
        )
        self._reports.start()

    def place(self, order: Order, order_id: str) -> tuple[OrderPlaced, Written]:
        """Place the order and wait here for the broker's word (the command line's way):
        the order as produced, and where the broker wrote it."""
        event = OrderPlaced(order_id, order, contract.now_ms())
        return event, self.send(event)

    async def place_async(self, order: Order, order_id: str) -> tuple[OrderPlaced, Written]:
        """Place the order and await the broker's word without holding up the event loop."""
        event = OrderPlaced(order_id, order, contract.now_ms())
        return event, await self.send_async(event)

    def broker_answers(self, timeout: float) -> None:
        """Raises KafkaException unless the cluster answers a metadata request within `timeout`."""
        self._producer.list_topics(str(contract.Topic.ORDERED), timeout=timeout)

    def send(self, event: Event, partition: int = -1) -> Written:
        """Produce one event and wait for the broker's word (to `partition`; -1: by its key)."""
        report: concurrent.futures.Future[Outcome] = concurrent.futures.Future()

        def tell(outcome: Outcome) -> None:
            # A caller that stopped waiting has cancelled the future: nothing to tell it.
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                report.set_result(outcome)

        with self._send_span(event) as headers:
            self._hand_over(event, partition, headers, tell)
            try:
                outcome = report.result(timeout=self.wait)
            except concurrent.futures.TimeoutError:
                raise self._unanswered(event) from None
        return self._written(outcome, event)

    async def send_async(self, event: Event, partition: int = -1) -> Written:
        """`send`, awaiting the broker's word without holding up the event loop.

        The delivery report settles a future of the loop's own from the reports' thread, as a
        hand-written front door does: a thread's future wrapped for the loop, with `wait_for`'s
        timer, cost CPU on every order."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Outcome] = loop.create_future()

        def tell(outcome: Outcome) -> None:
            settle_from_thread(loop, answered, outcome)

        with self._send_span(event) as headers:
            self._hand_over(event, partition, headers, tell)
            try:
                async with asyncio.timeout(self.wait):
                    outcome = await answered
            except TimeoutError:
                raise self._unanswered(event) from None
        return self._written(outcome, event)

    @contextlib.contextmanager
    def _send_span(self, event: Event) -> Iterator[list[tuple[str, str]] | None]:
        """The producer span of one event while tracing is on; the headers that name it."""
        if not tracing.enabled():
            yield None
            return
        with tracing.tracer().start_as_current_span(
            f"send {contract.TOPIC_OF[type(event)]}",
            kind=SpanKind.PRODUCER,
            attributes={"pizzashop.order_id": event.order_id},
        ):
            yield tracing.headers_of()

    def _hand_over(
        self,
        event: Event,
        partition: int,
        headers: list[tuple[str, str]] | None,
        tell: Callable[[Outcome], None],
    ) -> None:
        """Give the event to the producer, which tells its outcome to `tell` from the reports'
        thread."""
        record = contract.encode(event)

        def acknowledged(error: KafkaError | None, message: Message) -> None:
            tell(error or Written(message.partition() or 0, message.offset() or 0))

        try:
            self._producer.produce(
                record.topic,
                key=record.key,
                value=record.value or None,
                partition=partition,
                # Copied into the list type produce() takes (ours holds str values only).
                headers=None if headers is None else list(headers),
                on_delivery=acknowledged,
            )
        except (BufferError, KafkaException) as e:
            raise OrderNotAccepted(f"the producer for {self.address} refused it: {e}") from None

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(REPORTS_POLL_SECONDS)

    def _unanswered(self, event: Event) -> OrderUnconfirmed:
        return OrderUnconfirmed(
            f"the broker at {self.address} did not answer within {self.wait:g}s", event.order_id
        )

    def _written(self, outcome: KafkaError | Written, event: Event) -> Written:
        """Where the record was written, or the error that says whether it surely was not."""
        if isinstance(outcome, Written):
            return outcome
        if outcome.code() in NOT_WRITTEN:
            raise OrderNotAccepted(f"the broker at {self.address} refused it: {outcome.str()}")
        raise OrderUnconfirmed(
            f"no acknowledgement from the broker at {self.address}: {outcome.str()}", event.order_id
        )

    def close(self) -> None:
        self._producer.flush(self.wait)
        self._closed.set()
        self._reports.join()


def events_to_resume(view: OrderView) -> list[Event]:
    """What to send again for an order that stopped on its way: the input of its missing step.

    A service that has handled the order already ignores it (its outputs are on their way),
    so a slow order is never made twice; one that never got it does the step now.
    """
    assert view.order is not None and view.placed_at is not None, "only placed orders resume"
    placed = OrderPlaced(view.order_id, view.order, view.placed_at)
    reached = max(
        (e.status for e in view.history if not e.status.is_error), default=Status.RECEIVED
    )
    if reached is Status.RECEIVED:
        return [placed]
    if reached is Status.IN_OVEN:
        return [
            PizzaAssembled(view.order_id, assembling_and_baking_time(view.order.ingredients())[1])
        ]
    # Out for delivery: delivery may lack the early warning, the baked pizza, or both.
    return [placed, PizzaBaked(view.order_id)]
