"""Plain Django views doing the raw baseline's SQL through Django's cursor (the load runs'
"plain" side), and the naive DRF ``ModelViewSet`` baseline."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
from django.db import connection, transaction
from django.db.models import F, Q
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers, viewsets

from tasks.models import Task

from .baselines import NotFound, Raw, Unauthorized, list_queries, task_document

LIST = list_queries(connection.vendor)["list"]


def _raw() -> Raw:
    return Raw(connection.cursor, connection.vendor)


def _secret(request) -> str | None:
    keyword, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret if keyword == "Token" and secret else None


def _json(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json")


def plain_list(request) -> HttpResponse:
    try:
        body = _raw().list(
            _secret(request) or "", LIST, base_url=request.build_absolute_uri(request.path)
        )
    except Unauthorized:
        return _json(b'{"detail":"Invalid token."}', 401)
    return _json(body)


def plain_detail(request, pk: int) -> HttpResponse:
    try:
        return _json(_raw().detail(_secret(request) or "", pk))
    except Unauthorized:
        return _json(b'{"detail":"Invalid token."}', 401)
    except NotFound:
        return _json(b'{"detail":"Not found."}', 404)


@csrf_exempt
def plain_create(request) -> HttpResponse:
    """The app's create in raw SQL: the task, its tags found (or made) by ``lower(name)``,
    the links and the outbox row, in one transaction; answered with the task's JSON."""
    from events.payloads import json_value
    from events.registry import EventType
    from events.routing import topics_for

    data = orjson.loads(request.body)
    raw = _raw()
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic(), connection.cursor() as cur:
        try:
            user_id = raw.authenticate(cur, _secret(request) or "")
        except Unauthorized:
            return _json(b'{"detail":"Invalid token."}', 401)
        cur.execute("SELECT timezone FROM tasks_profile WHERE user_id = %s", [user_id])
        tz = data.get("timezone") or cur.fetchone()[0]
        values = [user_id, data["title"], data.get("description", ""), False, None,
                  data.get("priority", "medium"), None, tz, None, "", "none", 1, "schedule",
                  None, None, None, False, None, None, None, None, now, now]  # fmt: skip
        columns = ("user_id", "title", "description", "completed", "completed_at", "priority",
                   "due_date", "timezone", "category_id", "recurrence_rule", "recurrence_type",
                   "recurrence_interval", "recurrence_mode", "remind_at", "remind_before",
                   "next_occurrence_at", "reminder_sent", "last_triggered_at", "parent_id",
                   "series_id", "occurrence", "created_at", "updated_at")  # fmt: skip
        cur.execute(
            f"INSERT INTO tasks_task ({', '.join(columns)}) VALUES "
            f"({', '.join(['%s'] * len(columns))}) RETURNING id",
            values,
        )
        task_id = cur.fetchone()[0]
        names = list(dict.fromkeys(data.get("tags", [])))
        lowered = [n.lower() for n in names]
        where, params = raw.in_list("lower(name)", lowered)
        cur.execute(
            f"SELECT id, lower(name) FROM tasks_tag WHERE user_id = %s AND {where}",
            [user_id, *params],
        )
        tag_ids = dict((name, pk) for pk, name in cur.fetchall())
        for name in names:
            if name.lower() not in tag_ids:
                cur.execute(
                    "INSERT INTO tasks_tag (user_id, name, created_at) VALUES (%s, %s, %s) "
                    "RETURNING id",
                    [user_id, name, now],
                )
                tag_ids[name.lower()] = cur.fetchone()[0]
        if tag_ids:
            cur.executemany(
                "INSERT INTO task_tags (task_id, tag_id) VALUES (%s, %s)",
                [(task_id, pk) for pk in tag_ids.values()],
            )
        row = (task_id, *[dict(zip(columns, values, strict=True))[c] for c in _ROW_AFTER_ID])
        document = task_document(row, sorted(names, key=str.casefold))
        event = {"task_id": task_id, "task_data": document, "user_id": user_id,
                 "timestamp": json_value(now)}  # fmt: skip
        for topic in topics_for(EventType.TASK_CREATED, event):
            cur.execute(
                "INSERT INTO events_outboxevent (id, event_type, topic, partition_key, data, "
                "created_at, state, attempts, next_attempt_at, locked_by, last_attempt_by, "
                "last_error) VALUES (%s, %s, %s, %s, %s, %s, 'pending', 0, %s, '', '', '')",
                [
                    uuid.uuid4().hex if connection.vendor == "sqlite" else uuid.uuid4(),
                    str(EventType.TASK_CREATED),
                    topic,
                    str(task_id),
                    orjson.dumps(event).decode(),
                    now,
                    now,
                ],
            )
    return _json(orjson.dumps(document), 201)


_ROW_AFTER_ID = (
    "title", "description", "completed", "completed_at", "priority", "due_date", "timezone",
    "category_id", "recurrence_rule", "recurrence_type", "recurrence_interval",
    "recurrence_mode", "remind_at", "remind_before", "reminder_sent", "next_occurrence_at",
    "last_triggered_at", "parent_id", "series_id", "occurrence", "created_at", "updated_at",
)  # fmt: skip


class NaiveTaskSerializer(serializers.ModelSerializer):
    """What a first DRF version would write: a ModelSerializer, tags by name."""

    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Task
        exclude = ["user", "priority_rank"]


class NaiveTaskViewSet(viewsets.ReadOnlyModelViewSet):
    """A naive ``ModelViewSet``: ``prefetch_related("tags")`` and plain ORM filters."""

    serializer_class = NaiveTaskSerializer
    filter_backends: list = []

    def get_queryset(self):
        qs = Task.objects.filter(user=self.request.user).prefetch_related("tags")
        params = self.request.query_params
        if params.get("status") == "pending":
            qs = qs.filter(completed=False)
        if tag := params.get("tags"):
            qs = qs.filter(tags__name__iexact=tag)
        if word := params.get("search"):
            qs = qs.filter(Q(title__icontains=word) | Q(description__icontains=word))
        ordering = {
            "-priority": ["-priority_rank", "-id"],
            "due_date": [F("due_date").asc(nulls_last=True), "id"],
        }.get(params.get("ordering", ""), ["-created_at", "-id"])
        return qs.order_by(*ordering)
