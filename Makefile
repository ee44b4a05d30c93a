# One command sets everything up and runs the demo; one sets up and passes the tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Framework adapters, each its own distribution under integrations/, installed beside the core.
INTEGRATIONS := $(patsubst %/pyproject.toml,%,$(wildcard integrations/*/pyproject.toml))

.PHONY: demo quickstart test lint typecheck system-deps bench bench-security meta-schema divergence-model clean

$(STAMP): pyproject.toml $(wildcard integrations/*/pyproject.toml)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach d,$(INTEGRATIONS),-e $(d))
	@touch $(STAMP)

# Benchmark-only packages the tests also exercise (the AgentDojo generator and live defense).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) benchmarks/agentdojo/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/agentdojo/requirements.txt
	@touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/langchain_support_agent.py

quickstart: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check intentguard integrations tests benchmarks examples
	$(BIN)/ruff format --check intentguard integrations

typecheck: $(STAMP)
	$(BIN)/mypy

# Services and programs the tests run for real: redis-server (registry, audit stream) and
# Debian's headless Chromium (the HTML report renders in it). Installed when missing and root.
SYSTEM_DEPS := redis-server chromium
system-deps:
	@missing=""; for p in $(SYSTEM_DEPS); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "need$$missing on PATH (apt-get install$$missing)"; exit 1; fi; \
	fi

test: lint typecheck system-deps $(BENCH_STAMP)
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term $(PYTEST_ARGS)

# Every benchmarks/bench_*.py merges its own keys into the same results file.
BENCH_SCRIPTS := $(wildcard benchmarks/bench_*.py)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.latency --out benchmarks/results/latency.json
	@for b in $(BENCH_SCRIPTS); do echo "$$b"; $(BIN)/python -m benchmarks.$$(basename $$b .py) --out benchmarks/results/latency.json || exit 1; done

# The AgentDojo security benchmark: a benchmark-only dependency, pinned; traces are committed,
# regenerated here so the figures always come from the pinned package.
bench-security: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.agentdojo.generate --all
	$(BIN)/python -m benchmarks.agentdojo.evaluate --out benchmarks/results/agentdojo.json
	$(BIN)/python -m benchmarks.agentdojo.divergence_eval --out benchmarks/results/agentdojo.json

# Re-record the HTTP cassettes in tests/cassettes/: against the scripted OpenAI-compatible server
# by default, or against OPENAI_BASE_URL with OPENAI_API_KEY (and OPENAI_MODEL) when they are set.
.PHONY: record
record: $(STAMP)
	INTENTGUARD_RECORD=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m recorded

meta-schema: $(STAMP)
	$(BIN)/python -m intentguard.schema > intentguard/meta/intent-schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov

# The divergence model shipped in the package, trained on the committed AgentDojo traces (split by task).
divergence-model: $(STAMP)
	$(BIN)/python -m intentguard train benchmarks/agentdojo/traces/v1.1.2.jsonl benchmarks/agentdojo/traces/v1.2.2.jsonl \
		benchmarks/agentdojo/traces/synthetic.jsonl --schemas intent_schemas \
		--schemas benchmarks/agentdojo/schemas --resolver benchmarks.agentdojo.resolver:resolve \
		--out intentguard/models/divergence-v1.json
