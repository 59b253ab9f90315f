# Two entry points: `make serve` runs the IdP on http://127.0.0.1:8000, `make test` runs the whole suite.
# Both build .venv from the pinned requirements first, so a fresh clone needs only Python 3.11+, make and git.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install lint demo bench

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrap
	exec $(BIN)/gunicorn -c python:idp.gunicorn_conf idp.wsgi --bind 127.0.0.1:8000 --workers 2 --access-logfile -

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# The IdP, two example services and the Apache gateway on 127.0.0.1 (needs Debian's apache2 and
# libapache2-mod-auth-openidc); prints the curl lines to try; Ctrl-C stops everything.
demo: $(STAMP)
	exec $(BIN)/python -m examples.demo up

# The performance benchmark (bench/README.md): gunicorn pinned to core 0 on PostgreSQL, wrk on core 1; needs
# `apt-get install wrk` (and nginx-light for --scale-out). E.g. make bench BENCH_ARGS="--growth --scale-out".
bench: $(STAMP)
	$(BIN)/python -m bench.load $(BENCH_ARGS)
