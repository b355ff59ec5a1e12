"""Traces with OpenTelemetry: one order, one trace, from the request that placed it to the
read model.

Every record produced carries a W3C `traceparent` header naming the span that made it; the
service that consumes it starts its span as that span's child. Traces go out over OTLP when
the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Otherwise tracing is off and costs nothing:
no header is read or written and no span is made (`enabled()` is False).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, Tracer

from pizzashop.config import otlp_export_requested

TRACEPARENT = "traceparent"
Headers = Sequence[tuple[str, str | bytes | None]]

_tracer: Tracer | None = None


def start_tracing(part: str) -> None:
    """Export this process's spans over OTLP, named after the part, if the variables ask."""
    global _tracer
    if not otlp_export_requested():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": part, "service.namespace": "pizzashop"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("pizzashop")


def stop_tracing() -> None:
    """Send the spans still waiting in the batch (on the way out of a process)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)  # the API's default provider has none
    if _tracer is not None and shutdown is not None:
        shutdown()


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Tracer:
    assert _tracer is not None, "only called while tracing is on"
    return _tracer


class _HeaderGetter(Getter[Headers]):
    def get(self, carrier: Headers, key: str) -> list[str] | None:
        found = [_text(v) for k, v in carrier if k.lower() == key and v is not None]
        return found or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


def _text(value: str | bytes | None) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def parent_of(headers: Headers | None) -> Context:
    """The context a record's headers carry (empty, so a new trace, without them)."""
    return propagate.extract(headers or [], getter=_HeaderGetter())


def headers_of(span: Span | None = None) -> list[tuple[str, str]]:
    """The headers that make a record's consumer a child of `span` (the current one if None)."""
    carrier: dict[str, str] = {}
    context = trace.set_span_in_context(span) if span is not None else None
    propagate.inject(carrier, context=context)
    return list(carrier.items())


class Source(Protocol):
    """Where a consumed record came from (a runtime Ticket is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def headers(self) -> Headers | None: ...


def record_attributes(source: Source) -> dict[str, str | int]:
    """OpenTelemetry's messaging conventions for a Kafka record, and the order it is about."""
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": source.topic,
        "messaging.destination.partition.id": str(source.partition),
        "messaging.kafka.offset": source.offset,
        "messaging.kafka.message.key": source.key,
        "pizzashop.order_id": source.key,
    }


def current(span: Span) -> AbstractContextManager[Span]:
    """`span` is the current one within (log lines and produced records name it)."""
    return trace.use_span(span, end_on_exit=False)


def start_consumer_span(service: str, source: Source) -> Span:
    return tracer().start_span(
        f"{service} {source.topic}",
        context=parent_of(source.headers),
        kind=SpanKind.CONSUMER,
        attributes=record_attributes(source),
    )


class TicketSpans:
    """The open span of each event a service works on, from its handler to its outputs."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._open: dict[int, tuple[Span, tuple[str, int]]] = {}  # id(ticket) -> span, source
        self._finished: list[Span] = []  # since the last commit: the commit's links

    def start(self, ticket: Source) -> Span:
        span = start_consumer_span(self.service, ticket)
        self._open[id(ticket)] = span, (ticket.topic, ticket.partition)
        return span

    def headers(self, ticket: object) -> list[tuple[str, str]] | None:
        opened = self._open.get(id(ticket))
        return None if opened is None else headers_of(opened[0])

    def trace_id(self, ticket: object) -> str | None:
        opened = self._open.get(id(ticket))
        return None if opened is None else trace_id_of(opened[0])

    def end(self, ticket: object) -> None:
        opened = self._open.pop(id(ticket), None)
        if opened is not None:
            opened[0].end()
            self._finished.append(opened[0])

    def drop(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Partitions gone or their work to be redone: its events' spans end, handed back."""
        gone = set(partitions)
        for ticket_id, (span, source) in list(self._open.items()):
            if source in gone:
                span.set_attribute("pizzashop.handed_back", True)
                span.end()
                del self._open[ticket_id]

    @contextmanager
    def commit(self, what: str) -> Iterator[None]:
        """A span for one commit, linked to the spans of the events it finishes."""
        links = [Link(span.get_span_context()) for span in self._finished]
        self._finished = []
        with tracer().start_as_current_span(
            f"{self.service} {what}", links=links, attributes={"pizzashop.events": len(links)}
        ):
            yield


def trace_id_of(span: Span) -> str | None:
    """A span's trace id as 32 hex digits, as `traceparent` writes it."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())


def trace_id_in(headers: Headers | None) -> str | None:
    """The trace id a record's `traceparent` header names, if it has a valid one."""
    for key, value in headers or []:
        if key.lower() == TRACEPARENT:
            return trace_id_from(value)
    return None


def trace_id_from(traceparent: str | bytes | None) -> str | None:
    """The trace id of a W3C `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<2 hex
    flags>`), or None when there is none or it is not one."""
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode("ascii", errors="replace")
    parts = (traceparent or "").strip().split("-")
    if len(parts) < 4 or (parts[0] == "00" and len(parts) != 4):
        return None  # versions after 00 may add fields after the flags; 00 has none
    version, trace_id, span_id, flags = parts[:4]
    shapes = ((version, 2), (trace_id, 32), (span_id, 16), (flags, 2))
    if not all(len(part) == size and _is_lower_hex(part) for part, size in shapes):
        return None
    if version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return trace_id


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
