"""Where records go: the topics, who reads each (the services and their groups) and who
sends each, and how an order's first record picks its partition."""

from __future__ import annotations

import functools
from enum import StrEnum


class Topic(StrEnum):
    ORDERED = "pizza-ordered"
    ASSEMBLED = "pizza-assembled"
    BAKED = "pizza-baked"
    STATUS = "pizza-status"
    CANCEL = "pizza-cancel"
    DEAD_LETTER = "pizza-dlq"
    # The pantry's: its asks (one partition: one decider), its answers, its stock levels.
    PANTRY = "pizza-pantry"
    RESERVED = "pizza-reserved"
    STOCK = "pizza-stock"


# The topics an order passes through, co-partitioned: the steps, the statuses, and the
# customer's cancel, which the front door produces to the order's partition number.
PIPELINE_TOPICS: tuple[Topic, ...] = (
    Topic.ORDERED,
    Topic.ASSEMBLED,
    Topic.BAKED,
    Topic.STATUS,
    Topic.CANCEL,
    Topic.RESERVED,
)
# The pantry's topics of one partition each: every ask decided by one instance, in order; one
# compacted record per ingredient's level.
ONE_PARTITION_TOPICS: tuple[Topic, ...] = (Topic.PANTRY, Topic.STOCK)

# The shop's services, the consumer group each forms and what each consumes. A service's
# instances share its group; a kitchen service keeps its state in its own changelog topic.
SERVICES: dict[str, tuple[Topic, ...]] = {
    "assemble": (Topic.ORDERED, Topic.RESERVED, Topic.CANCEL),
    "pantry": (Topic.PANTRY,),
    "bake": (Topic.ASSEMBLED,),
    "delivery": (Topic.ORDERED, Topic.BAKED),
    "status": (Topic.ORDERED, Topic.STATUS, Topic.RESERVED, Topic.STOCK),
}

# And who sends what. The command side (the web app, `pizzashop order` and `cancel`) places
# and cancels orders; each service writes its steps and statuses (status, the stuck mark)
# and parks in `pizza-dlq` what it cannot handle; assemble asks the pantry, which answers and
# keeps the stock; the operator restocks (`pizzashop pantry restock`) and sends again what
# stopped: `pizzashop retry` an order's missing step, `pizzashop dlq replay` a parked record
# to the topic it was read from.
COMMAND_SIDE = "ordering"
OPERATOR = "operator"
PRODUCES: dict[str, tuple[Topic, ...]] = {
    COMMAND_SIDE: (Topic.ORDERED, Topic.CANCEL, Topic.PANTRY),
    "assemble": (Topic.ASSEMBLED, Topic.STATUS, Topic.PANTRY, Topic.DEAD_LETTER),
    "pantry": (Topic.RESERVED, Topic.STOCK, Topic.DEAD_LETTER),
    "bake": (Topic.BAKED, Topic.STATUS, Topic.DEAD_LETTER),
    "delivery": (Topic.STATUS, Topic.DEAD_LETTER),
    "status": (Topic.STATUS, Topic.DEAD_LETTER),
    OPERATOR: (*PIPELINE_TOPICS, *ONE_PARTITION_TOPICS),
}


def group_id(service: str) -> str:
    return f"pizza_{service}"


def state_topic(service: str) -> str:
    return f"pizza_{service}-state"


@functools.cache  # asked of every record a kitchen service sends
def is_compacted(topic: str) -> bool:
    """Whether a topic keeps only the last record of each key: the stock levels, and every
    service's state (its changelog)."""
    return topic == Topic.STOCK or (topic.startswith("pizza_") and topic.endswith("-state"))


# Where an order's first event lands: librdkafka's default (CRC32) and the JVM clients'
# (murmur2: Kafka Streams, ksqlDB, Connect, the console producer) disagree on the partition
# of a key. The shop places orders where a JVM client would; every later event of an order
# then goes to the partition number its input came from, whoever produced the first one.
PARTITIONER = "murmur2_random"
