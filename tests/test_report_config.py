"""The report command refuses a nonsense flag value before any work, in one line that names the
key, the value and what is allowed (train's are in test_bad_artifacts.py); configs built in code
refuse a count that is not a whole number."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusmill.cli.main import main
from corpusmill.core.checks import ConfigValueError
from corpusmill.report.config import ReportConfig
from corpusmill.train.loop import TrainConfig


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--discount", "1"], "discount = 1.0: must be less than 1"),
        (["--discount", "0"], "discount = 0.0: must be greater than 0"),
        (["--ngram-order", "4"], "ngram_order = 4: must be from 1 to 3"),
        (["--train-bytes", "0"], "train_bytes = 0: must be at least 1"),
        (["--top-tokens", "-1"], "top_tokens = -1: must be at least 0"),
    ],
)
def test_report_refuses_a_bad_flag_in_one_line_naming_it(tmp_path: Path, capsys, flags, message):
    assert main(["report", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert f"command line: {message}" in err and "\n" not in err


def test_configs_built_in_code_refuse_a_count_that_is_not_a_whole_number():
    with pytest.raises(ConfigValueError, match="seq_len = 2.5: must be an integer"):
        TrainConfig(seq_len=2.5)
    with pytest.raises(ConfigValueError, match="ngram_order = true: must be an integer"):
        ReportConfig(ngram_order=True)
