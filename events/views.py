"""The endpoints the Dapr sidecar calls: discovery, topic deliveries, job callbacks, probes.

Paths are exact, without a trailing slash, because that is what daprd calls.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from . import dapr
from .cloudevents import load_json
from .dispatch import DeliveryStatus, classify, deliver, subscribed_topics
from .failures import FailureKind
from .jobs import find_job_handler
from .relay import configuration_error

logger = logging.getLogger(__name__)


class DaprAppTokenAuthentication(authentication.BaseAuthentication):
    """With APP_API_TOKEN set, every call must carry it in ``dapr-api-token``, compared in
    constant time (else 401). Production must set it: ``check --deploy`` fails without
    (tideline.E012)."""

    def authenticate(self, request):
        expected = settings.APP_API_TOKEN
        if not expected:  # only with DEBUG on in production: tideline.E012
            return None
        given = request.headers.get("dapr-api-token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("Missing or wrong dapr-api-token.")
        return None

    def authenticate_header(self, request) -> str:
        return "dapr-api-token"


class DaprCallbackView(APIView):
    authentication_classes = [DaprAppTokenAuthentication]
    permission_classes = [permissions.AllowAny]
    parser_classes: list = []  # the raw body is read as is: bad JSON must be a DROP, not a 400

    def raw_body(self, request) -> bytes | None:
        """The body, or None when it is over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django would
        answer an HTML 400, which daprd redelivers)."""
        try:
            return request.body
        except RequestDataTooBig:
            return None


@extend_schema(exclude=True)
class SubscribeView(APIView):
    """``GET /dapr/subscribe``: one entry per topic this process's consumers serve."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request):
        return Response(
            [
                {
                    "pubsubname": settings.DAPR_PUBSUB_NAME,
                    "topic": topic,
                    "routes": {"default": f"/events/{topic}"},
                    "deadLetterTopic": settings.EVENT_DEAD_LETTER_TOPIC,
                    "metadata": {},
                }
                for topic in subscribed_topics()
            ]
        )


@extend_schema(exclude=True)
class TopicEventView(DaprCallbackView):
    """``POST /events/<topic>``: a CloudEvent from the sidecar, answered SUCCESS/RETRY/DROP."""

    def post(self, request, topic: str):
        if topic not in subscribed_topics():
            logger.warning("event for a topic this process does not serve topic=%s", topic)
            return Response({"status": DeliveryStatus.DROP})
        body = self.raw_body(request)
        if body is None:
            logger.warning("event dropped topic=%s reason=body over the size limit", topic)
            return Response({"status": DeliveryStatus.DROP})
        try:
            status = deliver(topic, body)
        except DatabaseError as exc:  # e.g. the database is unavailable
            logger.warning("event delivery failed, retry topic=%s error=%s", topic, exc)
            status = DeliveryStatus.RETRY
        return Response({"status": status})


@extend_schema(exclude=True)
class JobCallbackView(DaprCallbackView):
    """``POST /job/<name>``: a Dapr job is due; the body is the job's ``data``.

    2xx and 404 are final for daprd; anything else is retried (3 times by default). So a
    trigger that can never run (a body too big, not JSON, or a handler's permanent failure) is
    answered 200 and logged; only a transient failure (the database, the sidecar) is a 503
    (a failure for daprd's policy, and never a 500: nothing crashed).
    """

    def post(self, request, name: str):
        handler = find_job_handler(name)
        if handler is None:
            return Response({"detail": f"No job named {name!r}."}, status=404)
        body = self.raw_body(request)
        try:
            if body is None:
                raise ValueError("body over the size limit")
            data = load_json(body or b"{}")
        except ValueError as exc:  # UnicodeDecodeError included
            logger.warning(
                "job trigger with an unreadable body ignored name=%s reason=%s", name, exc
            )
            return Response({"status": "DROPPED"})
        if not isinstance(data, dict):
            data = {"value": data}
        try:
            handler(name, data)
        except Exception as exc:
            if classify(exc) in (FailureKind.TRANSIENT, FailureKind.CONFIGURATION):
                logger.warning("job failed, daprd retries it name=%s error=%s", name, exc)
                retry_after = {"Retry-After": str(settings.DATABASE_RETRY_AFTER_SECONDS)}
                return Response({"status": "RETRY"}, status=503, headers=retry_after)
            if classify(exc) is FailureKind.PERMANENT:
                logger.warning("job can never run, done name=%s reason=%s", name, exc)
            else:
                logger.exception(
                    "job crashed, done (daprd's retries would crash too) name=%s", name
                )
            return Response({"status": "DROPPED"})
        return Response({"status": "SUCCESS"})


@extend_schema(exclude=True)
class HealthView(APIView):
    """Liveness: the process answers."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request):
        return Response({"status": "ok"})


@extend_schema(exclude=True)
class ReadyView(APIView):
    """Readiness: the database answers and, with Dapr, the sidecar is up and this app's sidecar
    configuration lets events out (another app id's 401/403 on the shared outbox is that app's,
    see ``configuration_error``).

    The sidecar is asked ``GET /v1.0/healthz/outbound``: daprd answers 204 once its components
    are loaded, before it waits for the app, so this probe and the sidecar's app health check
    (``dapr.io/app-health-check-path: /healthz``, never ``/readyz``) cannot wait on each
    other. ``/v1.0/healthz`` would: it stays 500 until daprd has found the app.
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            blocked = configuration_error()
        except DatabaseError as exc:
            return Response({"status": "unavailable", "database": str(exc)}, status=503)
        if settings.DAPR_ENABLED:
            blocked = sidecar_unready() or blocked
        if blocked:
            return Response(
                {"status": "unavailable", "database": "ok", "sidecar": blocked}, status=503
            )
        return Response({"status": "ok", "database": "ok"})


#: Seconds the readiness probe waits for the sidecar: well inside the kubelet's probe timeout
#: (3 s in k8s/), so a hung sidecar reads as not ready, not as a probe timeout.
SIDECAR_PROBE_TIMEOUT_SECONDS = 1.0


def sidecar_unready() -> str:
    """Why this app's sidecar cannot take outbound calls yet, "" when it can."""
    try:
        dapr.request("GET", "/v1.0/healthz/outbound", timeout=SIDECAR_PROBE_TIMEOUT_SECONDS)
    except dapr.DaprError as exc:
        return f"not ready: {exc}"
    return ""
