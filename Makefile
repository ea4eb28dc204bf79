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

.PHONY: run test test-fast lint format migrate demo superuser shell manage bench image clean

# One virtualenv for every target: the runtime (requirements.txt, all the image installs)
# plus the test suite and tooling (requirements-dev.txt includes requirements.txt). The first
# run says what it does and shows pip's own progress.
PINNED = $(shell cat requirements.txt requirements-dev.txt | grep -cE '^[A-Za-z0-9]')
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "==> Creating the virtualenv $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "==> Upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> Installing $(PINNED) pinned packages and their dependencies (requirements-dev.txt)"
	$(BIN)/python -m pip install -r requirements-dev.txt
	@touch $(STAMP)

# The embedded default, for `make run` and an operator's commands alike: DEBUG on (so the
# SECRET_KEY is generated into var/), and e-mail links to where `make run` serves.
RUN_TARGETS := run migrate demo superuser shell manage
$(RUN_TARGETS): export DEBUG ?= true
$(RUN_TARGETS): export SITE_URL ?= http://$(HOST):$(PORT)

## Development server on the embedded default (SQLite, in-process events, console e-mail),
## under ASGI like production (uvicorn; reloads when the code changes), so open pages follow
## changes live. `manage.py runserver` works too (WSGI: each open page holds a thread).
run: $(STAMP)
	@echo "==> Migrating the database"
	$(BIN)/python manage.py migrate --noinput
	@echo "==> Loading the demo user (demo / tideline-demo)"
	$(BIN)/python manage.py seed_demo
	@echo "==> Serving http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m uvicorn todo_project.asgi:application --host $(HOST) --port $(PORT) \
		--reload $(foreach dir,$(CODE_DIRS),--reload-dir $(dir)) --no-server-header

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: $(STAMP)
	$(BIN)/python manage.py seed_demo

## An operator's first steps, with what `make run` exports: an admin account for /admin/
## (asks for a username, an e-mail and a password), a Django shell, and any management
## command: `make manage ARGS="events_status"`.
superuser: $(STAMP)
	$(BIN)/python manage.py createsuperuser $(ARGS)

shell: $(STAMP)
	$(BIN)/python manage.py shell $(ARGS)

manage: $(STAMP)
	$(BIN)/python manage.py $(ARGS)

## The whole test suite (PostgreSQL when DATABASE_URL is set), in three passes: the quick
## tests on two processes (pytest-xdist, a test database each), the schemathesis runs
## (``fuzz``) on two processes too, then the browser journeys, drills and other slow tests one
## at a time (they start servers and measure timings). Nothing selected in one pass (pytest's
## exit code 5, e.g. PYTEST_ARGS="-k feed") is fine; in all three, it is exit code 5.
test: $(STAMP)
	@set +e; \
	$(BIN)/python -m pytest -n 2 -m "not e2e and not slow" $(PYTEST_ARGS); quick=$$?; \
	$(BIN)/python -m pytest -n 2 -m "fuzz" $(PYTEST_ARGS); fuzz=$$?; \
	$(BIN)/python -m pytest -m "(e2e or slow) and not fuzz" $(PYTEST_ARGS); slow=$$?; \
	if [ $$quick -eq 5 ] && [ $$fuzz -eq 5 ] && [ $$slow -eq 5 ]; then exit 5; fi; \
	for status in $$quick $$fuzz $$slow; do [ $$status -eq 0 ] || [ $$status -eq 5 ] || exit $$status; done

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
