"""Time zones come from a curated IANA list (``todo_project.timezones.supported_zones``).

People may choose the zones of the geographic areas, UTC and the fixed offsets
Etc/GMT±N; ``localtime``, ``Factory``, ``posixrules``, ``posix/…``, ``right/…`` and the
old aliases (``US/Eastern``, ``GB``, ``EST5EDT``) are a 400 naming the field wherever a
zone is typed. A row saved before with such a zone still renders and can be edited.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import Profile, Task, timezone_names
from tests.web.html import parse
from tests.web.test_task_form import errors, form_data
from todo_project.timezones import supported_zones

pytestmark = pytest.mark.django_db

REFUSED = [
    "localtime",
    "Factory",
    "posixrules",
    "posix/Europe/Paris",
    "right/UTC",
    "Etc/Unknown",
    "US/Eastern",
    "GB",
    "EST5EDT",
    "Etc/GMT+0",
    "europe/paris",
]
ACCEPTED = ["Europe/Paris", "America/Argentina/Salta", "UTC", "Etc/UTC", "Etc/GMT+12"]


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's API client (signed in directly: these tests are not about tokens)."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


def test_the_list_holds_the_geographic_zones_utc_and_the_fixed_offsets():
    zones = supported_zones()

    assert {"Europe/Paris", "Asia/Tokyo", "Pacific/Kiritimati", "UTC"} <= zones
    assert {f"Etc/GMT{sign}{hours}" for sign in "+-" for hours in range(1, 13)} <= zones
    assert not zones & {"localtime", "Factory", "posixrules", "US/Eastern", "Etc/Unknown"}
    assert not [name for name in zones if name.startswith(("posix/", "right/"))]
    assert list(timezone_names()) == sorted(zones)  # the forms' suggestions


@pytest.mark.parametrize("zone", REFUSED)
def test_creating_a_task_in_an_unsupported_zone_is_a_400_naming_timezone(api, zone):
    response = api.post("/api/tasks/", {"title": "Zoned", "timezone": zone}, format="json")

    assert response.status_code == 400
    assert response.json()["timezone"] == [f"'{zone}' is not a known IANA time zone."]
    assert not Task.objects.exists()


@pytest.mark.parametrize("zone", ACCEPTED)
def test_a_supported_zone_is_accepted(api, zone):
    response = api.post("/api/tasks/", {"title": "Zoned", "timezone": zone}, format="json")

    assert response.status_code == 201
    assert response.json()["timezone"] == zone


@pytest.mark.parametrize("zone", ["localtime", "Factory", "US/Eastern"])
def test_moving_a_task_to_an_unsupported_zone_is_a_400(api, alice, make_task, zone):
    task = make_task(alice, timezone="Europe/Paris")

    response = api.patch(f"/api/tasks/{task.pk}/", {"timezone": zone}, format="json")

    assert response.status_code == 400
    assert "timezone" in response.json()
    assert Task.objects.get(pk=task.pk).timezone == "Europe/Paris"


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "US/Eastern"])
def test_the_profile_refuses_an_unsupported_zone(api, alice, zone):
    response = api.patch("/api/me/", {"timezone": zone}, format="json")

    assert response.status_code == 400
    assert "timezone" in response.json()
    assert Profile.objects.get(user=alice).timezone == "UTC"


def test_the_recurrence_preview_refuses_an_unsupported_zone(api):
    response = api.post(
        "/api/recurrence/preview/", {"rule": "FREQ=DAILY", "timezone": "Factory"}, format="json"
    )

    assert response.status_code == 400
    assert "timezone" in response.json()


@pytest.mark.parametrize("zone", ["localtime", "Factory", "US/Eastern"])
def test_the_task_form_refuses_an_unsupported_zone_beside_the_field(client, alice, zone):
    client.force_login(alice)

    response = client.post("/tasks/new/", form_data(due_date="2030-01-07", timezone=zone))

    assert response.status_code == 400
    assert errors(parse(response), "timezone") == [f"'{zone}' is not a known IANA time zone."]
    assert not Task.objects.exists()


def test_the_settings_page_refuses_an_unsupported_zone(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("settings"), {"email": "alice@example.com", "timezone": "localtime"}
    )

    assert response.status_code == 400
    assert Profile.objects.get(user=alice).timezone == "UTC"


# --- rows saved before the list ---------------------------------------------------------


@pytest.fixture
def legacy_task(alice, make_task):
    """A task and a profile saved with US/Eastern, as before the curated list."""
    task = make_task(alice, due_date=dt.datetime(2030, 1, 7, 14, tzinfo=dt.UTC))
    Task.objects.filter(pk=task.pk).update(timezone="US/Eastern")
    Profile.objects.filter(user=alice).update(timezone="US/Eastern")
    return Task.objects.get(pk=task.pk)


def test_a_task_saved_in_an_old_alias_still_renders_in_its_zone(api, client, alice, legacy_task):
    client.force_login(alice)

    shown = api.get(f"/api/tasks/{legacy_task.pk}/")

    assert shown.status_code == 200
    assert shown.json()["due_date"] == "2030-01-07T09:00:00-05:00"
    assert api.get("/api/tasks/").status_code == 200
    assert api.get("/api/me/").json()["timezone"] == "US/Eastern"
    assert client.get(f"/tasks/{legacy_task.pk}/").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get(reverse("settings")).status_code == 200


def test_a_task_saved_in_an_old_alias_can_still_be_edited_and_completed(api, legacy_task):
    renamed = api.patch(f"/api/tasks/{legacy_task.pk}/", {"title": "Renamed"}, format="json")
    completed = api.post(f"/api/tasks/{legacy_task.pk}/complete/")

    assert renamed.status_code == 200
    assert completed.status_code == 200
    assert completed.json()["timezone"] == "US/Eastern"


def test_quick_add_for_a_profile_in_an_old_alias_still_works(api, legacy_task):
    response = api.post("/api/tasks/quick-add/", {"text": "Call mum tomorrow 6pm"}, format="json")

    assert response.status_code == 201
