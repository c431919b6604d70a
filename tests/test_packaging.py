"""The wheel installs one namespace, `corpusmill`, and nothing generic like `pipeline` or `cli`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_the_corpusmill_namespace(tmp_path: Path):
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dirs = pyproject["tool"]["setuptools"]["package-dir"]
    src = tmp_path / "src"
    src.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(REPO / name, src / name)
    for folder in package_dirs.values():
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("corpusmill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {name.split("/")[0] for name in names}
    assert top_levels == {"corpusmill", wheel.name.split("-py")[0] + ".dist-info"}
    for package, folder in package_dirs.items():
        module_path = package.replace(".", "/")
        shipped = {
            n.removeprefix(module_path + "/") for n in names if n.startswith(module_path + "/")
        }
        on_disk = {str(p.relative_to(REPO / folder)) for p in (REPO / folder).rglob("*.py")}
        assert shipped == on_disk, "list every subpackage in [tool.setuptools] packages"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "corpusmill = corpusmill.cli.main:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
