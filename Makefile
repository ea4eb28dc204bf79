# Tideline: `make run` serves the app on the embedded default; `make test` runs every test,
# browser journeys included (tests/e2e: Debian's chromium at /usr/bin/chromium, driven by
# Playwright against the app under gunicorn); `make test-fast` leaves out the e2e and slow ones.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
#: What `make run` watches for changes (templates are read afresh under DEBUG anyway).
CODE_DIRS := todo_project tasks events notifications recurrence webhooks

.PHONY: run test test-fast lint format migrate demo bench image clean

# One virtualenv for every target: the runtime (requirements.txt, all the image installs)
# plus the test suite and tooling (requirements-dev.txt includes requirements.txt).
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Development server on the embedded default (SQLite, in-process events, console e-mail),
## under ASGI like production (uvicorn; reloads when the code changes), so open pages follow
## changes live. `manage.py runserver` works too (WSGI: each open page holds a thread).
run: export DEBUG ?= true
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py check
	$(BIN)/python -m uvicorn todo_project.asgi:application --host $(HOST) --port $(PORT) \
		--reload $(foreach dir,$(CODE_DIRS),--reload-dir $(dir)) --no-server-header

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: $(STAMP)
	$(BIN)/python manage.py seed_demo

## The whole test suite (PostgreSQL when DATABASE_URL is set).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Everything but the browser journeys and the slow tests: the quick loop while editing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## App beside raw SQL + orjson and a naive DRF viewset (docs/benchmarks.md): PostgreSQL when
## DATABASE_URL names a tideline_bench... database, else SQLite; e.g. BENCH_ARGS="--only list".
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## The production image (Dockerfile), tagged with `git describe`. Needs a running Docker engine
## (CI has none); `make run` and `make test` do not: tests/deploy checks the Dockerfile offline.
IMAGE ?= tideline
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image:
	docker build --tag $(IMAGE):$(IMAGE_TAG) .

clean:
	rm -rf $(VENV) var .pytest_cache
