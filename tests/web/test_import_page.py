"""The import page (/tasks/import/): upload an .ics file, read what was created and skipped."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tasks.models import Task
from tests.tasks.test_calendar_import import FLAWED_ITEMS
from tests.web.html import field_error, parse, unlabelled_controls


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


def upload(data: bytes, name: str = "tasks.ics") -> dict:
    return {"file": SimpleUploadedFile(name, data, content_type="text/calendar")}


def test_the_task_list_links_to_the_import_page(alice_client):
    links = parse(alice_client.get("/tasks/")).find("a", href="/tasks/import/")
    assert [link.text for link in links] == ["Import .ics"]


def test_the_page_asks_for_a_file_with_a_labelled_control(alice_client):
    response = alice_client.get("/tasks/import/")
    assert response.status_code == 200
    [control] = parse(response).find("input", type="file")
    assert control.attrs["name"] == "file"
    assert unlabelled_controls(response) == []


def test_uploading_shows_what_was_created_and_what_was_skipped_and_why(alice_client, alice):
    response = alice_client.post("/tasks/import/", upload(FLAWED_ITEMS))

    assert response.status_code == 200
    task = Task.objects.get(user=alice)
    page = parse(response)
    assert [a.text for a in page.find("a", href=f"/tasks/{task.pk}/")] == ["Still imported"]
    rows = [row.text for row in page.get("import-skipped").find("tr")[1:]]
    assert "Every blue moon" in rows[0] and "FREQ must be one of" in rows[0]
    assert "(no summary)" in rows[1] and "No SUMMARY: a task needs a title." in rows[1]
    assert "Imported 1 task, skipped 2" in page.text


def test_uploading_the_same_file_again_shows_what_was_already_imported(alice_client, alice):
    alice_client.post("/tasks/import/", upload(FLAWED_ITEMS))
    task = Task.objects.get(user=alice)

    response = alice_client.post("/tasks/import/", upload(FLAWED_ITEMS))

    assert response.status_code == 200
    assert Task.objects.filter(user=alice).count() == 1
    page = parse(response)
    assert "Imported 0 tasks, 1 already imported, skipped 2" in page.text
    already = page.get("import-already")
    assert already.find("caption")[0].text == "Already imported (nothing created again)"
    [_, row] = already.find("tr")
    assert "fine@example.com" in row.text and "Still imported" in row.text
    assert [a.text for a in row.find("a", href=f"/tasks/{task.pk}/")] == ["Open the task"]


def test_a_file_that_is_not_icalendar_is_an_error_beside_the_field(alice_client):
    response = alice_client.post("/tasks/import/", upload(b"%PDF-1.7", "a.pdf"))
    assert response.status_code == 400
    assert "not an iCalendar" in field_error(response, "id_file")
    assert not Task.objects.exists()


def test_the_page_needs_a_signed_in_user(client, db):
    response = client.get("/tasks/import/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_upload_is_protected_by_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/tasks/import/", upload(FLAWED_ITEMS))
    assert response.status_code == 403
    assert not Task.objects.exists()
