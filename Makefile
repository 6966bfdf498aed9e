PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs what running needs; `make test` adds the test tools and Ray (its tests run for real)
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(TEST_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/pagewash run raw/ -o cleaned/

test: $(TEST_STAMP)
	$(BIN)/ruff check pipeline cli.py tests bench
	$(BIN)/pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/speed.py

clean:
	rm -rf cleaned/documents cleaned/duplicates cleaned/rejects cleaned/report.json cleaned/_state
