"""The published schemas: they are what the contract generates, the contract stays compatible
with them, every recorded event still decodes and passes them, and a breaking change is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from pydantic import StrictStr

from pizzashop import contract
from pizzashop.cli import main
from pizzashop.contract import Topic, decode
from pizzashop.schemas import (
    IncompatibleSchemas,
    breaking_changes,
    generated_schemas,
    read_schemas,
    schema_text,
    write_schemas,
)

SCHEMAS = Path(__file__).parents[2] / "schemas"
CORPUS = SCHEMAS / "corpus"
REGENERATE = "regenerate them with `pizzashop schemas write` and commit schemas/"


def recorded_events() -> list[tuple[str, dict[str, Any]]]:
    """Every recorded event: (topic, {"key", "value": text, "" or null, "why"})."""
    return [
        (path.name.removesuffix(".jsonl"), json.loads(line))
        for path in sorted(CORPUS.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def value_bytes(recorded: dict[str, Any]) -> bytes | None:
    return None if recorded["value"] is None else recorded["value"].encode()


def test_the_committed_schemas_are_what_the_contract_generates() -> None:
    committed = {path.name: path.read_text() for path in sorted(SCHEMAS.glob("*.json"))}
    generated = {name: schema_text(schema) for name, schema in generated_schemas().items()}
    assert sorted(committed) == sorted(generated), f"schemas/ lists other files: {REGENERATE}"
    for name, text in generated.items():
        assert committed[name] == text, f"schemas/{name} differs from the contract: {REGENERATE}"


def test_the_contract_stays_compatible_with_the_committed_schemas() -> None:
    problems = breaking_changes(read_schemas(SCHEMAS), generated_schemas())
    assert problems == [], "values the published schemas allow would be refused: " + "; ".join(
        problems
    )


def test_every_schema_is_valid_json_schema_2020_12() -> None:
    for name, schema in read_schemas(SCHEMAS).items():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name


def test_the_corpus_holds_the_seeds_events_for_every_pipeline_topic() -> None:
    recorded = recorded_events()
    with_values = {*contract.PIPELINE_TOPICS, *contract.ONE_PARTITION_TOPICS}
    assert {topic for topic, _ in recorded} == {str(t) for t in with_values}
    assert sum("the seed's example" in r["why"] for _, r in recorded) >= 4


@pytest.mark.parametrize(("topic", "recorded"), recorded_events())
def test_a_recorded_event_still_decodes(topic: str, recorded: dict[str, Any]) -> None:
    decode(topic, recorded["key"].encode(), value_bytes(recorded), timestamp=1)


@pytest.mark.parametrize(("topic", "recorded"), recorded_events())
def test_a_recorded_event_passes_its_topics_schemas(topic: str, recorded: dict[str, Any]) -> None:
    schemas = read_schemas(SCHEMAS)
    Draft202012Validator(schemas[f"{topic}.key.json"]).validate(recorded["key"])
    value = recorded["value"]
    if topic in contract.VALUE_MODELS:  # JSON values; the others are not JSON at all
        Draft202012Validator(schemas[f"{topic}.value.json"]).validate(json.loads(value))


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        (Topic.ASSEMBLED, {"baking_time": -1}),
        (Topic.ASSEMBLED, {"baking_time": "17"}),
        (Topic.STATUS, {"status": 999}),
        (Topic.STATUS, {"timestamp": 5}),
        (Topic.ORDERED, {"status": 100, "timestamp": 5}),
    ],
)
def test_what_the_contract_refuses_the_schemas_refuse(topic: Topic, value: Any) -> None:
    with pytest.raises(contract.ContractError):
        decode(topic, b"k", json.dumps(value).encode())
    assert not Draft202012Validator(generated_schemas()[f"{topic}.value.json"]).is_valid(value)


# --- a breaking change, made to a copy of the contract, is caught ----------------------------


class StatusWithCourier(contract.StatusValue):
    """A copy of the status value that wants a field older records do not have."""

    courier: StrictStr


def with_changed(name: str, change: Any) -> dict[str, dict[str, Any]]:
    """The contract's schemas, with `change` made to a copy of the one called `name`."""
    schemas = copy.deepcopy(generated_schemas())
    change(schemas[name])
    return schemas


def test_a_new_required_field_breaks_compatibility() -> None:
    courier = StatusWithCourier.model_json_schema()
    changed = with_changed("pizza-status.value.json", lambda s: s.update(courier))
    assert breaking_changes(generated_schemas(), changed) == [
        "pizza-status.value.json: value: new required field 'courier'"
    ]


def test_a_removed_status_breaks_compatibility() -> None:
    changed = with_changed(
        "pizza-status.value.json", lambda s: s["properties"]["status"]["enum"].remove(510)
    )
    assert breaking_changes(generated_schemas(), changed) == [
        "pizza-status.value.json: value.status: no longer allows [510]"
    ]


def test_a_narrowed_type_breaks_compatibility() -> None:
    changed = with_changed(
        "pizza-ordered.value.json", lambda s: s["properties"].update(timestamp={"type": "integer"})
    )
    assert breaking_changes(generated_schemas(), changed) == [
        "pizza-ordered.value.json: value.timestamp: no longer allows null"
    ]


def test_a_tighter_bound_inside_a_referenced_definition_breaks_compatibility() -> None:
    changed = with_changed(
        "pizza-ordered.value.json",
        lambda s: s["$defs"]["Order"]["properties"]["name"].update(maxLength=40),
    )
    assert breaking_changes(generated_schemas(), changed) == [
        "pizza-ordered.value.json: value.order.name: maxLength is now 40 (was 1024)"
    ]


def test_a_new_optional_field_and_a_new_status_are_compatible() -> None:
    def widen(schema: dict[str, Any]) -> None:
        schema["properties"]["courier"] = {"type": "string"}
        schema["properties"]["status"]["enum"].append(520)

    assert (
        breaking_changes(generated_schemas(), with_changed("pizza-status.value.json", widen)) == []
    )


def test_writing_refuses_a_breaking_change_unless_asked(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    published = json.loads((tmp_path / "pizza-status.value.json").read_text())
    published["properties"]["status"]["enum"].append(600)  # a status the contract since lost
    (tmp_path / "pizza-status.value.json").write_text(json.dumps(published))

    with pytest.raises(IncompatibleSchemas, match=r"no longer allows \[600\]"):
        write_schemas(tmp_path)
    assert "600" in (tmp_path / "pizza-status.value.json").read_text(), "nothing is written"

    write_schemas(tmp_path, allow_breaking=True)
    assert read_schemas(tmp_path) == generated_schemas()


def test_the_command_writes_the_schemas_and_names_a_breaking_change(tmp_path: Path) -> None:
    env = {"PIZZASHOP_STATE_DIR": str(tmp_path / "state")}
    command = ["schemas", "write", "--directory", str(tmp_path / "schemas")]
    written = CliRunner().invoke(main, command, env=env)
    assert written.exit_code == 0, written.output
    assert read_schemas(tmp_path / "schemas") == generated_schemas()

    status_file = tmp_path / "schemas" / "pizza-status.value.json"
    status_file.write_text(status_file.read_text().replace("510", "510, 600"))
    refused = CliRunner().invoke(main, command, env=env)
    assert refused.exit_code == 1 and "no longer allows [600]" in refused.output, refused.output
