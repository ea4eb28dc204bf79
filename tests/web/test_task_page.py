"""The task page that reminder e-mails link to."""

from tests.factories import make_category, make_task


def test_the_owner_sees_the_task_page_with_its_details(client, alice):
    task = make_task(
        alice,
        title="Renew passport",
        description="Bring photos",
        category=make_category(alice, "Errands"),
        tags=["papers"],
        recurrence_rule="FREQ=YEARLY",
    )
    client.force_login(alice)
    response = client.get(f"/tasks/{task.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in ("Renew passport", "Bring photos", "Errands", "papers", "Every year"):
        assert text in body


def test_another_users_task_page_is_a_404(client, alice, bob):
    task = make_task(alice, title="Private")
    client.force_login(bob)
    assert client.get(f"/tasks/{task.pk}/").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, alice):
    task = make_task(alice, title="Private")
    response = client.get(f"/tasks/{task.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/tasks/{task.pk}/"


def test_a_missing_page_has_the_apps_layout_and_a_way_back(client, alice):
    client.force_login(alice)

    response = client.get("/tasks/999999/")

    body = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in body
    assert 'href="/"' in body and "Go to your tasks" in body


def test_signed_in_pages_are_never_served_from_the_browsers_cache(client, alice):
    client.force_login(alice)

    response = client.get("/tasks/?view=today")

    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
