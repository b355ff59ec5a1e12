"""bake: bakes each assembled pizza for the time it was given, then hands it to delivery."""

from __future__ import annotations

import logging

from pizzashop.contract import Event, PizzaAssembled, PizzaBaked, Status, StatusChanged, Topic
from pizzashop.kitchen import Work
from pizzashop.runtime import Service, State

log = logging.getLogger("pizzashop.bake")


def bake(event: Event, state: State) -> Work:
    assert isinstance(event, PizzaAssembled)
    log.info("Baking order '%s', baking time is %d second(s)", event.order_id, event.baking_time)
    return Work(
        outputs=[PizzaBaked(event.order_id), StatusChanged(event.order_id, Status.OUT_FOR_DELIVERY)],
        seconds=event.baking_time,
        done_message=f"Order '{event.order_id}' is baked",
    )


def build(_settings: object) -> Service:
    return Service(name="bake", consumes=(Topic.ASSEMBLED,), handle=bake)
