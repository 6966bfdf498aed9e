PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pagewash run raw/ -o cleaned/

test: $(STAMP)
	$(BIN)/ruff check pipeline cli.py tests bench
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/speed.py

clean:
	rm -rf cleaned/documents cleaned/duplicates cleaned/rejects cleaned/report.json cleaned/_state
