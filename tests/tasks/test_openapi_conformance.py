"""Every operation of /api/schema/ answers as the schema says (schemathesis, in-process).

Schemathesis generates requests from the schema, valid and invalid, sends them to the Django
WSGI app and runs all its checks on each answer: no 5xx, a documented status code, content
type, headers and body, invalid input refused (4xx) and valid input accepted (2xx/404).
Once logged in (a user with tasks, categories, tags and a saved view, so detail routes reach
real objects) and once anonymous. Each example runs in a savepoint rolled back after it,
so every request sees the same data; the seed is fixed, so a run is repeatable.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tasks import services
from tasks.models import Tag
from tests.factories import UserFactory

#: Examples per operation and phase: enough to reach every filter and field; the whole
#: module stays within a few minutes on PostgreSQL.
MAX_EXAMPLES = 150
SEED = 20261201

#: The data the logged-in run starts from, by route: generated ids are mapped onto these.
_objects: dict[str, list[int]] = {}


@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    """Throttles out of the way, and the WSGI app sharing the test's connection (and its
    transaction) as Django's test client does: no closing of "old" connections around
    each request."""
    for scope in ("anon", "user", "auth", "webhooks"):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000/min")
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def alice_token(db):
    """A token for alice, who has a few objects of each kind (their ids in ``_objects``)."""
    alice = UserFactory(username="alice", email="alice@example.com")
    work = services.category_create(user=alice, name="Work")
    home = services.category_create(user=alice, name="Home")
    tasks = [
        services.task_create(user=alice, title="Pay rent", category=home, tags=["bills"]),
        services.task_create(
            user=alice,
            title="Stand-up",
            category=work,
            priority="high",
            recurrence_rule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        ),
        services.task_create(user=alice, title="Read", description="A novel", tags=["fun"]),
    ]
    services.task_complete(task=tasks[2])
    view = services.saved_view_create(user=alice, name="Urgent", filters={"priority": "urgent"})
    _objects.update(
        tasks=[t.pk for t in tasks],
        categories=[work.pk, home.pk],
        tags=list(Tag.objects.filter(user=alice).values_list("pk", flat=True)),
        views=[view.pk],
    )
    _, secret = services.api_token_create(user=alice, name="schemathesis")
    yield secret
    _objects.clear()


schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())


@schemathesis.hook
def map_path_parameters(context, path_parameters: dict) -> dict:
    """Half of the generated ids become one of the logged-in user's objects."""
    if not path_parameters:
        return path_parameters
    value = path_parameters.get("id")
    route = context.operation.path.split("/")[2]
    ids = _objects.get(route)
    if ids and isinstance(value, int) and value % 2 == 0:
        path_parameters["id"] = ids[(value // 2) % len(ids)]
    return path_parameters


#: Operations where a request the schema allows may rightly be refused (400) by a rule no
#: JSON schema can state, so ``positive_data_acceptance`` (schema-valid input gets a 2xx)
#: is not checked there; every other check is.
SEMANTIC_RULES = {
    "POST /api/auth/register/": "password strength, a username not taken",
    "POST /api/auth/token/": "the credentials must be right",
    "POST /api/tokens/": "expires_at and expires_in_days are exclusive",
    "PATCH /api/me/": "timezone is an IANA zone name",
    "POST /api/recurrence/preview/": "rule is an RRULE, timezone an IANA zone name",
    "GET /api/tasks/": "category and tags name your own objects",
    "POST /api/tasks/": "RRULE, IANA zone, durations, dates within years 1000-9000",
    "PUT /api/tasks/{id}/": "as POST /api/tasks/",
    "PATCH /api/tasks/{id}/": "as POST /api/tasks/",
    "POST /api/tasks/quick-add/": "the text must read as a task (e.g. a title of 255 at most)",
    "POST /api/tasks/parse/": "as quick-add",
    "POST /api/tasks/import/": "the file must be iCalendar (at most 1 MB and 500 items)",
    "POST /api/views/": "filters are GET /api/tasks/ filters",
    "PUT /api/views/{id}/": "as POST /api/views/",
    "PATCH /api/views/{id}/": "as POST /api/views/",
    "POST /api/categories/": "a name not taken",
    "PUT /api/categories/{id}/": "a name not taken",
    "PATCH /api/categories/{id}/": "a name not taken",
    "POST /api/tags/": "a name not taken",
    "PUT /api/tags/{id}/": "a name not taken",
    "PATCH /api/tags/{id}/": "a name not taken",
    "POST /api/webhooks/": "the URL's host resolves to public addresses only",
    "PUT /api/webhooks/{id}/": "as POST /api/webhooks/",
    "PATCH /api/webhooks/{id}/": "as POST /api/webhooks/",
    "PUT /api/webhooks/reminder-channels/": "the ntfy URL's host resolves to public addresses",
    "POST /api/webhooks/{id}/test/": "the webhook is enabled",
    "POST /api/webhooks/{id}/deliveries/{delivery_id}/redeliver/": "the webhook is enabled",
}


def _run(case, headers: dict[str, str]) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    excluded = [positive_data_acceptance] if label in SEMANTIC_RULES else []
    with transaction.atomic():
        case.call_and_validate(headers=headers, excluded_checks=excluded)
        transaction.set_rollback(True)


def conformance_test(test):
    """A schemathesis test over every operation: fixed seed, ``MAX_EXAMPLES`` each, slow
    (``fuzz``: independent and CPU-bound, so ``make test`` runs them on two processes)."""
    test = hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )(test)
    parametrized = schema.parametrize()(hypothesis.seed(SEED)(test))
    return pytest.mark.fuzz(pytest.mark.slow(parametrized))


@conformance_test
def test_the_api_answers_as_its_schema_says_logged_in(case, alice_token):
    _run(case, {"Authorization": f"Token {alice_token}"})


@conformance_test
def test_the_api_answers_as_its_schema_says_anonymous(case, db):
    _run(case, {})
