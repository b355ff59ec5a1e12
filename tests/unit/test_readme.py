"""The README's worked example of a new service is code that works, not a sketch."""

from __future__ import annotations

import re
from pathlib import Path

from pizzashop.contract import Status, StatusChanged, Topic
from pizzashop.service import NOTHING_TO_DO, KitchenService

README = Path(__file__).parents[2] / "README.md"


def example_service() -> dict[str, object]:
    section = README.read_text().split("### How to write a new service", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "the README has no worked example of a service"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # our own README
    return namespace


def test_the_readme_example_thanks_a_delivered_order_and_ignores_the_rest() -> None:
    example = example_service()
    thank, build = example["thank"], example["build"]

    assert thank(StatusChanged("o1", Status.DELIVERED, 1), {}).done_message  # type: ignore[operator]  # the example is exec'd from the README: untyped here
    assert thank(StatusChanged("o1", Status.IN_OVEN, 1), {}) is NOTHING_TO_DO  # type: ignore[operator]  # the example is exec'd from the README: untyped here
    service = build(None)  # type: ignore[operator]  # the example is exec'd from the README: untyped here
    assert isinstance(service, KitchenService) and service.consumes == (Topic.STATUS,)
