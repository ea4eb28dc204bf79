"""Named API tokens: list, create with an expiry, revoke; expired and revoked ones refused;
the secret shown once and stored only as a digest; last use recorded at most once a minute."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tasks import services
from tasks.models import ApiToken

PASSWORD = "correct horse battery staple"
DAY = dt.timedelta(days=1)


def client_with(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def make_token(user, name: str = "Script", **expiry) -> tuple[ApiToken, str]:
    return services.api_token_create(user=user, name=name, **expiry)


def close_to(value: str | None, expected: dt.datetime) -> bool:
    return abs(dt.datetime.fromisoformat(value) - expected) < dt.timedelta(seconds=30)


# --- create ---------------------------------------------------------------------------------


def test_creating_a_token_answers_its_secret_once_and_the_secret_works(api, alice):
    response = api.post("/api/tokens/", {"name": "Backup script", "expires_in_days": 30})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "token",
    }
    assert body["name"] == "Backup script"
    assert body["token"].startswith("tdl_") and body["token"].startswith(body["prefix"])
    assert close_to(body["expires_at"], timezone.now() + 30 * DAY)
    assert body["last_used_at"] is None
    assert client_with(body["token"]).get("/api/me/").json()["username"] == "alice"


def test_only_a_digest_of_the_secret_is_stored(api):
    secret = api.post("/api/tokens/", {"name": "Backup script"}).json()["token"]

    stored = ApiToken.objects.get(name="Backup script")
    assert secret not in {stored.digest, stored.prefix, stored.name}
    assert stored.digest == ApiToken.digest_of(secret)


def test_a_token_can_expire_at_a_given_time_or_never(api):
    at = (timezone.now() + 10 * DAY).replace(microsecond=0)

    dated = api.post("/api/tokens/", {"name": "Dated", "expires_at": at.isoformat()})
    never = api.post("/api/tokens/", {"name": "Forever", "expires_at": None})

    assert dt.datetime.fromisoformat(dated.json()["expires_at"]) == at
    assert never.json()["expires_at"] is None


@pytest.mark.parametrize(("days", "expires"), [(7, 7 * DAY), (0, None)])
def test_without_an_expiry_a_token_gets_the_default(api, settings, days, expires):
    settings.API_TOKEN_DEFAULT_EXPIRY_DAYS = days

    body = api.post("/api/tokens/", {"name": "Default"}).json()

    if expires is None:
        assert body["expires_at"] is None
    else:
        assert close_to(body["expires_at"], timezone.now() + expires)


def _in(days: float) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "A", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "A", "expires_in_days": 366}, "expires_in_days"),
        ({"name": "A", "expires_in_days": "soon"}, "expires_in_days"),
        ({"name": "A", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "A", "expires_at": _in(-1)}, "expires_at"),
        ({"name": "A", "expires_at": _in(366)}, "expires_at"),
        ({"name": "A", "expires_at": _in(5), "expires_in_days": 5}, "expires_at"),
        ({"name": "A", "expiry": 5}, "expiry"),
    ],
    ids=[
        "no-name",
        "blank-name",
        "long-name",
        "zero-days",
        "over-a-year",
        "days-not-a-number",
        "date-not-a-date",
        "in-the-past",
        "over-a-year-away",
        "both-expiries",
        "unknown-field",
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, alice, payload, field):
    response = api.post("/api/tokens/", payload)

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert ApiToken.objects.filter(user=alice).count() == 1  # the client's own


def test_a_user_holds_at_most_50_live_tokens_and_expired_ones_make_room(api, alice):
    for i in range(services.MAX_API_TOKENS_PER_USER - 1):  # the client's own is the 50th
        make_token(alice, f"Token {i}")

    refused = api.post("/api/tokens/", {"name": "One too many"})

    assert refused.status_code == 400
    assert refused.json() == {
        "name": ["You already have 50 tokens, the most allowed: revoke one you no longer use."]
    }
    ApiToken.objects.filter(name="Token 0").update(expires_at=timezone.now() - DAY)
    assert api.post("/api/tokens/", {"name": "Now it fits"}).status_code == 201
    assert not ApiToken.objects.filter(name="Token 0").exists()  # cleared on creation


# --- list ----------------------------------------------------------------------------------


def test_the_list_shows_the_users_tokens_newest_first_and_never_a_secret(api, alice, bob):
    _, secret = make_token(alice, "Laptop", expires_in_days=7)
    make_token(bob, "Bob's")

    response = api.get("/api/tokens/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [t["name"] for t in results] == ["Laptop", "Test client"]
    assert set(results[0]) == {"id", "name", "prefix", "created_at", "expires_at", "last_used_at"}
    assert results[0]["prefix"] == secret[:12]
    text = response.content.decode()
    assert secret not in text and ApiToken.digest_of(secret) not in text


#: GET /api/tokens/: the token (joined to its user), COUNT(*), the page.
TOKEN_LIST_QUERIES = 3


@pytest.mark.parametrize("n", [1, 30])
def test_the_list_runs_the_same_queries_for_1_and_30_tokens(
    api, alice, django_assert_num_queries, n
):
    for i in range(n - 1):
        make_token(alice, f"Token {i}")

    with django_assert_num_queries(TOKEN_LIST_QUERIES):
        response = api.get("/api/tokens/")

    assert response.json()["count"] == n


# --- revoke --------------------------------------------------------------------------------


def test_a_revoked_token_is_refused_with_a_401_saying_so(api, alice):
    token, secret = make_token(alice, "Old laptop")

    response = api.delete(f"/api/tokens/{token.pk}/")

    assert response.status_code == 204
    refused = client_with(secret).get("/api/tasks/")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "Invalid token: it is wrong, or it was revoked."
    assert refused.headers["WWW-Authenticate"] == "Token"
    assert "Old laptop" not in [t["name"] for t in api.get("/api/tokens/").json()["results"]]


def test_another_users_token_is_a_404_and_keeps_working(api, bob):
    token, secret = make_token(bob, "Bob's")

    assert api.delete(f"/api/tokens/{token.pk}/").status_code == 404
    assert client_with(secret).get("/api/tasks/").status_code == 200


def test_tokens_need_authentication(anon_api, db):
    assert anon_api.get("/api/tokens/").status_code == 401
    assert anon_api.post("/api/tokens/", {"name": "x"}).status_code == 401


# --- expiry and users -----------------------------------------------------------------------


def test_an_expired_token_is_refused_with_a_401_naming_when_it_expired(alice):
    token, secret = make_token(alice, "Short", expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    )

    response = client_with(secret).get("/api/tasks/")

    assert response.status_code == 401
    assert response.json()["detail"] == (
        "This token expired at 2026-03-01T12:30:00Z: create a new one."
    )


def test_a_deactivated_users_token_is_refused(alice):
    _, secret = make_token(alice)
    alice.is_active = False
    alice.save()

    assert client_with(secret).get("/api/tasks/").status_code == 401


# --- last used ------------------------------------------------------------------------------


def _writes(client: APIClient) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/me/").status_code == 200
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]


def test_last_use_is_recorded_at_most_once_a_minute(alice):
    token, secret = make_token(alice)
    client = client_with(secret)

    assert len(_writes(client)) == 1  # first use
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert close_to(first.isoformat(), timezone.now())
    assert _writes(client) == []  # again within the minute: nothing written
    assert _writes(client) == []

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    assert len(_writes(client)) == 1
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


# --- POST /api/auth/token/ ------------------------------------------------------------------


def test_logging_in_for_a_token_creates_a_named_token_with_the_default_expiry(
    anon_api, alice, settings
):
    settings.API_TOKEN_DEFAULT_EXPIRY_DAYS = 30

    first = anon_api.post("/api/auth/token/", {"username": "alice", "password": PASSWORD})
    second = anon_api.post("/api/auth/token/", {"username": "alice", "password": PASSWORD})

    assert first.status_code == second.status_code == 200
    assert first.json()["token"] != second.json()["token"]  # one token per login
    assert first.json()["name"] == f"API token ({timezone.localdate().isoformat()})"
    assert close_to(first.json()["expires_at"], timezone.now() + 30 * DAY)
    assert client_with(first.json()["token"]).get("/api/tasks/").status_code == 200
    assert ApiToken.objects.filter(user=alice).count() == 2


def test_logging_in_for_a_token_can_name_it_and_choose_its_expiry(anon_api, alice):
    response = anon_api.post(
        "/api/auth/token/",
        {"username": "alice", "password": PASSWORD, "name": "CI", "expires_at": None},
    )

    assert response.status_code == 200
    assert response.json()["name"] == "CI"
    assert response.json()["expires_at"] is None


def test_logging_in_with_a_bad_expiry_is_a_400_naming_it(anon_api, alice):
    response = anon_api.post(
        "/api/auth/token/", {"username": "alice", "password": PASSWORD, "expires_in_days": 400}
    )

    assert response.status_code == 400
    assert "expires_in_days" in response.json()
    assert not ApiToken.objects.exists()


# --- admin ----------------------------------------------------------------------------------


def test_operators_see_tokens_without_secrets_and_can_revoke_them(admin_client, alice):
    token, secret = make_token(alice, "Laptop")

    listing = admin_client.get("/admin/tasks/apitoken/")
    page = admin_client.get(f"/admin/tasks/apitoken/{token.pk}/change/")
    assert "Laptop" in listing.content.decode()
    for response in (listing, page):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert token.digest not in response.content.decode()
    assert admin_client.get("/admin/tasks/apitoken/add/").status_code == 403

    admin_client.post(f"/admin/tasks/apitoken/{token.pk}/delete/", {"post": "yes"})

    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert client_with(secret).get("/api/tasks/").status_code == 401


# --- the tokens from before named tokens ----------------------------------------------------

BEFORE = ("tasks", "0008_idempotency_key")
AFTER = ("tasks", "0009_api_tokens")
OLD_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # DRF authtoken's format: 40 hex digits


def _migrate(target: tuple[str, str]) -> None:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.fixture
def latest_schema_afterwards():
    """Migrating back and forth leaves the schema at AFTER: bring it back to the latest
    migrations, so later tests find what later migrations made (the search index)."""
    yield
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_token_from_before_named_tokens_still_authenticates_after_the_migration(
    alice, latest_schema_afterwards
):
    _migrate(BEFORE)
    with connection.cursor() as cursor:  # rest_framework.authtoken's table, as it was
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [OLD_KEY, "2025-05-04 03:02:01+00:00", alice.pk],
        )

    _migrate(AFTER)

    token = ApiToken.objects.get(user=alice)
    assert token.name == "Token created before named tokens"
    assert token.prefix == OLD_KEY[:8]
    assert token.expires_at is None
    assert token.created_at == dt.datetime(2025, 5, 4, 3, 2, 1, tzinfo=dt.UTC)
    assert OLD_KEY not in token.digest
    assert "authtoken_token" not in connection.introspection.table_names()  # no plain keys
    assert client_with(OLD_KEY).get("/api/me/").json()["username"] == "alice"
