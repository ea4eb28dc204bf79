def test_create_and_list_a_task(api):
    response = api.post(
        "/api/tasks/",
        {
            "title": "  Buy milk ",
            "tags": ["Home", "errands"],
            "priority": "high",
            "due_date": "2026-12-01T09:00:00",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["title"] == "Buy milk"
    assert body["tags"] == ["errands", "Home"]  # sorted without regard to case
    listing = api.get("/api/tasks/?priority=high,urgent&tags=home").json()
    assert [task["id"] for task in listing["results"]] == [body["id"]]
