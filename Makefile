# The two set-up commands: `make demo` and `make test`. Both need only python3 (>= 3.11) and make.

PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "corpusmill needs python3 >= 3.11 on PATH (or PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --disable-pip-version-check -q -e '.[report]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -e '.[bench]'
	touch $@

DEMO := out/sample

demo: $(VENV)/.installed
	$(BIN)/corpusmill run configs/sample.toml
	$(BIN)/corpusmill train $(DEMO) --ckpt $(DEMO)/model.npz --steps 300
	$(BIN)/corpusmill sample $(DEMO)/model.npz --prompt "The" --tokens 60 --temperature 0.8
	$(BIN)/corpusmill report $(DEMO) --model $(DEMO)/model.npz
	@echo "output: $(DEMO) (deduplicated documents in dataset/, shards and index.json)"
	@echo "report: $(DEMO)/report/report.html (and report.md, report.json)"
	@echo "model:  $(DEMO)/model.npz"

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest; status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/extractors.py
	$(BIN)/python benchmarks/clean.py --skip-datatrove
	$(BIN)/python benchmarks/dedup.py
	$(BIN)/python benchmarks/tokenization.py
	$(BIN)/python benchmarks/loader.py
	$(BIN)/python benchmarks/run.py --skip-datatrove

clean:
	rm -rf $(VENV) out build *.egg-info
