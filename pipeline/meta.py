"""An input record's own fields (the readers' JSON `meta`) as a typed Arrow struct, one type for a
whole run, so that every part of a dataset has the same schema.

A part's meta is read as JSON and given a kind: null, bool, int, float, string, a list of one kind
or a struct of named kinds. Kinds unify field by field (null gives way to anything, int to float,
structs to the union of their fields in the order first seen), and a field whose values' kinds do
not unify (a string here, a number there), an integer beyond int64 or an empty object holds each
value as JSON text instead, its Arrow field marked `{"encoding": "json"}`. The run's kind is the
parts' kinds unified in part order, so it never depends on which worker read which part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import reduce
from typing import Any, TypeAlias

import pyarrow as pa

# null (None), "bool", "int", "float", "string", "json", ("list", kind) or ("struct", {name: kind}).
Kind: TypeAlias = str | tuple[str, Any] | None

JSON_FIELD = {b"encoding": b"json"}
# Arrow's list item name as Parquet writes it, so a part reads back with the schema it was given.
_ITEM = "element"
_INT64 = range(-(1 << 63), 1 << 63)


def meta_kind(metas: Iterable[str | None]) -> Kind:
    """The kind of a column of JSON meta objects (None where a record has none)."""
    return reduce(unify, (_kind(_parsed(meta)) for meta in metas), None)


def unify(a: Kind, b: Kind) -> Kind:
    """The kind that holds values of kinds `a` and `b`; "json" when no other does."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if isinstance(a, str) and isinstance(b, str) and {a, b} == {"int", "float"}:
        return "float"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "list":
        return ("list", unify(a[1], b[1]))
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "struct":
        fields = dict(a[1])
        for name, kind in b[1].items():
            fields[name] = unify(fields.get(name), kind)
        return ("struct", fields)
    return "json"


def arrow_field(name: str, kind: Kind) -> pa.Field:
    """The Arrow field holding values of `kind` (an empty struct, which Parquet cannot store, is
    held as JSON text)."""
    if kind == "json" or kind == ("struct", {}):
        return pa.field(name, pa.string(), metadata=JSON_FIELD)
    if isinstance(kind, tuple):
        if kind[0] == "list":
            return pa.field(name, pa.list_(arrow_field(_ITEM, kind[1])))
        return pa.field(name, pa.struct([arrow_field(key, sub) for key, sub in kind[1].items()]))
    types = {None: pa.null(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
    return pa.field(name, types.get(kind, pa.string()))


def typed_meta(metas: Iterable[str | None], kind: Kind) -> pa.Array:
    """A column of JSON meta objects as an array of the type `arrow_field` gives `kind`."""
    field = arrow_field("meta", kind)
    return pa.array([_converted(_parsed(meta), field) for meta in metas], field.type)


def plain_meta(meta: pa.Array) -> list[Any]:
    """Each row of a typed meta column as Python data again, its JSON text fields decoded (a field
    absent from a record is None); a string column, as runs wrote before meta was typed, is JSON."""
    field = pa.field("meta", meta.type, metadata=JSON_FIELD if meta.type == pa.string() else None)
    return [_plain(value, field) for value in meta.to_pylist()]


def _parsed(meta: str | None) -> Any:
    """A meta JSON object as Python data, lone surrogates (escaped in the readers' JSON, invalid
    in Arrow's UTF-8) replaced by U+FFFD as the readers replace them in text."""
    if meta is None:
        return None
    value = json.loads(meta)
    return _valid(value) if "\\ud" in meta else value


def _valid(value: Any) -> Any:
    """`value` with every lone surrogate of its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_valid(item) for item in value]
    if isinstance(value, dict):
        return {_valid(key): _valid(item) for key, item in value.items()}
    return value


def _kind(value: Any) -> Kind:
    """The kind of one JSON value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if value in _INT64 else "json"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return ("list", reduce(unify, map(_kind, value), None))
    return ("struct", {key: _kind(item) for key, item in value.items()})


def _converted(value: Any, field: pa.Field) -> Any:
    """A JSON value as Arrow builds `field`'s type from Python data."""
    if value is None:
        return None
    if field.metadata == JSON_FIELD:
        return json.dumps(value, ensure_ascii=False)
    kind = field.type
    if pa.types.is_list(kind):
        return [_converted(item, kind.value_field) for item in value]
    if pa.types.is_struct(kind):
        return {sub.name: _converted(value.get(sub.name), sub) for sub in kind}
    return float(value) if pa.types.is_float64(kind) else value


def _plain(value: Any, field: pa.Field) -> Any:
    """A value read from `field` as the JSON value it was converted from."""
    if value is None:
        return None
    if field.metadata == JSON_FIELD:
        return json.loads(value)
    kind = field.type
    if pa.types.is_list(kind):
        return [_plain(item, kind.value_field) for item in value]
    if pa.types.is_struct(kind):
        return {sub.name: _plain(value[sub.name], sub) for sub in kind}
    return value
