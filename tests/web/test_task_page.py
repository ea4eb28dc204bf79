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
