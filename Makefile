# The README's commands. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# `make test` runs on real PostgreSQL and Redis; override these to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dynchat
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# `make bench` uses its own database (created if missing, emptied on every run) and Redis db.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dynchat_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/12

.PHONY: install run test lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## run: migrate, seed the demo and serve on embedded defaults (SQLite, eager Celery, no Redis)
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	SITE_ROOT=http://$(HOST):$(PORT) $(BIN)/python manage.py seed_demo
	SITE_ROOT=http://$(HOST):$(PORT) DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: lint, then every test (browser tests included) on PostgreSQL and Redis
test: install lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: the benchmarks under bench/ on PostgreSQL: the widget API (gunicorn + wrk), then the
## Marketo full sync of a 1M-lead instance against the fake Marketo, then targeting at session
## start with 500 dialogues and 1M leads, then the slots of 20 agents over 14 days, then
## bookings per second through the booking endpoint with 50 clients (round robin), then the
## Marketo outbox delivery, then the report pages and the nightly purge over 10M chat events
bench: install
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/widget_api.py $(BENCH_ARGS)
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/marketo_sync.py
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/targeting.py
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/slots.py
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/routing.py
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/outbox.py
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python bench/reports.py

clean:
	rm -rf $(VENV) var/staticfiles
