# spotyard: `make up` provisions the stack, `make test` runs the tests.
STACK ?= dev
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# A local state backend inside the project unless you choose one (no Pulumi Cloud account needed).
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
# The local backend encrypts secrets with a passphrase; empty unless you set one.
export PULUMI_CONFIG_PASSPHRASE ?=

.PHONY: setup test lint bench stack preview up destroy

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PYTHON) -m pytest -n auto --dist loadfile -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PYTHON) bench/autoscaler.py
	$(PYTHON) bench/interruption.py

.pulumi-state:
	mkdir -p .pulumi-state

stack: .pulumi-state
	pulumi stack select --create $(STACK)

preview: stack
	pulumi preview --stack $(STACK)

up: stack
	pulumi up --stack $(STACK)

destroy: stack
	pulumi destroy --stack $(STACK)
