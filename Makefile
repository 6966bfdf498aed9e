PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs what running needs; `make test` adds the test tools and Ray (its tests run for real)
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench train lint clean

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
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "make: no Chromium, and no root to install it: the HTML views' browser tests are skipped"
	$(BIN)/ruff check pipeline cli.py tests bench
	$(BIN)/pytest -q

bench: $(TEST_STAMP)
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/speed.py

# The learned cleaner from the shared data (docs/model.md): render and label every page (two renderers a process,
# on two cores), then train with grouped cross-validation; SOURCES=wcxb,readability for the permissive sources only
TRAIN_DATA := bench/.cache/train_data
train: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[train]'
	$(BIN)/python bench/train_data.py --renderers bs4,inscriptis --out $(TRAIN_DATA)/a $(if $(SOURCES),--sources $(SOURCES)) & \
	pid=$$!; \
	$(BIN)/python bench/train_data.py --renderers html2text,lxml --out $(TRAIN_DATA)/b $(if $(SOURCES),--sources $(SOURCES)) \
		&& wait $$pid
	$(BIN)/python bench/train_cleaner.py --data $(TRAIN_DATA) $(if $(SOURCES),--sources $(SOURCES))

clean:
	rm -rf cleaned/documents cleaned/duplicates cleaned/rejects cleaned/report.json cleaned/_state
