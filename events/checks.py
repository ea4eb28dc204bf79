"""``manage.py check`` validates the routing table, so a typo fails at start, not mid-delivery."""

from __future__ import annotations

import re
from collections import Counter

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from .registry import EventType

#: ``EVENT_CONSUMERS`` words that name no role: every role, or none (e.g. a web-only process).
ROLE_KEYWORDS = ("all", "none")


def check_routing_table(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Every topic configured, every event type and role known, every handler callable,
    every consumer's event types routed to its topic, every consumer name unique and every
    ``EVENT_CONSUMERS`` entry meaningful."""
    try:
        from .routing import TABLE
    except ImportError as exc:
        return [
            Error(
                f"The routing table (events/routing.py) cannot be imported: {exc}",
                hint="A handler it imports was renamed or moved.",
                id="tideline.E003",
            )
        ]
    known_types = {event_type.value for event_type in EventType}
    errors: list[CheckMessage] = []

    def unknown_topic(topic: str, where: str) -> None:
        if topic not in settings.EVENT_TOPICS:
            errors.append(
                Error(
                    f"{where} names topic {topic!r}, which settings.EVENT_TOPICS does not map.",
                    hint=f"Known topics: {', '.join(sorted(settings.EVENT_TOPICS))}.",
                    id="tideline.E001",
                )
            )

    def unknown_type(event_type: str, where: str) -> None:
        if event_type not in known_types:
            errors.append(
                Error(
                    f"{where} names event type {event_type!r}, which is not an EventType.",
                    hint=f"Known event types: {', '.join(sorted(known_types))}.",
                    id="tideline.E002",
                )
            )

    def not_callable(handler: object, where: str) -> None:
        if not callable(handler):
            errors.append(
                Error(f"{where}: handler {handler!r} is not callable.", id="tideline.E003")
            )

    def unknown_role(role: str, where: str) -> None:
        if role not in TABLE.roles:
            errors.append(
                Error(
                    f"{where} is served by role {role!r}, which is not a known role.",
                    hint=f"Known roles: {', '.join(TABLE.roles)}.",
                    id="tideline.E004",
                )
            )

    def never_routed_to(topic: str, event_type: str, where: str) -> None:
        """A consumer waits for an event type that no route sends to its topic. Unknown
        topics and types, and types without any route, are reported once, above (E001,
        E002): a route to a mistyped topic may be the one meant."""
        routes = TABLE.routes.get(event_type, ())
        known = settings.EVENT_TOPICS
        if topic not in known or not routes or any(r.topic not in known for r in routes):
            return
        if all(route.topic != topic for route in routes):
            name = getattr(event_type, "value", event_type)
            errors.append(
                Error(
                    f"{where} of topic {topic!r} takes {name!r}, which is never routed "
                    f"to {topic!r}: it can never receive it.",
                    hint="Add the route in TABLE.routes, or drop the type from the consumer's "
                    "event_types.",
                    id="tideline.E008",
                )
            )

    for event_type, routes in TABLE.routes.items():
        unknown_type(event_type, "A route")
        for route in routes:
            unknown_topic(route.topic, f"The route of {event_type!r}")
    for event_type in known_types - set(TABLE.routes):
        errors.append(
            Error(
                f"Event type {event_type!r} has no route: emit() would write it nowhere.",
                id="tideline.E002",
            )
        )
    for topic, consumers in TABLE.consumers.items():
        unknown_topic(topic, "The consumers table")
        for consumer in consumers:
            where = f"Consumer {consumer.name!r}"
            for event_type in consumer.event_types:
                unknown_type(event_type, where)
                never_routed_to(topic, event_type, where)
            not_callable(consumer.handler, where)
            unknown_role(consumer.role, where)
    for callback in TABLE.jobs:
        where = f"Job callback {callback.name!r}"
        not_callable(callback.handler, where)
        unknown_role(callback.role, where)
        try:
            re.compile(callback.pattern)
        except re.error as exc:
            errors.append(
                Error(
                    f"{where}: pattern {callback.pattern!r} is invalid: {exc}", id="tideline.E007"
                )
            )

    names = [c.name for consumers in TABLE.consumers.values() for c in consumers]
    names += [callback.name for callback in TABLE.jobs]
    for name, count in Counter(names).items():
        if count > 1:
            errors.append(
                Error(
                    f"Consumer name {name!r} is used {count} times.",
                    hint="A consumer's name is its idempotency key: each must be unique.",
                    id="tideline.E005",
                )
            )

    for entry in settings.EVENT_CONSUMERS:
        if entry.strip() not in (*ROLE_KEYWORDS, *TABLE.roles):
            errors.append(
                Error(
                    f"EVENT_CONSUMERS names {entry!r}, which is no role.",
                    hint=f"Use all, none or roles among: {', '.join(TABLE.roles)}.",
                    id="tideline.E006",
                )
            )
    return errors


def check_app_token(app_configs=None, **kwargs) -> list[CheckMessage]:
    """With Dapr and without ``DEBUG``, the sidecar's calls must carry a token, or anyone who
    reaches the app could fire another user's reminder. A deployment check (``check
    --deploy``), and the WSGI entry point refuses to serve (``refuse_to_serve_anonymous_
    callbacks``): the processes that never serve callbacks (the migration Job) run without
    the token."""
    if settings.DAPR_ENABLED and not settings.DEBUG and not settings.APP_API_TOKEN:
        return [
            Error(
                "DAPR_ENABLED is on without APP_API_TOKEN: anyone could call /events/* and "
                "/job/* (e.g. fire another user's reminder).",
                hint="Set APP_API_TOKEN to the sidecar's app token (dapr.io/app-token-secret).",
                id="tideline.E012",
            )
        ]
    return []


def refuse_to_serve_anonymous_callbacks() -> None:
    """Called by the WSGI entry point: a server with Dapr on, ``DEBUG`` off and no
    ``APP_API_TOKEN`` does not start (tideline.E012)."""
    for error in check_app_token():
        raise ImproperlyConfigured(f"{error.id}: {error.msg} {error.hint}")
