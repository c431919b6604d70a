"""Command-line flags generated from the config dataclasses, so every config key has a flag."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from corpusmill.core.checks import ConfigValueError
from corpusmill.core.errors import ConfigError
from corpusmill.pipeline.config import ConfigKey, RunConfig, config_keys

T = TypeVar("T")


def add_config_flags(
    parser: argparse.ArgumentParser,
    config: type = RunConfig,
    skip: tuple[str, ...] = (),
    title: str = "config keys (override the config files)",
    prefix: str = "",
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Add one `--section-name` flag per key of a config dataclass (top-level keys as `--name`),
    but the lists of tables, which only config files set; `config_overrides` collects the ones
    given, as dotted keys (under `prefix`)."""
    specs = list(config_keys(config, prefix))
    tables = [f"[[{spec.key}]]" for spec in specs if spec.table_list]
    only_files = f"{', '.join(tables)} tables are set in config files only, not by flags"
    group = parser.add_argument_group(title, only_files if tables else None)
    aliases = aliases or {}
    for spec in specs:
        if spec.key in skip or spec.table_list:
            continue
        group.add_argument(
            flag_name(spec.key),
            *aliases.get(spec.key, ()),
            dest=f"cfg:{spec.key}",
            default=argparse.SUPPRESS,
            help=f"{spec.help} (default: {_show_default(spec)})".replace("%", "%%"),
            **_argument_kind(spec),
        )


def flag_name(key: str) -> str:
    """`clean.min_words` -> `--clean-min-words`."""
    return "--" + key.replace(".", "-").replace("_", "-")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the user set on the command line, as dotted keys."""
    return {
        dest.removeprefix("cfg:"): value
        for dest, value in vars(args).items()
        if dest.startswith("cfg:")
    }


def config_from_flags(args: argparse.Namespace, config: type[T]) -> T:
    """A flat config dataclass with the top-level keys given on the command line; a value the
    dataclass rejects is a ConfigError."""
    overrides = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in config_overrides(args).items()
        if "." not in key
    }
    try:
        return dataclasses.replace(config(), **overrides)
    except ConfigValueError as exc:
        raise exc.located(source="command line", default=exc.key not in overrides) from None
    except ValueError as exc:  # a check of its own in the dataclass
        raise ConfigError(str(exc)) from None


def _argument_kind(spec: ConfigKey) -> dict[str, Any]:
    """argparse options that parse a key's type."""
    if spec.type is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(spec.type) is tuple:
        return {"nargs": "+", "type": typing.get_args(spec.type)[0], "metavar": "VALUE"}
    return {"type": spec.type, "metavar": spec.type.__name__.upper()}


def _show_default(spec: ConfigKey) -> str:
    """A default as a user would type it."""
    if isinstance(spec.default, tuple):
        return " ".join(map(str, spec.default)) or "none"
    return repr(spec.default) if spec.default == "" else str(spec.default)
