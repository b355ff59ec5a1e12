"""Reading a record's value: decoded fast by msgspec into a Struct made from its model, and
when msgspec refuses it, its model says why, in the words the web app uses too."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from pydantic import BaseModel, ValidationError

from pizzashop.contract.decoders import decoder_of


class ContractError(ValueError):
    """An event that does not follow the wire contract. It goes to the dead-letter topic."""


@functools.cache
def decoder(model: type[BaseModel]) -> msgspec.json.Decoder[Any]:
    return decoder_of(model)


def parse(model: type[BaseModel], value: bytes | None) -> Any:
    """A record's value, decoded into the Struct made from `model`."""
    if not value:
        raise ContractError("empty value")
    decoding = decoder(model)
    try:
        # As text: msgspec does not check the UTF-8 of a field it skips, and pydantic does.
        return decoding.decode(value.decode())
    except (msgspec.DecodeError, UnicodeDecodeError):
        # The model says why, in the words the web app uses too. It also takes the little
        # that msgspec alone refuses: NaN in an ignored field, a key repeated with a bad value
        # before its last (good) one.
        return msgspec.convert(_validated(model, value).model_dump(), decoding.type)


def _validated(model: type[BaseModel], value: bytes) -> BaseModel:
    try:
        return model.model_validate_json(value)
    except ValidationError as e:
        if e.errors()[0]["type"] == "json_invalid":
            raise ContractError(
                f"value is not UTF-8 JSON: {e.errors()[0]['ctx']['error']}"
            ) from None
        raise ContractError(_describe(e)) from None


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "value"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)
