# Everything runs inside .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU build (offline wheel here); see pyproject's "gp" extra.
	$(BIN)/python -m pip install --quiet -e '.[dev,gp,postgres,dashboard]'
	touch $(STAMP)

install: $(STAMP)

# The main job: a study over the course's CNN on the embedded synthetic handwriting.
run: $(STAMP)
	$(BIN)/tune run casia_cnn

# The whole suite, slow and service-backed tests included (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check tuner tests bench tools
	$(BIN)/ruff format --check tuner tests bench tools
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format tuner tests bench tools
	$(BIN)/ruff check --fix tuner tests bench tools

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
