"""The README is a short front page whose links lead into the docs, and the docs' worked
example of a new service is code that works, not a sketch."""

from __future__ import annotations

import re
from pathlib import Path

from pizzashop.contract import Status, StatusChanged, Topic
from pizzashop.service import NOTHING_TO_DO, KitchenService

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
WRITING_A_SERVICE = ROOT / "docs" / "writing-a-service.md"
FRONT_PAGE_LINES = 250


def test_the_readme_is_a_front_page_of_at_most_250_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= FRONT_PAGE_LINES, (
        f"README.md has {lines} lines, more than {FRONT_PAGE_LINES}: move the detail into docs/"
    )


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository() -> None:
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to no page of the docs"
    missing = sorted(t for t in local if not (ROOT / t).exists())
    assert not missing, "README.md links to files that do not exist: " + ", ".join(missing)


def example_service() -> dict[str, object]:
    code = re.search(r"```python\n(.*?)```", WRITING_A_SERVICE.read_text(), re.S)
    assert code, f"{WRITING_A_SERVICE.relative_to(ROOT)} has no worked example of a service"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(WRITING_A_SERVICE), "exec"), namespace)  # our own docs
    return namespace


def test_the_docs_example_thanks_a_delivered_order_and_ignores_the_rest() -> None:
    example = example_service()
    thank, build = example["thank"], example["build"]

    assert thank(StatusChanged("o1", Status.DELIVERED, 1), {}).done_message  # type: ignore[operator]  # the example is exec'd from the docs: untyped here
    assert thank(StatusChanged("o1", Status.IN_OVEN, 1), {}) is NOTHING_TO_DO  # type: ignore[operator]  # the example is exec'd from the docs: untyped here
    service = build(None)  # type: ignore[operator]  # the example is exec'd from the docs: untyped here
    assert isinstance(service, KitchenService) and service.consumes == (Topic.STATUS,)
