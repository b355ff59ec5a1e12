"""Python's garbage collector, tuned once a long-running process (a service, the web app) has
started.

Each event a service takes, and each request the web app answers, makes many short-lived
objects. At Python's default threshold of 700 the collector ran several times a turn or a
burst of requests, and each full collection walked every module, class and route the process
holds: in a rush, a fifth of a service's CPU, and the web app's slowest answers.
"""

from __future__ import annotations

import gc

OBJECTS_BEFORE_A_COLLECTION = 20_000


def spare_the_collector() -> None:
    """What exists once started lives as long as the process: frozen, the collector never
    walks it again; and it runs once a turn's worth of objects has piled up."""
    gc.freeze()
    gc.set_threshold(OBJECTS_BEFORE_A_COLLECTION, 10, 10)
