"""`python -m pizzashop.bench.quix_hop GROUP SOURCE TARGET`: one hop of the bench's Quix Streams
peer, in its own process: every record of SOURCE copied to TARGET, as bytes.

Configured as Quix Streams' documentation recommends for exactly-once at low latency: under
exactly-once an output is readable only once its checkpoint commits, so `commit_interval` is
the longest a record waits in a hop; 0.1 s rather than the default 5 s, as Kafka Streams commits.
`consumer_poll_timeout` 0.1 s rather than 1 s, so an idle poll never holds a due checkpoint
back. Everything else is Quix Streams' own defaults (its producer partitions by murmur2, as the
orders are placed, so each order keeps its partition along the chain).
"""

from __future__ import annotations

import logging
import sys

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from pizzashop.config import kafka_client_config, load_settings

COMMIT_INTERVAL = 0.1  # seconds
POLL_TIMEOUT = 0.1  # seconds
GUARANTEES = {"exactly_once": "exactly-once", "at_least_once": "at-least-once"}


def main(argv: list[str]) -> None:
    group, source, target = argv
    settings = load_settings()
    connection = ConnectionConfig.from_librdkafka_dict(
        kafka_client_config(settings), ignore_extras=True
    )
    app = Application(
        broker_address=connection,
        consumer_group=group,
        processing_guarantee=GUARANTEES[settings.processing_guarantee],  # type: ignore[arg-type]
        commit_interval=COMMIT_INTERVAL,
        consumer_poll_timeout=POLL_TIMEOUT,
        auto_offset_reset="earliest",
        auto_create_topics=False,  # the bench made them, with the shop's partitions
        use_changelog_topics=False,  # a hop keeps no state
        state_dir=settings.state_dir / "quix" / group,
        loglevel=logging.getLevelNamesMapping()[settings.log_level],
    )
    stream = app.dataframe(app.topic(source, key_deserializer="bytes", value_deserializer="bytes"))
    stream.to_topic(app.topic(target, key_serializer="bytes", value_serializer="bytes"))
    app.run()  # until SIGTERM


if __name__ == "__main__":
    main(sys.argv[1:])
