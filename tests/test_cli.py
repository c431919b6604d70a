"""The `corpusmill` command line as a user runs it: help, planned commands, run's config handling."""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from corpusmill.cli.main import main
from corpusmill.core import progress

REPO = Path(__file__).resolve().parents[1]


def corpusmill(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the installed console script as a user would."""
    exe = Path(sys.executable).with_name("corpusmill")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


SUBCOMMANDS = [
    "run",
    "refilter",
    "train-tokenizer",
    "inspect",
    "train",
    "sample",
    "report",
    "export",
]


def test_help_lists_every_subcommand():
    result = corpusmill("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert f"\n    {name}" in result.stdout


def test_print_config_of_the_sample_config_is_valid_toml_with_absolute_inputs():
    result = corpusmill("run", "configs/sample.toml", "--print-config", "--workers", "2")
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["inputs"] == [
        str(REPO / "sample_data" / "*.gz"),
        str(REPO / "sample_data" / "*.zst"),
    ]
    assert printed["workers"] == 2
    assert printed["out"] == str(REPO / "out" / "sample")


def test_positional_inputs_replace_config_inputs(capsys):
    assert main(["run", "configs/sample.toml", "a.jsonl", "b.warc.gz", "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["inputs"] == [str(Path.cwd() / "a.jsonl"), str(Path.cwd() / "b.warc.gz")]


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("outt = 'x'\n")
    assert main(["run", str(bad), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"config file {bad}: unknown key 'outt'; did you mean 'out'?" in err


def test_verbosity_flags_work_before_and_after_the_subcommand(capsys):
    assert main(["-v", "run", "--print-config", "-q", "-q"]) == 0
    assert "out = " in capsys.readouterr().out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_renders(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: corpusmill {name}" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "shown"), [([], True), (["-v"], True), (["-q"], False)])
def test_progress_lines_are_logged_unless_quiet(flags: list[str], shown: bool):
    main([*flags, "run", "--print-config"])
    assert progress.log.isEnabledFor(logging.INFO) is shown


SPAWNING_SCRIPT = """
import multiprocessing
import sys

from corpusmill.cli import main

if __name__ == "__main__":
    if sys.argv[1:] == ["as-cli"]:
        main.spawn_without_script()
    import probe
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print(pool.apply(probe.cli_imported))
"""


@pytest.mark.parametrize("mode, imported", [("as-cli", "False"), ("plain", "True")])
def test_spawned_workers_skip_the_script(tmp_path, mode, imported):
    """A process the command spawns (a local cluster's worker) does not run the `corpusmill`
    script, which imports every subcommand; a plain script's children still run theirs."""
    (tmp_path / "probe.py").write_text(
        "import sys\n\ndef cli_imported():\n    return str('corpusmill.cli.main' in sys.modules)\n"
    )
    script = tmp_path / "script.py"
    script.write_text(SPAWNING_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == imported
