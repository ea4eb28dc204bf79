"""Concurrent requests for /api/schema/ (gunicorn's threads) all get the schema.

drf-spectacular's generator is not thread-safe: before tasks/api/schema.py, concurrent first
requests answered 500 (``AttributeError: 'NoneType' object has no attribute 'startswith'``,
tfranzel/drf-spectacular#1122). The schema is now generated once, under a lock.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client, RequestFactory
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView

from tasks.api.schema import SchemaView, forget_schemas
from tests.support.concurrency import run_in_threads

JSON = "application/vnd.oai.openapi+json"
THREADS = 8


@pytest.fixture(autouse=True)
def first_request():
    """Every test starts as a fresh process would: no schema generated yet."""
    forget_schemas()
    yield
    forget_schemas()


class SlowGenerator(SchemaGenerator):
    """Records how many generations run at once and how many ran in all."""

    lock = threading.Lock()
    running = 0
    most_at_once = 0
    runs = 0

    @classmethod
    def reset(cls) -> None:
        cls.running = cls.most_at_once = cls.runs = 0

    def get_schema(self, request=None, public=False):
        cls = type(self)
        with cls.lock:
            cls.running += 1
            cls.runs += 1
            cls.most_at_once = max(cls.most_at_once, cls.running)
        time.sleep(0.1)
        with cls.lock:
            cls.running -= 1
        return {"openapi": "3.0.3", "info": {"title": "slow", "version": "1"}, "paths": {}}


@pytest.fixture
def slow_generator():
    SlowGenerator.reset()
    return SlowGenerator


def fetch(view_class, path: str = "/api/schema/") -> int:
    view = view_class.as_view(generator_class=SlowGenerator)
    response = view(RequestFactory().get(path, HTTP_ACCEPT=JSON))
    response.render()
    return response.status_code


def test_concurrent_first_requests_all_get_the_schema():
    def get(_index: int):
        response = Client().get("/api/schema/", HTTP_ACCEPT=JSON)
        return response.status_code, response.content

    results = run_in_threads(THREADS, get)

    assert [status for status, _ in results] == [200] * THREADS
    assert len({content for _, content in results}) == 1
    assert b'"openapi"' in results[0][1]


def test_the_schema_is_generated_once_at_a_time_and_then_kept(slow_generator):
    statuses = run_in_threads(THREADS, lambda _index: fetch(SchemaView))

    assert statuses == [200] * THREADS
    assert (slow_generator.most_at_once, slow_generator.runs) == (1, 1)


def test_the_librarys_own_view_generates_concurrently(slow_generator):
    """The check above can fail: drf-spectacular's view runs the generator on every thread."""
    run_in_threads(THREADS, lambda _index: fetch(SpectacularAPIView))

    assert slow_generator.most_at_once > 1
    assert slow_generator.runs == THREADS


def test_each_supported_language_has_its_schema_and_any_other_gets_the_default(slow_generator):
    assert fetch(SchemaView) == 200
    assert fetch(SchemaView, "/api/schema/?lang=xx-unknown") == 200  # not a cache key
    assert slow_generator.runs == 1

    assert fetch(SchemaView, "/api/schema/?lang=de") == 200
    assert slow_generator.runs == 2


def test_a_settings_change_forgets_the_schema(slow_generator, settings):
    fetch(SchemaView)
    settings.SPECTACULAR_SETTINGS = {**settings.SPECTACULAR_SETTINGS, "TITLE": "Renamed"}

    fetch(SchemaView)

    assert slow_generator.runs == 2
