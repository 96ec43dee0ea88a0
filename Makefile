# Two commands on a fresh machine with Python >= 3.12 and pip:
#   make run    fit 1999-2016, write the outputs (creates .venv if missing)
#   make test   run the test suite               (creates .venv if missing)
#   (make test-pure: the pure tier in under a minute; make test-slow: the statistical tests)
PY ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test test-pure test-slow test-slurm bench card lint lock clean-venv check-installed screenshots docs

$(STAMP): requirements.lock pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "nkdefections needs Python >= 3.12 (found " + sys.version.split()[0] + "); install it, or run: make PY=/path/to/python3.12 ...")'
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/nkdefections $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

test-pure: $(STAMP)
	$(BIN)/python -m pytest -m pure $(ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(ARGS)

test-slurm: $(STAMP)  ## start a one-node SLURM here (root; installs slurm-wlm + munge), run a 4-job sweep through hydra/launcher=slurm, stop it
	NK_PYTHON=$(abspath $(BIN))/python scripts/slurm/test_slurm.sh

bench: $(STAMP)  ## fit, forecast + sweep, backtest, explorer benchmarks (each prints ratios against a baseline measured in the same run)
	$(BIN)/python benchmarks/run.py $(ARGS)
	$(BIN)/python benchmarks/forecast.py $(ARGS)
	$(BIN)/python benchmarks/backtest.py
	$(BIN)/python benchmarks/explore.py

screenshots: $(STAMP)  ## docs/explorer.png: the scenario explorer in headless chromium at 1280 px (the cached default fit)
	$(BIN)/python scripts/screenshot_explorer.py $(ARGS)

card: $(STAMP)  ## every check (fit, PPC, backtest, baselines, comparison, SBC, sensitivity, nowcast) -> outputs/model-card/MODEL_CARD.md
	$(BIN)/nkdefections-evidence card $(ARGS)

check-installed: $(STAMP)  ## build the wheel, install it into a fresh venv, run the documented commands outside the clone
	PY=$(PY) PIP_PY=$(BIN)/python scripts/check_installed.sh

docs: $(STAMP)  ## the documentation site -> build/site, strict: a broken link, anchor or reference fails (executes the tutorial)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict $(ARGS)

lint: $(STAMP)  ## ruff, then the import contracts of pyproject.toml [tool.importlinter] (layers, no hydra/pymc where they do not belong)
	$(BIN)/ruff check src tests benchmarks experiments scripts
	$(BIN)/lint-imports

lock:  ## regenerate the pinned set after changing dependencies
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^nkdefections' > requirements.lock

clean-venv:
	rm -rf $(VENV)
