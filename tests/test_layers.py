"""Each package imports only from its own layer and those below it (style.md, "Layers"), and no
two packages import each other; the imports are read from the source, not run, and an import
inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lowest first: core, the shard format and run layout (the loader), the tokenizer, the pipeline,
# training and the report, the command line.
LAYERS = {"core": 1, "loader": 2, "tokenizer": 3, "pipeline": 4, "train": 5, "report": 5, "cli": 6}


def test_every_package_has_a_layer():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(pyproject["tool"]["setuptools"]["package-dir"].values()) == set(LAYERS)


def test_packages_import_only_their_layer_and_those_below():
    wrong = [
        f"{path} (layer {LAYERS[package]}) imports {imported} (layer {LAYERS[target]})"
        for package, target, path, imported in _imports_between_packages()
        if LAYERS[target] > LAYERS[package]
    ]
    assert wrong == []


def test_no_two_packages_import_each_other():
    edges = {(package, target) for package, target, _, _ in _imports_between_packages()}
    mutual = sorted(f"{a} <-> {b}" for a, b in edges if a < b and (b, a) in edges)
    assert mutual == []


def _imports_between_packages() -> Iterator[tuple[str, str, str, str]]:
    """(package, package it imports, file, module imported) for every import of one corpusmill
    package's module by another's."""
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            for imported in _corpusmill_imports(path, package):
                target = imported.split(".")[1]
                assert target in LAYERS, f"{path}: {imported} is in no layer; give it one"
                if target != package:
                    yield package, target, str(path.relative_to(REPO)), imported


def _corpusmill_imports(path: Path, package: str) -> Iterator[str]:
    """The corpusmill modules that the module at `path` of `package` imports, as absolute dotted
    names, relative imports resolved."""
    parts = path.relative_to(REPO / package).with_suffix("").parts
    module = ["corpusmill", package, *parts]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module[: len(module) - node.level] if node.level else []
            start = ".".join([*base, *filter(None, [node.module])])
            # `from corpusmill import pipeline` imports a package; any other, from one module.
            names = [f"{start}.{a.name}" for a in node.names] if start == "corpusmill" else [start]
        else:
            continue
        yield from (name for name in names if name.startswith("corpusmill."))
