"""A fast decoder for a pydantic model: a msgspec Struct made from the model's own fields, so
each wire value is spelled once (as its model) and still decodes in a fifth of the time.

Only what the contract's models use is translated: strict ints and strings, their bounds,
optional values, lists and nested models. Anything else is refused when the decoder is made,
so a new kind of field cannot quietly decode otherwise than its model validates it.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, cast, get_args, get_origin

import msgspec
from pydantic import BaseModel, Strict
from pydantic.fields import FieldInfo

# The bounds pydantic keeps in a field's metadata (annotated-types' Ge, Le, MinLen, MaxLen),
# each an attribute of the same name as msgspec.Meta's argument.
BOUNDS = ("ge", "le", "min_length", "max_length")


def decoder_of(model: type[BaseModel]) -> msgspec.json.Decoder[Any]:
    """A decoder that takes what `model` takes (strict types, the same bounds, extra fields
    ignored), into a Struct with the model's fields."""
    return msgspec.json.Decoder(struct_of(model))


def struct_of(model: type[BaseModel]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        kind = _translated(info.annotation, info.metadata)
        if info.is_required():
            fields.append((name, kind))
        elif info.default_factory is not None:
            factory = cast(Callable[[], Any], info.default_factory)
            fields.append((name, kind, msgspec.field(default_factory=factory)))
        else:
            fields.append((name, kind, info.default))
    return msgspec.defstruct(model.__name__, fields, kw_only=True, module=model.__module__)


def _translated(annotation: Any, metadata: list[Any]) -> Any:
    """The msgspec type of a field's annotation and its pydantic metadata."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _translated(base, [*extra, *metadata])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind: Any = struct_of(annotation)
    elif origin is list:
        kind = list[_translated(get_args(annotation)[0], [])]  # type: ignore[misc]
    elif origin in (Union, types.UnionType):
        kind = functools.reduce(operator.or_, [_translated(a, []) for a in get_args(annotation)])
    elif annotation in (int, str):
        if not any(isinstance(m, Strict) for m in metadata):
            raise TypeError(f"{annotation.__name__} must be strict, as msgspec's is")
        kind = annotation
    elif annotation is types.NoneType:
        kind = annotation
    else:
        raise TypeError(f"no msgspec translation for {annotation!r}")
    bounds = _bounds(metadata)
    return Annotated[kind, msgspec.Meta(**bounds)] if bounds else kind


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            bounds.update(_bounds(item.metadata))
            continue
        named = {bound: getattr(item, bound) for bound in BOUNDS if hasattr(item, bound)}
        if not named and not isinstance(item, Strict):
            raise TypeError(f"no msgspec translation for {item!r}")
        bounds.update(named)
    return bounds
