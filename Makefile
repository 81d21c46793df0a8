# spotyard: `make up` provisions the stack, `make test` runs the tests.
STACK ?= dev
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# A local state backend inside the project unless you choose one (no Pulumi Cloud account needed).
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
# The local backend encrypts secrets with a passphrase; empty unless you set one.
export PULUMI_CONFIG_PASSPHRASE ?=

.PHONY: setup dev test lint bench tools stack preview up destroy

# What the program and the CLI need (`make up`); the test tools come only with `make dev`.
$(VENV)/.installed: requirements.txt pyproject.toml
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "spotyard needs Python 3.11 or newer (python3 is $$(python3 --version 2>&1)): install it, e.g. with pyenv or your OS packages"; exit 1; }
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

dev: $(VENV)/.installed-dev

test: dev
	$(PYTHON) -m pytest -n auto --dist loadfile -q

lint: dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

bench: dev
	$(PYTHON) bench/autoscaler.py
	$(PYTHON) bench/interruption.py
	$(PYTHON) bench/dns.py

tools:
	@command -v pulumi >/dev/null || { \
	  echo "spotyard needs the Pulumi CLI 3.x: see https://www.pulumi.com/docs/install/ (e.g. 'curl -fsSL https://get.pulumi.com | sh', or 'brew install pulumi/tap/pulumi')"; exit 1; }

.pulumi-state:
	mkdir -p .pulumi-state

stack: tools setup .pulumi-state
	pulumi stack select --create $(STACK)

preview: stack
	pulumi preview --stack $(STACK)

up: stack
	pulumi up --stack $(STACK)

destroy: stack
	pulumi destroy --stack $(STACK)
