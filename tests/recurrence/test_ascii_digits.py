"""Numbers in a rule are ASCII digits: COUNT=<superscript two> is a 400 naming the field.

Python's ``str.isdigit()`` is true for a superscript two (then ``int()`` fails: a 500) and
``int()`` reads an Arabic-Indic three as 3 (then the rule was stored as typed). RFC 5545 rules
are ASCII, so any other character is refused, on every path that takes a rule.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from recurrence.rules import parse_parts, validate_rule
from tasks.models import Task
from tests.web.html import parse
from tests.web.test_task_form import errors, form_data


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's API client (signed in directly: these tests are not about tokens)."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


#: Characters written as escapes: several look like ASCII ones.
SUPERSCRIPT_TWO, SUPERSCRIPT_THREE = "\u00b2", "\u00b3"
ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)
FULLWIDTH_THREE = "\uff13"

NON_ASCII_RULES = [
    f"FREQ=DAILY;COUNT={SUPERSCRIPT_TWO}",
    f"FREQ=DAILY;INTERVAL={SUPERSCRIPT_THREE}",
    f"FREQ=DAILY;COUNT={'3'.translate(ARABIC_INDIC)}",
    f"FREQ=DAILY;INTERVAL={'3'.translate(ARABIC_INDIC)}",
    f"FREQ=DAILY;COUNT={FULLWIDTH_THREE}",
    f"FREQ=MONTHLY;BYMONTHDAY={'15'.translate(ARABIC_INDIC)}",
    f"FREQ=MONTHLY;BYDAY={'2'.translate(ARABIC_INDIC)}TU",
    f"FREQ=DAILY;UNTIL={'2030'.translate(ARABIC_INDIC)}0101T000000Z",
    "FREQ=DA\u0130LY",  # a dotted capital I
    "freq=da\u0131ly",  # a dotless i: upper-cased, it becomes an ASCII I
]


@pytest.mark.parametrize("rule", NON_ASCII_RULES)
def test_a_rule_with_a_non_ascii_character_is_refused_saying_which(rule):
    with pytest.raises(ValidationError, match="only ASCII"):
        validate_rule(rule)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (f"COUNT={SUPERSCRIPT_TWO}", "only ASCII"),
        ("COUNT=+3", "COUNT must be a whole number"),
        ("INTERVAL= 2", "INTERVAL must be a whole number"),
        ("BYMONTHDAY= 5", "BYMONTHDAY value ' 5' is not a number"),
        ("BYMONTHDAY=1_5", "BYMONTHDAY value '1_5' is not a number"),
    ],
)
def test_numbers_are_plain_ascii_digits(part, message):
    with pytest.raises(ValidationError, match=message):
        parse_parts(f"FREQ=MONTHLY;{part}")


def test_signed_ascii_numbers_still_work():
    assert parse_parts("FREQ=MONTHLY;BYMONTHDAY=-1,+15") == {
        "FREQ": "MONTHLY",
        "BYMONTHDAY": "-1,+15",
    }


@pytest.mark.parametrize("rule", NON_ASCII_RULES)
def test_creating_a_task_with_such_a_rule_is_a_400_naming_recurrence_rule(api, rule):
    response = api.post(
        "/api/tasks/",
        {"title": "Digits", "due_date": "2030-01-07T09:00:00Z", "recurrence_rule": rule},
        format="json",
    )

    assert response.status_code == 400
    assert "only ASCII" in response.json()["recurrence_rule"][0]
    assert not Task.objects.exists()


def test_editing_a_task_to_such_a_rule_is_a_400_and_keeps_the_old_rule(api, alice, make_task):
    task = make_task(alice, recurrence_rule="FREQ=DAILY;COUNT=3")

    response = api.patch(
        f"/api/tasks/{task.pk}/", {"recurrence_rule": "FREQ=DAILY;COUNT=٣"}, format="json"
    )

    assert response.status_code == 400
    assert "recurrence_rule" in response.json()
    task.refresh_from_db()
    assert task.recurrence_rule == "FREQ=DAILY;COUNT=3"


@pytest.mark.parametrize("rule", NON_ASCII_RULES[:4])
def test_previewing_such_a_rule_is_a_400_naming_rule(api, rule):
    response = api.post("/api/recurrence/preview/", {"rule": rule}, format="json")

    assert response.status_code == 400
    assert "only ASCII" in response.json()["rule"][0]


@pytest.mark.parametrize("rule", NON_ASCII_RULES[:4])
def test_the_task_form_refuses_such_a_rule_beside_the_field(client, alice, rule):
    client.force_login(alice)

    response = client.post(
        "/tasks/new/", form_data(due_date="2030-01-07", repeat="custom", custom_rule=rule)
    )

    assert response.status_code == 400
    assert any("only ASCII" in message for message in errors(parse(response), "custom_rule"))
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "text",
    [
        f"Stretch every {'3'.translate(ARABIC_INDIC)} days",
        f"Stretch every {SUPERSCRIPT_THREE} days",
        f"Stretch every {FULLWIDTH_THREE} weeks",
    ],
)
def test_quick_add_reads_only_ascii_numbers_and_leaves_others_in_the_title(api, text):
    response = api.post("/api/tasks/quick-add/", {"text": text}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["title"] == text
    assert body["recurrence_rule"] == ""
    assert body["recurrence_rule"].isascii()


def test_quick_add_still_reads_ascii_numbers(api):
    response = api.post("/api/tasks/quick-add/", {"text": "Stretch every 3 days"}, format="json")

    assert response.status_code == 201
    assert response.json()["recurrence_rule"] == "FREQ=DAILY;INTERVAL=3"


@pytest.mark.parametrize("attempt", [SUPERSCRIPT_TWO, "3".translate(ARABIC_INDIC), "x"])
def test_the_next_instance_poll_reads_a_non_ascii_attempt_as_the_first(
    client, alice, make_task, attempt
):
    task = make_task(alice, due_date=dt.datetime(2030, 1, 7, 9, tzinfo=dt.UTC))
    task.completed = True
    task.save(update_fields=["completed"])
    client.force_login(alice)

    response = client.get(f"/tasks/{task.pk}/next/", {"attempt": attempt})

    assert response.status_code == 200
