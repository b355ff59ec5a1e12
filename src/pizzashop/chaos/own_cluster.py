"""A shop of the run's own: a local cluster on free ports, with the shop's topics, and settings
that reach nothing of the user's (no configured cluster, database or metrics port)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pizzashop.config import Settings
from pizzashop.kafka.cluster import LocalKafka
from pizzashop.kafka.topics import create_topics
from pizzashop.local.ports import free_port_block

# The nodes take every second port from each base: the plain and controller listeners
# interleaved from the block's start, the secured ones after them.
PORTS_PER_NODE = 4


def own_cluster_settings(
    settings: Settings, state_dir: Path, nodes: int, time_scale: float
) -> Settings:
    """The run's folder, `nodes` nodes on free ports that each hold every record, the run's
    time scale; exactly once, and no capacity limit."""
    port = free_port_block(PORTS_PER_NODE * nodes)
    return settings.replace(
        state_dir=state_dir,
        bootstrap_servers=None,
        kafka_properties_file=None,
        database_url=None,
        kafka_port=port,
        kafka_controller_port=port + 1,
        kafka_secure_port=port + 2 * nodes,
        replication_factor=nodes,
        time_scale=time_scale,
        observe_port=0,
        capacity=0,
        processing_guarantee="exactly_once",
    )


@contextlib.contextmanager
def own_cluster(settings: Settings, nodes: int) -> Iterator[tuple[Settings, LocalKafka]]:
    """The cluster started, its topics made, and the settings that reach it; stopped after."""
    kafka = LocalKafka(settings, nodes=nodes)
    kafka.start()
    try:
        settings = settings.replace(bootstrap_servers=kafka.bootstrap_servers)
        create_topics(settings)
        yield settings, kafka
    finally:
        kafka.stop()
