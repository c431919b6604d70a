"""Run configuration: frozen dataclasses with defaults, read from TOML, every key also a CLI flag.

Precedence is defaults < config files (in the order given) < command-line flags. Relative paths
in a config file are resolved against that file's folder, so a config works from any directory;
those given as flags, and the defaults, against the working folder. A key may hold a list of
tables ([[filters.custom]]), which only config files set.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from corpusmill.core.checks import NON_NEGATIVE, Checked, ConfigValueError
from corpusmill.core.errors import ConfigError
from corpusmill.core.storage import ObjectPath, StorageConfig, location
from corpusmill.pipeline.dedup import DedupConfig
from corpusmill.pipeline.dedup.lines import LinesConfig
from corpusmill.pipeline.filters import FiltersConfig
from corpusmill.pipeline.langid import LangIdConfig
from corpusmill.pipeline.pii import PiiConfig
from corpusmill.pipeline.readers import ReadConfig, printable
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig


@dataclass(frozen=True)
class RunConfig(Checked):
    """Everything `corpusmill run` reads; each stage adds its own section as a nested dataclass."""

    inputs: tuple[str, ...] = field(
        default=(),
        metadata={"help": "input files, folders, globs or fsspec URLs", "path": True},
    )
    out: str = field(default="out", metadata={"help": "output folder", "path": True})
    scheduler: str = field(
        default="",
        metadata={"help": "address of an existing Dask scheduler; empty starts a local cluster"},
    )
    workers: int = field(
        default=0,
        metadata={
            "help": "local cluster worker processes; 0 means one per core",
            "checks": (NON_NEGATIVE,),
        },
    )
    storage: StorageConfig = field(default_factory=StorageConfig)
    read: ReadConfig = field(default_factory=ReadConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    lines: LinesConfig = field(default_factory=LinesConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)

    def __post_init__(self) -> None:
        """Check each section, then that the quality keeper has the perplexity it ranks by, in
        the stored signals."""
        super().__post_init__()
        if self.dedup.keeper == "quality" and not self.filters.perplexity.enabled:
            raise ConfigValueError(
                "dedup.keeper",
                self.dedup.keeper,
                "ranks duplicates by their perplexity, which filters.perplexity.reference is "
                'needed for; name a reference text there, or choose "first" or "longest"',
            )
        if self.dedup.keeper == "quality" and not self.filters.store_signals:
            raise ConfigValueError(
                "dedup.keeper",
                self.dedup.keeper,
                "reads each document's perplexity from OUT/signals/, which "
                "filters.store_signals = false leaves out; store them, or choose another keeper",
            )


@dataclass(frozen=True)
class ConfigKey:
    """One leaf of a config dataclass tree: its dotted key, Python type, default and help."""

    key: str
    type: Any
    default: Any
    help: str
    is_path: bool

    @property
    def table_list(self) -> type | None:
        """The config dataclass of each item if the key holds a list of TOML tables
        ([[filters.custom]]), else None."""
        items = typing.get_args(self.type)
        is_tuple = typing.get_origin(self.type) is tuple
        return items[0] if is_tuple and dataclasses.is_dataclass(items[0]) else None


def config_keys(cls: type = RunConfig, prefix: str = "") -> Iterator[ConfigKey]:
    """Yield every leaf key of a config dataclass, depth first, in declaration order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from config_keys(kind, f"{prefix}{f.name}.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            yield ConfigKey(
                key=prefix + f.name,
                type=kind,
                default=default,
                help=f.metadata.get("help", ""),
                is_path=f.metadata.get("path", False),
            )


def load_config(
    files: Sequence[str | Path | ObjectPath] = (), overrides: Mapping[str, Any] | None = None
) -> RunConfig:
    """Build the effective config from TOML files (local paths, or a run's config.toml on an
    object store), then flag overrides given as dotted keys; a value its key does not allow is a
    ConfigError naming the key and where it was set. Every local path comes out absolute."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in files:
        for key, value in _read_toml(location(path)).items():
            values[key], sources[key] = value, f"config file {path}"
    for key, value in (overrides or {}).items():
        values[key] = _coerce(key, value, _keys_by_name()[key], "command line")
        sources[key] = "command line"
    # A config file's paths are already absolute, resolved against its folder.
    for spec in config_keys():
        if spec.is_path:
            values[spec.key] = _resolve_paths(values.get(spec.key, spec.default), Path.cwd())
    try:
        return _build(RunConfig, values)
    except ConfigValueError as exc:
        # An item of a list of tables is set where its list is.
        key = exc.key.partition("[")[0]
        # A default can fail by a key of its section the user set: a minimum above their maximum.
        section = key.rpartition(".")[0]
        nearby = [where for name, where in sources.items() if name.rpartition(".")[0] == section]
        source = sources.get(key) or (nearby[-1] if nearby else "")
        raise exc.located(source=source, default=key not in sources) from None


def config_to_toml(config: RunConfig) -> str:
    """Render a config as TOML that `load_config` reads back to an equal config (but a name that
    is not UTF-8, which TOML cannot hold: it is escaped, see `printable`)."""
    return tomli_w.dumps(_scalars_first(_as_dict(config)))


def flat_config(config: RunConfig) -> dict[str, Any]:
    """Every key of a config as {dotted key: value} as `config_to_toml` writes it, for comparing
    two configs."""
    return dict(_flatten(_as_dict(config)))


# Keys that never change what a run writes: where it executes, where its output goes, how the
# storage is reached, and the spelling of its inputs (the files they resolve to are compared
# instead, in OUT/inputs.json).
_UNCOMPARED_KEYS = frozenset(
    {
        "scheduler",
        "workers",
        "out",
        "inputs",
        "storage.endpoint_url",
        "storage.region",
        "storage.anon",
    }
)


def changed_keys(old: RunConfig, new: RunConfig) -> list[str]:
    """The keys whose values differ between two configs, but those that never change output."""
    before, after = flat_config(old), flat_config(new)
    return sorted(
        key
        for key in before.keys() | after.keys()
        if key not in _UNCOMPARED_KEYS and before.get(key) != after.get(key)
    )


def _as_dict(config: RunConfig) -> dict[str, Any]:
    """A config as nested dicts, its strings printable; an empty list of tables is left out, as
    TOML writes no [[table]] for it (and a config without one keeps the bytes it had)."""
    data = _printable_strings(dataclasses.asdict(config))
    for spec in config_keys():
        *sections, name = spec.key.split(".")
        section = functools.reduce(dict.__getitem__, sections, data)
        if spec.table_list and not section[name]:
            del section[name]
    return data


def _printable_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _printable_strings(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_printable_strings(item) for item in value)
    return printable(value) if isinstance(value, str) else value


def _read_toml(path: Path | ObjectPath) -> dict[str, Any]:
    """Read one config file into dotted keys, checking names and types and resolving paths."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} is "
            f"{exc.object[exc.start]:#x}); TOML files are UTF-8: save it in that encoding"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    keys = _keys_by_name()
    values = {}
    for dotted, value in _flatten(data):
        if any(key.startswith(dotted + ".") for key in keys):
            raise ConfigError(
                f"config file {path}: '{dotted}' is a section, not a value; write [{dotted}] "
                "and its keys under it"
            )
        if dotted not in keys:
            raise ConfigError(f"config file {path}: {_unknown_key(dotted, keys)}")
        spec = keys[dotted]
        value = _coerce(dotted, value, spec, f"config file {path}")
        if spec.is_path:
            value = _resolve_paths(value, path.parent)
        values[dotted] = value
    return values


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Turn nested TOML tables into (dotted key, value) pairs."""
    for name, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield prefix + name, value


def _unknown_key(dotted: str, keys: Mapping[str, ConfigKey]) -> str:
    """Why `dotted` is not a key, and the key meant."""
    for key, spec in keys.items():
        if spec.table_list and dotted.startswith(key + "."):
            return f"'{key}' is a list of tables: write [[{key}]], in double brackets, above each"
    hint = difflib.get_close_matches(dotted, keys, n=1)
    return f"unknown key '{dotted}'" + (f"; did you mean '{hint[0]}'?" if hint else "")


def _coerce(key: str, value: Any, spec: ConfigKey, source: str) -> Any:
    """Check a value against the key's type, converting lists to tuples and ints to floats."""
    kind = spec.type
    if spec.table_list:
        return _coerce_tables(key, value, spec.table_list, source)
    if typing.get_origin(kind) is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        item_type = typing.get_args(kind)[0]
        return tuple(_coerce_scalar(key, item, item_type, source) for item in items)
    return _coerce_scalar(key, value, kind, source)


def _coerce_tables(key: str, value: Any, item: type, source: str) -> tuple[Any, ...]:
    """A list of TOML tables ([[key]]) as a tuple of `item` config dataclasses, each table's keys
    checked as a section's are; an error names the table as `key[index]`."""
    if not isinstance(value, list | tuple) or not all(isinstance(t, Mapping) for t in value):
        raise ConfigError(f"{source}: '{key}' is a list of tables: write [[{key}]] above each")
    fields = {f.name: f for f in dataclasses.fields(item)}
    hints = typing.get_type_hints(item)
    items = []
    for index, table in enumerate(value):
        where = f"{key}[{index}]"
        if unknown := sorted(table.keys() - fields.keys()):
            raise ConfigError(
                f"{source}: unknown key '{where}.{unknown[0]}'; its keys are {', '.join(fields)}"
            )
        required = [name for name, f in fields.items() if _is_required(f) and name not in table]
        if required:
            raise ConfigError(f"{source}: {where} has no '{required[0]}', which it needs")
        kwargs = {
            name: _coerce_scalar(f"{where}.{name}", v, hints[name], source)
            for name, v in table.items()
        }
        try:
            items.append(item(**kwargs))
        except ConfigValueError as exc:
            raise exc.located(f"{where}.", source) from None
    return tuple(items)


def _is_required(spec: dataclasses.Field) -> bool:
    """Whether a config dataclass field has no default."""
    missing = dataclasses.MISSING
    return spec.default is missing and spec.default_factory is missing


def _coerce_scalar(key: str, value: Any, kind: Any, source: str) -> Any:
    """Accept a value of exactly the declared scalar type (an int also serves as a float, a
    TOML table as a Mapping)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    accepted = typing.get_origin(kind) or kind
    if isinstance(value, accepted) and not (kind is int and isinstance(value, bool)):
        return value
    name = "table" if accepted is Mapping else kind.__name__
    raise ConfigError(f"{source}: key '{key}' must be of type {name}, got {value!r}")


def _resolve_paths(value: Any, base: Path | ObjectPath) -> Any:
    """Local paths made absolute against `base` (relative ones) and resolved, or made URLs below
    a `base` URL; URLs and empty paths stay."""
    if isinstance(value, tuple):
        return tuple(_resolve_paths(item, base) for item in value)
    if not value or "://" in value:
        return value
    if isinstance(base, ObjectPath):
        return value if value.startswith("/") else str(base / value)
    return str((base / value).resolve())


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Instantiate a config dataclass tree from dotted-key values, defaults elsewhere."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        dotted = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, dotted + ".")
        elif dotted in values:
            kwargs[f.name] = values[dotted]
    try:
        return cls(**kwargs)
    except ConfigValueError as exc:
        raise exc.located(prefix) from None


def _scalars_first(data: dict[str, Any]) -> dict[str, Any]:
    """Order keys so plain values precede sub-tables, as TOML requires at each level."""
    scalars = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in data.items()
        if not isinstance(v, dict)
    }
    tables = {k: _scalars_first(v) for k, v in data.items() if isinstance(v, dict)}
    return {**scalars, **tables}


def _keys_by_name() -> dict[str, ConfigKey]:
    """All config keys by dotted name."""
    return {spec.key: spec for spec in config_keys()}
