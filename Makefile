# Two commands for a newcomer: `make demo` and `make test`.
# Both install from requirements.lock (exact versions, used as pip constraints); `make lock` refreshes it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN := runs/demo
ST := $(VENV)/bin/streamtrain

.PHONY: demo test check lint install install-test lock clean

$(PY):
	$(PYTHON) -c 'import sys; sys.exit("streamtrain needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install -q -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install -q -c requirements.lock -e '.[test,cluster]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(ST) prepare data/tickets_train.csv --test data/tickets_test.csv --data $(RUN)/data --overwrite
	$(ST) fit --data $(RUN)/data --model-dir $(RUN)/model --quiet
	$(ST) evaluate --data $(RUN)/data --model-dir $(RUN)/model
	@echo "report: $(RUN)/model/current/report.md (pictures beside it: training.png, confusion.png)"
	@echo "versions: $(ST) inspect $(RUN)/model; TensorBoard event files: $(RUN)/model/versions/*/tensorboard"
	@echo "serving: $(RUN)/model/current/saved_model takes raw text (README: Serving); in Python: streamtrain.load('$(RUN)/model')"

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Test files run in parallel, one process per core (--dist loadfile keeps a file's fixtures in one process).
test: lint
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15

# The fast loop while coding: the lint gate and every test not marked slow (tests/conftest.py says which), ~2 min.
check: lint
	$(PY) -m pytest -q -n auto --dist loadfile -m "not slow"

# Resolve the newest versions that pyproject.toml allows, in a scratch venv, and pin them all.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q '.[test,bench,cluster]'
	{ echo "# Exact versions that make demo / make test install (as pip constraints). Refresh: make lock"; \
	  echo "# Resolved with $$(.lock-venv/bin/python --version) on $$(uname -sm)."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^streamtrain[= @]'; } > requirements.lock
	rm -rf .lock-venv build

clean:
	rm -rf $(VENV) runs
