"""Filters users write in their own modules and name in the config, as [[filters.custom]] tables.

A user's filter is a function `rule(docs, **params)`, or a class built as `rule = Rule(**params)`
and called as `rule(docs)`. `docs` is a pyarrow Table of documents (the columns of
pipeline/schema.py's DOCUMENTS); it returns a keep mask, one bool per row, or the pair
(keep, reasons), a string per row read only where the row is removed. Removed rows are reported
as "<name>:<reason>" ("<name>:removed" without a reason), as the built-in filters' are.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import Checked, show_value
from corpusmill.core.errors import ConfigError
from corpusmill.pipeline.filters.base import FilterResult, Splits
from corpusmill.pipeline.schema import DOCUMENTS

# The reason of a removed row whose filter gave none.
DEFAULT_REASON = "removed"


class FilterOutputError(ValueError):
    """A user's filter returned something other than a keep mask (and reasons) for its table."""


class Params(dict):
    """A filter's parameters as TOML gives them, frozen: its arrays as tuples, tables as Params."""

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__((key, _frozen(value)) for key, value in dict(items).items())

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return Params, (dict(self),)

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key} = {show_value(value)}" for key, value in self.items()) + "}"

    def _frozen_error(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a filter's parameters do not change once the config is loaded")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = (
        _frozen_error
    )


def _frozen(value: Any) -> Any:
    """A TOML value that cannot change: arrays as tuples, tables as Params."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return Params(value) if isinstance(value, Mapping) else value


def _importable(target: str, _: object) -> str | None:
    """Allow "module:attribute" naming a function or class that imports."""
    try:
        load(target)
    except ConfigError as exc:
        return str(exc)
    return None


def _identifier(name: str, _: object) -> str | None:
    """Allow names that can prefix a reason: Python identifiers."""
    if name.isidentifier():
        return None
    return "must be a Python identifier (letters, digits and _), as it prefixes the reasons"


def _accepted(params: Params, config: CustomFilterConfig) -> str | None:
    """Allow parameters the filter takes, with which it answers a table of no documents."""
    no_docs = DOCUMENTS.empty_table()
    try:
        verdict(config.name, no_docs, rule_of(config.callable, params)(no_docs))
    except (ConfigError, FilterOutputError) as exc:
        return str(exc)
    except Exception as exc:  # the user's code, on an empty table
        return (
            f"{config.callable} raised {type(exc).__name__} ({exc}) on a table of no documents; "
            "a filter must answer a table of any number of rows"
        )
    return None


@dataclass(frozen=True)
class CustomFilterConfig(Checked):
    """One [[filters.custom]] table: a filter of the user's own, its name and its parameters."""

    callable: str = field(
        metadata={
            "help": 'the filter, "module:attribute" naming a function or a class',
            "checks": (_importable,),
        }
    )
    name: str = field(
        default="",
        metadata={
            "help": "the prefix of its reasons; the function's or class's name by default",
            "checks": (_identifier,),
        },
    )
    params: Mapping[str, Any] = field(
        default_factory=Params,
        metadata={"help": "its keyword arguments, a table", "checks": (_accepted,)},
    )

    def __post_init__(self) -> None:
        """Freeze the parameters and name the filter after its attribute if unnamed; check."""
        object.__setattr__(self, "params", Params(self.params))
        attribute = self.callable.rpartition(":")[2].rpartition(".")[2]
        object.__setattr__(self, "name", self.name or attribute)
        super().__post_init__()


class Custom:
    """A user's filter, run as the built-in ones are: on the rows the filters before it kept."""

    def __init__(self, config: CustomFilterConfig):
        self.name = config.name
        try:
            self.rule = rule_of(config.callable, config.params)
        except ConfigError as exc:
            raise ConfigError(f"filter {config.name} ({config.callable}): {exc}") from None

    def __call__(self, docs: pa.Table, splits: Splits | None = None) -> FilterResult:
        return verdict(self.name, docs, self.rule(docs))


def load(target: str) -> Callable[..., Any]:
    """The function or class "module:attribute" names; ConfigError saying why it cannot be had."""
    module_name, colon, attribute = target.partition(":")
    if not (module_name and colon and attribute):
        raise ConfigError('must be "module:attribute", like "mypkg.quality:no_lorem"')
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name} ({exc}); install it, or add its folder to PYTHONPATH "
            "where the run starts (and on every worker of a cluster of your own)"
        ) from None
    except Exception as exc:  # the user's module failed as it ran
        raise ConfigError(f"importing {module_name} raised {type(exc).__name__}: {exc}") from None
    try:
        found = functools.reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise ConfigError(f"module {module_name} has no attribute {attribute}") from None
    if not callable(found):
        raise ConfigError(f"{attribute} in {module_name} is not a function or a class")
    return found


def rule_of(target: str, params: Mapping[str, Any]) -> Callable[[pa.Table], Any]:
    """What "module:attribute" names, ready to call on a table: a function given `params`, or a
    class's instance built with them; ConfigError if it does not take them."""
    found = load(target)
    is_class = isinstance(found, type)
    docs = () if is_class else (None,)
    try:
        inspect.signature(found).bind(*docs, **params)
    except TypeError as exc:
        takes = ", ".join(list(inspect.signature(found).parameters)[len(docs) :]) or "none"
        raise ConfigError(
            f"{target} does not take these ({exc}); its parameters: {takes}"
        ) from None
    if not is_class:
        return functools.partial(found, **params)
    try:
        rule = found(**params)
    except Exception as exc:  # the user's class refused its parameters
        raise ConfigError(f"{target}(...) raised {type(exc).__name__}: {exc}") from None
    if not callable(rule):
        raise ConfigError(f"{target} has no __call__(self, docs); a filter class needs one")
    return rule


def verdict(name: str, docs: pa.Table, returned: Any) -> FilterResult:
    """What filter `name` returned for `docs`, as the built-in filters answer; FilterOutputError
    if it is not a keep mask, or the pair (keep, reasons), of one value per row."""
    if isinstance(returned, tuple) and len(returned) != 2:
        raise FilterOutputError(
            f"filter {name} returned {len(returned)} values; return keep, or (keep, reasons)"
        )
    keep, reasons = returned if isinstance(returned, tuple) else (returned, None)
    keep = _keep_mask(name, keep, docs.num_rows)
    named = pc.binary_join_element_wise(
        name, pc.fill_null(_reasons(name, reasons, docs.num_rows), DEFAULT_REASON), ":"
    )
    return FilterResult(keep, pc.if_else(pa.array(keep), pa.scalar(None, pa.string()), named))


def _keep_mask(name: str, keep: Any, num_rows: int) -> np.ndarray:
    """A filter's keep mask as numpy bools, one per row."""
    if isinstance(keep, pa.ChunkedArray):
        keep = keep.combine_chunks()
    if isinstance(keep, pa.Array):
        if keep.null_count:
            raise FilterOutputError(
                f"filter {name} returned a keep mask with {keep.null_count} nulls; fill them "
                "(pyarrow.compute.fill_null) with whether such a row is kept"
            )
        keep = keep.to_numpy(zero_copy_only=False)
    mask = np.asarray(keep)
    if mask.shape == (0,):  # an empty list, say: no row to judge
        mask = mask.astype(np.bool_)
    if mask.dtype != np.bool_ or mask.shape != (num_rows,):
        got = f"{len(mask)} values of type {mask.dtype}" if mask.ndim == 1 else f"{keep!r:.40}"
        raise FilterOutputError(
            f"filter {name} returned {got} for {num_rows} documents; return a keep mask, one "
            "bool per row (or the pair keep, reasons)"
        )
    return mask


def _reasons(name: str, reasons: Any, num_rows: int) -> pa.Array:
    """A filter's reasons as strings, one per row (nulls when it gave none)."""
    if reasons is None:
        return pa.nulls(num_rows, pa.string())
    try:
        strings = pa.array(reasons, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        raise FilterOutputError(
            f"filter {name} returned reasons that are not strings; return one string per row"
        ) from None
    if len(strings) != num_rows:
        raise FilterOutputError(
            f"filter {name} returned {len(strings)} reasons for {num_rows} documents; return "
            "one string per row (read only where a row is removed)"
        )
    return strings
