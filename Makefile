# One command sets everything up and runs the demo; one sets up and passes the tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-security meta-schema clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Benchmark-only packages the tests also exercise (the AgentDojo generator and live defense).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) benchmarks/agentdojo/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/agentdojo/requirements.txt
	@touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check intentguard tests benchmarks examples
	$(BIN)/ruff format --check intentguard

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck $(BENCH_STAMP)
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/latency.py --out benchmarks/results/latency.json

# The AgentDojo security benchmark: a benchmark-only dependency, pinned; traces are committed,
# regenerated here so the figures always come from the pinned package.
bench-security: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.agentdojo.generate --all
	$(BIN)/python -m benchmarks.agentdojo.evaluate --out benchmarks/results/agentdojo.json

meta-schema: $(STAMP)
	$(BIN)/python -m intentguard.schema > intentguard/meta/intent-schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
