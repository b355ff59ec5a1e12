"""How fast the read model is rebuilt from the log: N orders' events (placed, then 200, 300,
400) written straight to a local broker of the bench's own, then `rebuild` timed on them.

    python -m pizzashop.bench.rebuild --orders 100000 [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from confluent_kafka import Producer

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config, load_settings
from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.kafka.topics import create_topics
from pizzashop.local.ports import free_port
from pizzashop.readmodel.rebuilding import Rebuilt, rebuild

STEPS = (Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED)


def write_orders(settings: Settings, orders: int) -> None:
    """Each order's four events, keyed by its id (so all on one partition), as the shop has them."""
    producer = Producer(
        {**kafka_client_config(settings), "linger.ms": 20, "compression.type": "lz4"}
    )
    pizza = Order(
        customer_id="bench",
        name="Bench",
        sauce="Tomato",
        cheese="Mozzarella",
        main_topping="Pepperoni",
        extra_toppings=["Mushroom"],
    )
    for n in range(orders):
        order_id, at = contract.new_order_id(), 1_700_000_000_000 + n
        events: list[OrderPlaced | StatusChanged] = [OrderPlaced(order_id, pizza, at)]
        events += [StatusChanged(order_id, s, at + i + 1) for i, s in enumerate(STEPS)]
        for event in events:
            record = contract.encode(event)
            while True:
                try:
                    producer.produce(record.topic, key=record.key, value=record.value)
                    break
                except BufferError:
                    producer.poll(0.1)  # the local queue is full: let it drain
        producer.poll(0)
    left = producer.flush(120)
    assert left == 0, f"{left} events not acknowledged"


def bench_rebuild(orders: int, database_url: str | None) -> Rebuilt:
    from pizzashop.kafka.cluster import start_local_kafka

    with tempfile.TemporaryDirectory(prefix="pizzashop-rebuild-bench-") as state:
        settings = load_settings(state_dir=Path(state), database_url=database_url)
        settings = settings.replace(kafka_port=free_port(), kafka_controller_port=free_port())
        broker = start_local_kafka(settings)
        try:
            settings = settings.replace(bootstrap_servers=broker.bootstrap_servers)
            create_topics(settings)
            write_orders(settings, orders)
            return rebuild(settings, show_progress=True)
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    rebuilt = bench_rebuild(arguments.orders, arguments.database_url)
    print(
        f"{arguments.orders} orders, {rebuilt.events} events rebuilt into {rebuilt.where} "
        f"in {rebuilt.seconds:.1f}s: {rebuilt.rate:,.0f} events/s, "
        f"{arguments.orders / rebuilt.seconds:,.0f} orders/s"
    )


if __name__ == "__main__":
    main()
