"""The wire contract as JSON Schema (draft 2020-12): a key and a value schema for each topic,
made from `contract.py`, so that a producer in any language can check what it writes; and the
compatibility rule every change of the contract keeps with the schemas published before it.

The rule is a schema registry's BACKWARD one: every value the previous schemas allowed is
still allowed. Checked structurally, and deliberately simply: a change breaks it when it adds
a required field, takes a type away from a field (or a value from its enum, or gives it an
enum it had not), tightens a bound (minimum, maximum, length, items), or closes an object to
extra fields. Removing a field is compatible: consumers tolerate fields they do not know.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import TypeAdapter

from pizzashop.contract import VALUE_MODELS, OrderIdKey, Topic
from pizzashop.contract.deadletter import (
    DLQ_ERROR,
    DLQ_SERVICE,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
)

Schema: TypeAlias = dict[str, Any]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The dialect a Schema Registry is given: the registries' compatibility checks (Confluent's,
# Apicurio's) read drafts 4 to 7, and Apicurio's fails on 2020-12 ("could not determine
# version"). The contract's schemas use nothing of 2020-12 but the name of `$defs`.
REGISTRY_DIALECT = "http://json-schema.org/draft-07/schema#"
ID_PREFIX = "urn:pizzashop:schema:"
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")

# What the schemas say of the values that are not JSON.
EMPTY_VALUE = "empty: no value, or zero bytes; a consumer ignores whatever is there"
PARKED_VALUE = (
    "the parked record's value as it was read, any bytes (JSON or not); where it came from "
    f"and why are in the record's headers: {DLQ_SOURCE_TOPIC}, {DLQ_SOURCE_PARTITION}, "
    f"{DLQ_SOURCE_OFFSET}, {DLQ_ERROR}, {DLQ_SERVICE}"
)
PARKED_KEY = "the parked record's key as it was read, any bytes, or none"
# Keys that are not always an order's id, as UTF-8 text (not JSON).
OTHER_KEYS: dict[Topic, str] = {
    Topic.PANTRY: "as UTF-8 text (not JSON): the order id of a reserve, use or release ask; "
    "a restock's own id, which makes it count once",
    Topic.STOCK: "the ingredient's name as UTF-8 text (not JSON), as the menu spells it",
}


class IncompatibleSchemas(ValueError):
    """The contract would no longer allow values its published schemas allowed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the contract breaks compatibility with the published schemas: " + "; ".join(problems)
        )


# --- making them -----------------------------------------------------------------------------


def generated_schemas() -> dict[str, Schema]:
    """Every schema the contract gives, by file name: `pizza-ordered.key.json`, ..."""
    schemas = {}
    for topic in Topic:
        schemas[f"{topic}.key.json"] = _published(f"{topic} key", _key_schema(topic))
        schemas[f"{topic}.value.json"] = _published(f"{topic} value", _value_schema(topic))
    return schemas


def _key_schema(topic: Topic) -> Schema:
    if topic is Topic.DEAD_LETTER:
        return {"description": PARKED_KEY}
    schema: Schema = TypeAdapter(OrderIdKey).json_schema()
    if topic in OTHER_KEYS:
        schema["description"] = OTHER_KEYS[topic]
    return schema


def _value_schema(topic: Topic) -> Schema:
    if topic is Topic.DEAD_LETTER:
        return {"description": PARKED_VALUE}
    if topic not in VALUE_MODELS:
        return {"description": EMPTY_VALUE}
    return VALUE_MODELS[topic].model_json_schema()


def _published(title: str, schema: Schema) -> Schema:
    name = title.replace(" ", ".")
    return {**schema, "$schema": DIALECT, "$id": f"{ID_PREFIX}{name}", "title": title}


def registry_schemas() -> dict[Topic, Schema]:
    """The schema of each topic whose values are JSON, as a Schema Registry is given it:
    the published one, in draft-07's words (`definitions` for `$defs`)."""
    published = generated_schemas()
    return {
        topic: {**_in_draft_07(published[f"{topic}.value.json"]), "$schema": REGISTRY_DIALECT}
        for topic in VALUE_MODELS
    }


def _in_draft_07(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_in_draft_07(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    renamed = {"definitions" if key == "$defs" else key: _in_draft_07(value)
               for key, value in schema.items()}  # fmt: skip
    ref = renamed.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        renamed["$ref"] = "#/definitions/" + ref.removeprefix("#/$defs/")
    return renamed


def schema_text(schema: Schema) -> str:
    """A schema as its file holds it: the same bytes for the same schema."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_schemas(directory: Path) -> dict[str, Schema]:
    """The schemas published in `directory`, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def write_schemas(directory: Path, allow_breaking: bool = False) -> list[Path]:
    """Write the contract's schemas into `directory`, replacing those there; the files written.

    IncompatibleSchemas, writing nothing, when that would break compatibility with the
    schemas there, unless `allow_breaking` (for a change made on purpose, with a new topic).
    """
    current = generated_schemas()
    problems = breaking_changes(read_schemas(directory), current)
    if problems and not allow_breaking:
        raise IncompatibleSchemas(problems)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in set(read_schemas(directory)) - set(current):
        (directory / stale).unlink()
    for name, schema in current.items():
        (directory / name).write_text(schema_text(schema))
    return [directory / name for name in current]


# --- the compatibility rule ------------------------------------------------------------------


def breaking_changes(previous: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """Why values the `previous` schemas allowed may not be allowed by the `current` ones, one
    line for each (empty: BACKWARD compatible). Both are by file name."""
    problems = []
    for name, old in sorted(previous.items()):
        if name not in current:
            problems.append(f"{name}: the schema is gone")
            continue
        new = current[name]
        problems += [f"{name}: {p}" for p in _narrowings(old, new, (old, new), "value")]
    return problems


def _narrowings(old: Schema, new: Schema, roots: tuple[Schema, Schema], where: str) -> list[str]:
    """What `new` refuses at `where` that `old` allowed, looking into fields and items."""
    old, new = _resolved(old, roots[0]), _resolved(new, roots[1])
    problems = [f"{where}: {p}" for p in _own_narrowings(old, new, roots)]
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    for field in sorted(set(old_fields) & set(new_fields)):
        problems += _narrowings(old_fields[field], new_fields[field], roots, f"{where}.{field}")
    if "items" in old and "items" in new:
        problems += _narrowings(old["items"], new["items"], roots, f"{where}[]")
    for old_branch, new_branch in _branches_alike(old, new, roots):
        problems += _narrowings(old_branch, new_branch, roots, where)
    return problems


def _own_narrowings(old: Schema, new: Schema, roots: tuple[Schema, Schema]) -> list[str]:
    """What `new` refuses that `old` allowed, by the keywords of this level only."""
    problems = []
    lost = _types(old, roots[0]) - _types(new, roots[1])
    if lost:
        problems.append(f"no longer allows {', '.join(sorted(lost))}")
    if "enum" in new:
        if "enum" not in old:
            problems.append(f"is now limited to {new['enum']}")
        else:
            gone = [value for value in old["enum"] if value not in new["enum"]]
            if gone:
                problems.append(f"no longer allows {gone}")
    for field in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
        problems.append(f"new required field {field!r}")
    for bound in LOWER_BOUNDS + UPPER_BOUNDS:
        if bound in new and (bound not in old or _tighter(bound, new[bound], old[bound])):
            problems.append(f"{bound} is now {new[bound]} (was {old.get(bound, 'none')})")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        problems.append("no longer allows extra fields")
    return problems


def _tighter(bound: str, new: float, old: float) -> bool:
    return new > old if bound in LOWER_BOUNDS else new < old


def _types(schema: Schema, root: Schema) -> set[str]:
    """The JSON types a schema allows (every one when it does not say)."""
    schema = _resolved(schema, root)
    if "anyOf" in schema:
        return set().union(*(_types(branch, root) for branch in schema["anyOf"]))
    named = schema.get("type", sorted(ALL_TYPES))
    types = {named} if isinstance(named, str) else set(named)
    return types | {"integer"} if "number" in types else types


def _branches_alike(
    old: Schema, new: Schema, roots: tuple[Schema, Schema]
) -> list[tuple[Schema, Schema]]:
    """The branches of two `anyOf`s that allow the same types, to compare with each other."""
    pairs = []
    for old_branch in old.get("anyOf", ()):
        for new_branch in new.get("anyOf", ()):
            if _types(old_branch, roots[0]) == _types(new_branch, roots[1]):
                pairs.append((old_branch, new_branch))
    return pairs


def _resolved(schema: Schema, root: Schema) -> Schema:
    """A schema with its `$ref` (to the root's `$defs`) replaced by what it names."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return schema
    named = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return {**named, **{key: value for key, value in schema.items() if key != "$ref"}}
