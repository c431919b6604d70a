"""The checks of config values: a config dataclass lists them per field, and a value its key does
not allow fails where it is set, naming the key."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from corpusmill.core.errors import ConfigError

# A check of one config value: None if `value` is allowed in `config`, else what is allowed.
Check = Callable[[Any, Any], str | None]


class ConfigValueError(ConfigError):
    """A config value its key does not allow; `key` is dotted from the section that raised it,
    which `located` extends to the key as the user writes it."""

    def __init__(
        self, key: str, value: Any, problem: str, source: str = "", default: bool = False
    ) -> None:
        self.key, self.value, self.problem = key, value, problem
        where = f"{source}: " if source else ""
        note = " (the default)" if default else ""
        super().__init__(f"{where}{key} = {show_value(value)}{note}: {problem}")

    def located(
        self, prefix: str = "", source: str = "", default: bool = False
    ) -> ConfigValueError:
        """The same error with the key under `prefix` (a section path ending in "."), the source
        that set it or a key it depends on (a config file, the command line), and whether the
        value is the default."""
        return ConfigValueError(prefix + self.key, self.value, self.problem, source, default)


class Checked:
    """Base of the config dataclasses: on creation, every field passes the checks its metadata
    lists under "checks", so a nonsense value fails where it is set, naming its key."""

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            for check in item.metadata.get("checks", ()):
                if problem := check(value, self):
                    raise ConfigValueError(item.name, value, problem)


def at_least(low: float) -> Check:
    """Allow values of at least `low`."""
    return lambda value, _: None if value >= low else f"must be at least {low}"


def above(low: float) -> Check:
    """Allow values greater than `low`."""
    return lambda value, _: None if value > low else f"must be greater than {low}"


def between(low: float, high: float) -> Check:
    """Allow values from `low` to `high`, both included (NaN is not)."""
    return lambda value, _: None if low <= value <= high else f"must be from {low} to {high}"


def below(high: float) -> Check:
    """Allow values less than `high`."""
    return lambda value, _: None if value < high else f"must be less than {high}"


def finite(value: Any, _: Any) -> str | None:
    """Allow numbers that are neither infinite nor NaN, which the range checks let through."""
    return None if math.isfinite(value) else "must be a finite number"


def integer(value: Any, _: Any) -> str | None:
    """Allow whole numbers given as integers (not true or false)."""
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"


def not_above(other: str) -> Check:
    """Allow values at most the sibling key `other`'s, for a minimum and its maximum."""

    def check(value: Any, config: Any) -> str | None:
        limit = getattr(config, other)
        return None if value <= limit else f"must not exceed {other}, which is {limit}"

    return check


def one_of(*choices: str) -> Check:
    """Allow only the names in `choices`, for a key that picks one way of doing a thing."""
    listed = ", ".join(map(show_value, choices))
    return lambda value, _: None if value in choices else f"must be one of {listed}"


def distinct_nonempty(values: tuple[str, ...], _: Any) -> str | None:
    """Allow lists of non-empty, distinct strings."""
    if "" in values:
        return "must not hold an empty string"
    repeated = sorted({value for value in values if values.count(value) > 1})
    return f"names {', '.join(map(show_value, repeated))} more than once" if repeated else None


# The usual checks: a fraction; a count, length or ratio; a size that must be positive.
FRACTION = between(0, 1)
NON_NEGATIVE = at_least(0)
POSITIVE = above(0)
# The usual checks of a count and of a number: a whole count of at least 0 or 1, a finite rate.
COUNT = (integer, at_least(0))
SIZE = (integer, at_least(1))
FINITE_NON_NEGATIVE = (finite, at_least(0))
FINITE_POSITIVE = (finite, above(0))


def show_value(value: Any) -> str:
    """A config value as it is written in TOML."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(map(show_value, value)) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
