"""The yardstick of the shop's front door: one a user would write by hand, a screenful.

FastAPI on uvicorn (uvloop, httptools), one idempotent confluent-kafka producer, and
`POST /api/orders` validated by pydantic, answered 201 once the broker has the record. No
sessions, idempotency keys, rate limit, read model or metrics: what the shop's own front door
costs beyond this is the price of those. The bench runs the shop's kitchen behind it, so its
orders are followed to delivery like the shop's. The order's id is the request's
`Idempotency-Key` when it gives one (so the bench can follow it), else a new one.

    python -m pizzashop.bench.bare_door PORT BOOTSTRAP_SERVERS
"""

from __future__ import annotations

import asyncio
import sys
import threading

import uvicorn
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from fastapi import FastAPI, Header

from pizzashop import contract
from pizzashop.contract import Order, OrderPlaced


def bare_door(bootstrap_servers: str) -> FastAPI:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
            "partitioner": contract.PARTITIONER,
        }
    )
    threading.Thread(target=lambda: _serve_callbacks(producer), daemon=True).start()
    app = FastAPI()

    @app.post("/api/orders", status_code=201)
    async def place(order: Order, idempotency_key: str | None = Header(None)) -> dict[str, str]:
        order_id = idempotency_key or contract.new_order_id()
        record = contract.encode(OrderPlaced(order_id, order, contract.now_ms()))
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, _: Message) -> None:
            loop.call_soon_threadsafe(_settle, acknowledged, error)

        producer.produce(record.topic, record.value, record.key, on_delivery=delivered)
        await acknowledged
        return {"order_id": order_id}

    return app


def _serve_callbacks(producer: Producer) -> None:
    while True:
        producer.poll(1.0)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(error))


if __name__ == "__main__":
    port, bootstrap = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        bare_door(bootstrap),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )
