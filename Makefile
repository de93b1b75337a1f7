# Two commands on a fresh machine: `make demo` trains the built-in demo, `make test` runs the tests.
# Both first make the virtual environment .venv: PyTorch (the CPU build when no NVIDIA GPU answers),
# then this package, with the test extras for `make test`.

VENV ?= .venv
PYTHON ?= python3

.PHONY: demo test clean

demo: $(VENV)/.installed
	$(VENV)/bin/spikeformers train

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest -q

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	sh scripts/install_torch.sh $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/bin/python pyproject.toml
	sh scripts/install_torch.sh $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e ".[test,aedat,tensorboard,tonic]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV)
