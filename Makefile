# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export ORT_DISABLE_TELEMETRY := 1

.PHONY: install demo test lint format clean-venv model

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e '.[test]'
	# resemblyzer drags in the Python-2 era `typing` backport, which shadows the standard library.
	-$(BIN)/pip uninstall -y typing >/dev/null 2>&1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/voicebox demo --out demo-out

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: lint
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)

# Retrain the shipped model from scratch on this machine (resumable: rerun after an interruption).
# Needs ../shared/data (the train_* sets). Warm start: the synthetic-voice model of sessions 1-3 (git 32c27af).
INIT := runs/init-synthetic
model: $(STAMP)
	mkdir -p $(INIT)
	test -f $(INIT)/audio.pt || git show 32c27af:checkpoints/small/audio.pt > $(INIT)/audio.pt
	test -f $(INIT)/duration.pt || git show 32c27af:checkpoints/small/duration.pt > $(INIT)/duration.pt
	$(BIN)/voicebox data build --out data/real-v1 --workers 2
	$(BIN)/voicebox train --config configs/real.yaml --data data/real-v1 --part duration \
		--out runs/real-v1-duration --init $(INIT)/duration.pt --total-steps 2500 --threads 1
	$(BIN)/voicebox train --config configs/real.yaml --data data/real-v1 --part audio \
		--out runs/real-v1 --init $(INIT)/audio.pt --total-steps 4000 --threads 1
	$(BIN)/voicebox train --config configs/real.yaml --data data/real-v1 --part audio \
		--out runs/real-v2 --init runs/real-v1/audio.pt --total-steps 8000 --threads 1
	$(BIN)/voicebox train --config configs/real.yaml --data data/real-v1 --part audio \
		--out runs/real-v3 --init runs/real-v2/audio.pt --total-steps 8000 --steps 1000 --threads 1 \
		--set train.audio.lr=3.0e-4 --set train.audio.warmup_steps=150
	mkdir -p runs/real-v3n
	test -f runs/real-v3n/audio.state.pt || cp runs/real-v3/audio.state.pt runs/real-v3n/
	$(BIN)/voicebox train --config configs/real-native.yaml --data data/real-v1 --part audio \
		--out runs/real-v3n --total-steps 6500 --threads 1 \
		--set train.audio.lr=3.0e-4 --set train.audio.warmup_steps=150
	cp runs/real-v3n/audio.pt runs/real-v1-duration/duration.pt checkpoints/small/
	$(BIN)/voicebox train-adapter --out checkpoints/small/hifigan_adapter.pt \
		--run runs/hifigan-adapter --steps 16000 --threads 2
