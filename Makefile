# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN := runs/demo

.PHONY: demo test install install-test clean

$(PY):
	$(PYTHON) -c 'import sys; sys.exit("streamtrain needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(PY) -m streamtrain.prepare data/tickets_train.csv --test data/tickets_test.csv --out $(RUN)/data --overwrite
	$(PY) -m streamtrain.fit --data $(RUN)/data --model-dir $(RUN)/model --overwrite --quiet
	$(PY) -m streamtrain.evaluate --data $(RUN)/data --model-dir $(RUN)/model

test: install-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
