"""k8s/ and dapr/ as a cluster and daprd would take them (issue 10, item 6), checked offline.

Every object validates strictly against the real schemas, and the manifests, the Dapr files
and the code agree: topics, scopes, token Secrets, the settings' environment, subscriptions.
Each check (tests/deploy/support.py) takes parsed objects and returns problems: the positive
tests expect none in the repository's files, and every check also rejects a broken copy of
them, so none passes vacuously. The overlays are assembled in Python (support.assemble), so
every check runs without kubectl; where kubectl exists, a test proves the assembly equals
``kubectl kustomize``'s build, and only those kubectl tests are skipped without it.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import Client, override_settings
from dockerfile_parse import DockerfileParser

from events.routing import TABLE

from . import support
from .support import Doc, find

KUBECTL = shutil.which("kubectl")

#: Variables the settings read whose default is right in production: the manifests may leave
#: them unset. Every other variable the settings read must be set for each container running
#: the image, by the manifests or the image's ENV; a new setting fails until it is set or
#: added here with its reason.
SAFE_DEFAULTS = {
    "DEBUG": "off",
    "TIME_ZONE": "UTC",
    "CONN_MAX_AGE": "60 s persistent connections; no per-request health check (a dropped "
    "connection answers 503 once, then is replaced)",
    "EMAIL_BACKEND": "SMTP whenever DEBUG is off",
    "EMAIL_FILE_PATH": "read only by the file e-mail backend, which production does not use",
    "EMAIL_TIMEOUT": "10 s",
    "CELERY_BROKER_URL": "unset: no Celery, background work runs in the server process",
    "CELERY_RESULT_BACKEND": "unset: no task results are kept",
    "API_PAGE_SIZE": "product default",
    "API_MAX_PAGE_SIZE": "product default",
    "WEB_PAGE_SIZE": "product default",
    "DEFAULT_DUE_TIME": "product default",
    "LOG_LEVEL": "INFO",
    "DAPR_HTTP_HOST": "127.0.0.1: the sidecar shares the pod's network",
    "DAPR_HTTP_PORT": "3500, and the Dapr injector sets it in the app container",
    "DAPR_TIMEOUT_SECONDS": "5 s per sidecar call",
    "DAPR_BULK_PUBLISH": "on: daprd 1.14+ serves the bulk publish API",
    "DAPR_JOBS_API_PREFIX": "follows the sidecar's runtimeVersion (issue 10, item 3)",
    "TOPIC_TASK_EVENTS": "the KafkaTopics are checked against the default topic names",
    "TOPIC_TASK_UPDATES": "as TOPIC_TASK_EVENTS",
    "TOPIC_TASK_RECURRENCE": "as TOPIC_TASK_EVENTS",
    "TOPIC_TASK_REMINDERS": "as TOPIC_TASK_EVENTS",
    "EVENT_DEAD_LETTER_TOPIC": "as TOPIC_TASK_EVENTS",
    "EVENT_MAX_ATTEMPTS": "10 attempts at a held event (the app retries it, in every mode)",
    "EVENT_RETRY_BASE_SECONDS": "the app's own backoff between those attempts, in every mode",
    "EVENT_RETRY_MAX_SECONDS": "as EVENT_RETRY_BASE_SECONDS",
    "DATABASE_POOL": "off: a connection per request (gunicorn.conf.py sets CONN_MAX_AGE=0)",
    "DATABASE_POOL_MAX_SIZE": "5 connections per process (docs/deploy.md, Sizing)",
    "DATABASE_POOL_TIMEOUT": "5 s, then a 503 with Retry-After",
    "DATABASE_PREPARED_STATEMENTS": "on: PostgreSQL is reached directly, no PgBouncer",
    "LIVE_HEARTBEAT_SECONDS": "live-updates tuning",
    "LIVE_STREAM_MAX_SECONDS": "live-updates tuning",
    "LIVE_MAX_STREAMS_PER_USER": "live-updates tuning",
    "LIVE_UPDATES_RETENTION_HOURS": "live-updates tuning",
    "LIVE_POLL_SECONDS": "SQLite only; production runs PostgreSQL (LISTEN/NOTIFY)",
    "OUTBOX_BATCH_SIZE": "relay tuning",
    "OUTBOX_LEASE_SECONDS": "relay tuning",
    "OUTBOX_BACKOFF_BASE_SECONDS": "relay tuning",
    "OUTBOX_BACKOFF_MAX_SECONDS": "relay tuning",
    "OUTBOX_RETENTION_HOURS": "relay tuning",
    "RELAY_SWEEP_SECONDS": "relay tuning",
    "TIDELINE_BACKGROUND": "on: the relay thread and the one scheduler run in the app process",
    "REMINDER_SWEEP_SCHEDULE": "reminder tuning",
    "REMINDER_MISSED_AFTER_MINUTES": "reminder tuning",
    "REMINDER_MAX_ATTEMPTS": "reminder tuning",
    "REMINDER_RETRY_BASE_SECONDS": "reminder tuning",
    "REMINDER_SENDING_LEASE_SECONDS": "reminder tuning",
    "REMINDER_STATE_TTL_SECONDS": "reminder tuning",
    "THROTTLE_ANON": "60/min per address",
    "THROTTLE_USER": "600/min per user",
    "THROTTLE_AUTH": "10/min per address on the token and registration endpoints",
    "THROTTLE_WEBHOOKS": "30/min per user for webhook test events and redeliveries",
    "WEBHOOK_ALLOW_HTTP": "DEBUG's value: off, https:// only",
    "WEBHOOK_ALLOWED_NETWORKS": "empty: no private address is reachable",
    "WEBHOOK_CA_BUNDLE": "empty: the public CAs",
    "WEBHOOK_TIMEOUT_SECONDS": "webhook tuning",
    "WEBHOOK_RESPONSE_MAX_BYTES": "webhook tuning",
    "WEBHOOK_MAX_ATTEMPTS": "webhook tuning",
    "WEBHOOK_RETRY_BASE_SECONDS": "webhook tuning",
    "WEBHOOK_RETRY_MAX_SECONDS": "webhook tuning",
    "WEBHOOK_DISABLE_AFTER_FAILURES": "webhook tuning",
    "WEBHOOK_SWEEP_SECONDS": "webhook tuning",
    "WEBHOOK_SENDING_LEASE_SECONDS": "webhook tuning",
    "WEBHOOK_MAX_ENDPOINTS": "webhook tuning",
    "WEBHOOK_RETENTION_DAYS": "webhook tuning",
    "TIDELINE_PROXY_COUNT": "1 behind the TLS proxy (TIDELINE_BEHIND_TLS_PROXY), else 0",
    "CACHE_URL": "per process: throttle counts per worker; lockouts are in the database",
    "AXES_FAILURE_LIMIT": "10 failed logins per username and address",
    "AXES_COOLOFF_MINUTES": "60 min",
    "IDEMPOTENCY_KEY_TTL_HOURS": "24 h, as the IETF draft's examples and the usual APIs",
    "DATABASE_RETRY_AFTER_SECONDS": "5 s: a database restart or failover",
    "API_TOKEN_DEFAULT_EXPIRY_DAYS": "90 days for a token created without an expiry",
}

SETTINGS_SOURCE = (support.REPO / "todo_project" / "settings.py").read_text()


def settings_reads(source: str = SETTINGS_SOURCE) -> set[str]:
    names, unresolved = support.settings_environment_reads(source)
    assert unresolved == [], "name these reads literally, or through a helper's literal calls"
    return names


def image_environment() -> set[str]:
    """The variables the image's final stage sets with ENV."""
    dockerfile = support.REPO / "Dockerfile"
    return set(DockerfileParser(str(dockerfile)).envs) if dockerfile.exists() else set()


def component_defaults() -> dict[str, str]:
    return {
        "DAPR_PUBSUB_NAME": settings.DAPR_PUBSUB_NAME,
        "DAPR_STATESTORE_NAME": settings.DAPR_STATESTORE_NAME,
    }


def served_roles() -> set[str]:
    """The roles that have work: consumers or job callbacks."""
    consumers = {c.role for handlers in TABLE.consumers.values() for c in handlers}
    return consumers | {job.role for job in TABLE.jobs}


def code_topics() -> list[str]:
    return list(settings.EVENT_TOPICS.values())


def dapr_subscribe(roles: list[str], environment: dict[str, str | None]) -> list[Doc]:
    """``GET /dapr/subscribe`` of a process serving ``roles`` with the manifests' environment."""
    overrides: dict = {"EVENT_CONSUMERS": roles, "DAPR_ENABLED": True}
    if environment.get("DAPR_PUBSUB_NAME"):
        overrides["DAPR_PUBSUB_NAME"] = environment["DAPR_PUBSUB_NAME"]
    with override_settings(**overrides):
        response = Client().get("/dapr/subscribe")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture(params=support.OVERLAYS)
def overlay(request) -> str:
    return request.param


def overlay_objects(name: str) -> list[Doc]:
    """An overlay's assembled objects with its Secret templates and dapr/, as a fresh copy."""
    return copy.deepcopy(support.overlay_bundle(name))


@pytest.fixture
def objects(overlay) -> list[Doc]:
    return overlay_objects(overlay)


@pytest.fixture
def production() -> list[Doc]:
    """The production overlay with dapr/, to break in the negative tests."""
    return overlay_objects("production")


@pytest.fixture
def local() -> list[Doc]:
    """dapr/local: the Dapr CLI's components and run file."""
    return copy.deepcopy(support.local_documents())


@pytest.fixture
def dapr_files() -> list[Doc]:
    return copy.deepcopy(support.dapr_documents())


def problems_mentioning(problems: list[str], *fragments: str) -> list[str]:
    return [p for p in problems if all(fragment in p for fragment in fragments)]


# --- The overlays build -----------------------------------------------------------------


def test_the_overlays_are_minikube_and_production():
    assert support.overlay_names() == sorted(support.OVERLAYS)


def require_kubectl() -> None:
    """Skip without kubectl (the machine's, which no project file installs: issue 10 skips the
    build then, even under REQUIRE_SERVICES=1); with kubectl, a failing build fails."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` cannot build the overlays")


def comparable(docs) -> list[str]:
    """Objects as sorted JSON, Secret data decoded (kubectl wraps long base64 lines)."""
    decoded = copy.deepcopy(list(docs))
    for doc in support.of_kind(decoded, "Secret"):
        doc["data"] = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    return sorted(json.dumps(doc, sort_keys=True) for doc in decoded)


def test_each_overlay_builds_with_kubectl_as_assembled(overlay):
    require_kubectl()
    for folder in support.overlay_kustomizations(overlay):
        built = support.kustomize_build(folder)
        assert {doc["kind"] for doc in built} & {"Deployment", "Kafka"}
        assert comparable(support.assemble(folder)) == comparable(built), folder


def test_an_overlay_naming_a_missing_file_does_not_build(tmp_path):
    require_kubectl()
    kustomization = _copy_with_missing_resource(tmp_path)
    with pytest.raises(support.KustomizeError, match=r"does-not-exist\.yaml"):
        support.kustomize_build(kustomization.parent)


def _copy_with_missing_resource(tmp_path: Path) -> Path:
    shutil.copytree(support.K8S, tmp_path / "k8s")
    shutil.copytree(support.DAPR, tmp_path / "dapr")
    kustomization = tmp_path / "k8s" / "overlays" / "production" / "kustomization.yaml"
    content = yaml.safe_load(kustomization.read_text())
    content.setdefault("resources", []).append("does-not-exist.yaml")
    kustomization.write_text(yaml.safe_dump(content))
    return kustomization


def test_each_overlay_assembles(overlay):
    assembled = support.built_overlay(overlay)
    assert {doc["kind"] for doc in assembled} >= {"Namespace", "Deployment", "ConfigMap", "Kafka"}


def test_an_overlay_naming_a_missing_file_does_not_assemble(tmp_path):
    kustomization = _copy_with_missing_resource(tmp_path)
    with pytest.raises(support.AssemblyError, match=r"'does-not-exist\.yaml' does not exist"):
        support.assemble(kustomization.parent)


def _kustomization_with(tmp_path: Path, **fields) -> Path:
    (tmp_path / "configmap.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    )
    content = {"kind": "Kustomization", "resources": ["configmap.yaml"], **fields}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(content))
    return tmp_path


@pytest.mark.parametrize(
    "fields",
    [
        {"namePrefix": "x-"},
        {"components": ["../celery"]},
        {"secretGenerator": [{"name": "s", "literals": ["a=b"]}]},
        {
            "patches": [
                {"target": {"kind": "ConfigMap"}, "patch": "- op: move\n  from: /a\n  path: /b"}
            ]
        },
        {"patches": [{"target": {"kind": "ConfigMap"}, "patch": "data:\n  a: [1]"}]},
        {"patches": [{"target": {"kind": "Secret"}, "patch": "- op: remove\n  path: /data"}]},
        {
            "patches": [
                {
                    "target": {"kind": "ConfigMap"},
                    "patch": "- op: replace\n  path: /data/a\n  value: b",
                }
            ]
        },
        {"images": [{"name": "tideline", "digest": "sha256:0"}]},
    ],
    ids=[
        "prefix",
        "component",
        "hashed-names",
        "move",
        "list-merge",
        "no-target",
        "no-member",
        "digest",
    ],
)
def test_what_the_assembly_does_not_implement_fails_loudly(tmp_path, fields):
    with pytest.raises(support.AssemblyError):
        support.assemble(_kustomization_with(tmp_path, **fields))


# --- Built-in objects -------------------------------------------------------------------


def test_built_in_objects_validate_strictly(objects):
    assert support.builtin_problems(objects) == []


def test_an_unknown_field_in_a_built_in_object_is_rejected(production):
    deployment = find(production, "Deployment")
    deployment["spec"]["replica"] = 2
    assert problems_mentioning(
        support.builtin_problems(production),
        f"Deployment/{support.name_of(deployment)}",
        "'replica' was unexpected",
    )


def test_a_wrong_type_in_a_built_in_object_is_rejected(production):
    config_map = find(production, "ConfigMap", lambda doc: bool(doc.get("data")))
    config_map["data"][next(iter(config_map["data"]))] = ["not", "a", "string"]
    assert problems_mentioning(
        support.builtin_problems(production), f"ConfigMap/{support.name_of(config_map)}: data."
    )


# --- Dapr and Strimzi objects against their CRDs ----------------------------------------


def test_dapr_and_strimzi_objects_validate_against_their_crds(objects):
    kinds = {doc["kind"] for doc in objects if support.group_of(doc) in support.CUSTOM_GROUPS}
    assert kinds >= {"Component", "Configuration", "Resiliency", "Kafka", "KafkaNodePool"}
    assert kinds >= {"KafkaUser", "KafkaTopic"}
    assert support.crd_problems(objects) == []


def test_dapr_local_objects_validate_against_their_crds(local):
    assert support.of_kind(local, "Component")
    assert support.crd_problems(local) == []


def test_an_unknown_field_in_a_component_is_rejected(dapr_files):
    component = find(dapr_files, "Component")
    component["spec"]["tableName"] = "state"
    assert problems_mentioning(
        support.crd_problems(dapr_files),
        f"Component/{support.name_of(component)}: spec:",
        "'tableName' was unexpected",
    )


def test_a_component_without_spec_metadata_is_rejected(dapr_files):
    component = find(dapr_files, "Component")
    del component["spec"]["metadata"]
    assert problems_mentioning(
        support.crd_problems(dapr_files), "'metadata' is a required property"
    )


def test_an_unknown_object_metadata_field_is_rejected(dapr_files):
    resiliency = find(dapr_files, "Resiliency")
    resiliency["metadata"]["label"] = {"app": "tideline"}
    assert problems_mentioning(
        support.crd_problems(dapr_files), "Resiliency/", "metadata:", "'label' was unexpected"
    )


def test_an_unknown_field_in_a_strimzi_object_is_rejected(production):
    topic = find(production, "KafkaTopic")
    topic["spec"]["partition"] = 3
    assert problems_mentioning(
        support.crd_problems(production),
        f"KafkaTopic/{support.name_of(topic)}",
        "'partition' was unexpected",
    )


def test_an_api_version_no_crd_serves_is_rejected(production):
    kafka = find(production, "Kafka")
    kafka["apiVersion"] = "kafka.strimzi.io/v1beta1"
    assert problems_mentioning(
        support.crd_problems(production), "no vendored CRD serves kafka.strimzi.io/v1beta1 Kafka"
    )


# --- Component metadata against components-contrib -------------------------------------


def test_component_metadata_fields_exist(objects):
    assert support.component_metadata_problems(objects) == []


def test_dapr_local_component_metadata_fields_exist(local):
    assert support.component_metadata_problems(local) == []


def test_a_misspelled_component_metadata_field_is_rejected(dapr_files):
    component = find(dapr_files, "Component", lambda doc: bool(doc["spec"].get("metadata")))
    component["spec"]["metadata"][0]["name"] += "s"
    misspelled = component["spec"]["metadata"][0]["name"]
    assert problems_mentioning(
        support.component_metadata_problems(dapr_files),
        f"Component/{support.name_of(component)}: metadata field {misspelled!r} is not in",
    )


def test_a_value_outside_a_fields_allowed_values_is_rejected(dapr_files):
    kafka = find(dapr_files, "Component", lambda doc: doc["spec"]["type"] == "pubsub.kafka")
    mechanism = next(i for i in kafka["spec"]["metadata"] if i["name"] == "saslMechanism")
    mechanism["value"] = "SCRAM-SHA-512"  # not a value the component knows: it falls back to PLAIN
    assert problems_mentioning(
        support.component_metadata_problems(dapr_files),
        "metadata field 'saslMechanism' is 'SCRAM-SHA-512', not one of",
    )


def test_a_component_type_without_a_vendored_metadata_file_is_rejected(dapr_files):
    component = find(dapr_files, "Component")
    component["spec"]["version"] = "v9"
    assert problems_mentioning(
        support.component_metadata_problems(dapr_files), "no vendored metadata.yaml for"
    )


# --- Resiliency -------------------------------------------------------------------------


def test_resiliency_targets_exist(objects):
    assert support.resiliency_problems(objects) == []


def test_a_resiliency_target_naming_a_missing_component_is_rejected(dapr_files):
    resiliency = find(dapr_files, "Resiliency")
    target = next(iter(resiliency["spec"]["targets"]["components"]))
    find(dapr_files, "Component", lambda doc: support.name_of(doc) == target)["metadata"][
        "name"
    ] = "renamed"
    assert problems_mentioning(
        support.resiliency_problems(dapr_files),
        f"targets.components names {target!r}, which is not a Component",
    )


def test_a_resiliency_target_naming_a_missing_policy_is_rejected(dapr_files):
    resiliency = find(dapr_files, "Resiliency")
    target = next(iter(resiliency["spec"]["targets"]["components"].values()))
    target.setdefault("inbound", {})["retry"] = "noSuchRetry"
    assert problems_mentioning(
        support.resiliency_problems(dapr_files),
        "names 'noSuchRetry', which is not in policies.retries",
    )


# --- Kafka topics -----------------------------------------------------------------------


def test_every_topic_the_code_uses_has_a_kafka_topic(objects):
    topics = code_topics()
    assert topics, "settings.EVENT_TOPICS is empty"
    problems = support.kafka_topic_problems(objects, topics, settings.EVENT_DEAD_LETTER_TOPIC)
    assert problems == []


def _without_topic(docs: list[Doc], topic: str) -> list[Doc]:
    def names(doc: Doc) -> bool:
        return topic in (doc["spec"].get("topicName"), support.name_of(doc))

    assert find(docs, "KafkaTopic", names)
    return [doc for doc in docs if not (doc.get("kind") == "KafkaTopic" and names(doc))]


def test_a_topic_without_its_kafka_topic_is_rejected(production):
    topic = code_topics()[0]
    problems = support.kafka_topic_problems(
        _without_topic(production, topic), code_topics(), settings.EVENT_DEAD_LETTER_TOPIC
    )
    assert f"no KafkaTopic for topic {topic!r}" in problems


def test_a_missing_dead_letter_topic_is_rejected(production):
    dead_letter = settings.EVENT_DEAD_LETTER_TOPIC
    problems = support.kafka_topic_problems(
        _without_topic(production, dead_letter), code_topics(), dead_letter
    )
    assert f"no KafkaTopic for the dead-letter topic {dead_letter!r}" in problems


def test_a_kafka_topic_of_a_missing_cluster_is_rejected(production):
    topic = find(production, "KafkaTopic")
    topic["metadata"]["labels"]["strimzi.io/cluster"] = "elsewhere"
    problems = support.kafka_topic_problems(
        production, code_topics(), settings.EVENT_DEAD_LETTER_TOPIC
    )
    assert problems_mentioning(problems, "strimzi.io/cluster is 'elsewhere', which names no Kafka")


def test_the_kafka_component_reaches_a_strimzi_listener_as_it_expects(objects):
    assert support.kafka_client_problems(objects) == []


def _kafka_component(docs: list[Doc]) -> dict[str, Doc]:
    kafka = find(docs, "Component", lambda doc: doc["spec"]["type"] == "pubsub.kafka")
    return {item["name"]: item for item in kafka["spec"]["metadata"]}


def test_a_sasl_mechanism_strimzi_does_not_offer_is_rejected(production):
    _kafka_component(production)["saslMechanism"]["value"] = "SHA-256"
    assert problems_mentioning(
        support.kafka_client_problems(production),
        "wants SCRAM-SHA-512: authType 'password' and saslMechanism 'SHA-512'",
    )


def test_a_broker_port_without_a_listener_is_rejected(production):
    brokers = _kafka_component(production)["brokers"]
    brokers["value"] = brokers["value"].rsplit(":", 1)[0] + ":9999"
    assert problems_mentioning(support.kafka_client_problems(production), "no listener on 9999")


def test_a_kafka_component_without_the_cluster_ca_is_rejected(production):
    kafka = find(production, "Component", lambda doc: doc["spec"]["type"] == "pubsub.kafka")
    kafka["spec"]["metadata"] = [i for i in kafka["spec"]["metadata"] if i["name"] != "caCert"]
    assert problems_mentioning(support.kafka_client_problems(production), "is TLS: set caCert")


def test_a_sasl_username_that_is_no_kafka_user_is_rejected(production):
    _kafka_component(production)["saslUsername"]["value"] = "nobody"
    assert problems_mentioning(
        support.kafka_client_problems(production), "saslUsername 'nobody' is no SCRAM-SHA-512"
    )


# --- Scopes -----------------------------------------------------------------------------


def test_scopes_name_real_app_ids(objects):
    assert support.app_ids(objects)
    assert support.scope_problems(objects, support.app_ids(objects)) == []


def test_dapr_local_scopes_name_the_run_files_app_ids(local):
    assert support.run_file_app_ids(local)
    assert support.scope_problems(local, support.run_file_app_ids(local)) == []


def test_a_scope_naming_a_missing_app_id_is_rejected(production):
    component = find(production, "Component", lambda doc: bool(doc.get("scopes")))
    component["scopes"].append("ghost-app")
    problems = support.scope_problems(production, support.app_ids(production))
    assert problems_mentioning(
        problems, f"Component/{support.name_of(component)}: scope 'ghost-app' is not an app id"
    )


# --- Token Secrets and Dapr annotations -------------------------------------------------


def test_token_secrets_have_the_key_the_injector_reads(objects):
    assert support.dapr_annotation_problems(objects) == []


def _token_secret(docs: list[Doc], annotation: str) -> tuple[Doc, Doc]:
    deployment = find(docs, "Deployment", support.dapr_enabled)
    name = support.pod_annotations(deployment)[annotation]
    return deployment, find(docs, "Secret", lambda doc: support.name_of(doc) == name)


def test_a_token_secret_without_the_key_token_is_rejected(production):
    _, secret = _token_secret(production, "dapr.io/api-token-secret")
    name = support.name_of(secret)
    for field in ("data", "stringData"):
        if "token" in (secret.get(field) or {}):
            secret[field]["dapr-api-token"] = secret[field].pop("token")
    assert problems_mentioning(
        support.dapr_annotation_problems(production),
        f"Secret {name!r} (named by dapr.io/api-token-secret) has no key 'token'",
    )


def test_a_missing_token_annotation_is_rejected(production):
    deployment, _ = _token_secret(production, "dapr.io/app-token-secret")
    del deployment["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-token-secret"]
    assert (
        f"Deployment/{support.name_of(deployment)}: no dapr.io/app-token-secret annotation"
        in support.dapr_annotation_problems(production)
    )


def test_an_app_reading_another_token_than_its_sidecar_is_rejected(production):
    deployment, secret = _token_secret(production, "dapr.io/api-token-secret")
    container = support.app_containers(deployment)[0]
    for variable in container["env"]:
        if variable["name"] == "DAPR_API_TOKEN":
            variable["valueFrom"]["secretKeyRef"]["key"] = "dapr-api-token"
    assert problems_mentioning(
        support.dapr_annotation_problems(production),
        f"does not read DAPR_API_TOKEN from Secret {support.name_of(secret)!r} key 'token'",
    )


# --- The settings' environment ----------------------------------------------------------


def test_the_allow_list_names_only_variables_the_settings_read():
    assert set(SAFE_DEFAULTS) - settings_reads() == set()


def test_every_variable_the_settings_read_is_set_or_has_a_safe_default(objects):
    required = settings_reads() - set(SAFE_DEFAULTS)
    problems = support.environment_problems(objects, required, image_environment())
    assert problems == []


def _unset(docs: list[Doc], variable: str) -> None:
    """Remove ``variable`` from every ConfigMap, Secret and container env."""
    for doc in docs:
        for field in ("data", "stringData"):
            if doc.get("kind") in ("ConfigMap", "Secret"):
                (doc.get(field) or {}).pop(variable, None)
        spec = support.pod_spec(doc) or {}
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            container["env"] = [v for v in container.get("env") or [] if v["name"] != variable]


def test_an_unset_variable_is_rejected(production):
    _unset(production, "ALLOWED_HOSTS")
    required = settings_reads() - set(SAFE_DEFAULTS)
    problems = support.environment_problems(production, required, image_environment())
    assert problems_mentioning(problems, "Deployment/", "does not set ALLOWED_HOSTS")


def test_a_new_setting_neither_set_nor_allowed_is_rejected(production):
    source = SETTINGS_SOURCE + '\nNEW_THING = env.str("TIDELINE_NEW_THING", default="")\n'
    required = settings_reads(source) - set(SAFE_DEFAULTS)
    problems = support.environment_problems(production, required, image_environment())
    assert problems_mentioning(problems, "does not set TIDELINE_NEW_THING")


def test_settings_reads_are_found_through_helpers_and_os_environ():
    source = (
        "import os\nimport environ\nenv = environ.Env()\n"
        'A = environ.Env().str("A_VAR")\nB = env("B_VAR")\nC = env.list("C_VAR", default=[])\n'
        'D = os.environ.get("D_VAR")\nE = os.environ["E_VAR"]\nF = os.getenv("F_VAR")\n'
        "def _time(name, default):\n    return env.str(name, default=default)\n"
        'G = _time("G_VAR", "09:00")\n'
    )
    names, unresolved = support.settings_environment_reads(source)
    assert names == {f"{letter}_VAR" for letter in "ABCDEFG"}
    assert unresolved == []


def test_a_settings_read_whose_name_is_not_literal_is_reported():
    source = 'import environ\nenv = environ.Env()\nNAME = "X"\nX = env.str(NAME)\n'
    _, unresolved = support.settings_environment_reads(source)
    assert unresolved == ["settings line 4: env.str(NAME)"]


def test_an_env_from_naming_a_missing_config_map_is_rejected(production):
    config_map = find(production, "ConfigMap", lambda doc: bool(doc.get("data")))
    production.remove(config_map)
    problems = support.environment_problems(production, set(), set())
    assert problems_mentioning(
        problems, f"from ConfigMap {support.name_of(config_map)!r}, which the manifests do not"
    )


# --- Subscriptions, components and roles -------------------------------------------------


def test_subscriptions_are_programmatic_only(objects):
    """docs/deploy.md: each app's subscriptions are its /dapr/subscribe, no Subscription objects."""
    assert support.declared_subscriptions(objects) == []


def subscribe_problems(docs: list[Doc], programmatic=dapr_subscribe) -> list[str]:
    return support.subscribe_problems(
        docs, programmatic, component_defaults(), settings.EVENT_DEAD_LETTER_TOPIC
    )


def test_dapr_subscribe_names_kafka_topics_its_pubsub_and_the_dead_letter_topic(objects):
    subscribed = support.app_subscriptions(objects, dapr_subscribe)
    assert any(entries for *_, entries in subscribed), "no app subscribes to anything"
    assert subscribe_problems(objects) == []


def subscribed_topics(docs: list[Doc]) -> list[str]:
    entries = [
        e
        for *_, app_entries in support.app_subscriptions(docs, dapr_subscribe)
        for e in app_entries
    ]
    return sorted({entry["topic"] for entry in entries})


def _rewritten(field: str, value: str):
    """dapr_subscribe with ``field`` of every entry set to ``value``."""

    def programmatic(roles, environment):
        return [{**entry, field: value} for entry in dapr_subscribe(roles, environment)]

    return programmatic


def test_a_subscribed_topic_without_its_kafka_topic_is_rejected(production):
    topic = subscribed_topics(production)[0]
    problems = subscribe_problems(_without_topic(production, topic))
    assert problems_mentioning(problems, f"/dapr/subscribe topic {topic!r} has no KafkaTopic")


def test_a_subscription_to_another_pubsub_is_rejected(production):
    problems = subscribe_problems(production, _rewritten("pubsubname", "other-pubsub"))
    assert problems_mentioning(problems, "names pubsub 'other-pubsub', not 'pubsub-kafka'")
    assert problems_mentioning(problems, "pubsub 'other-pubsub' is no Component scoped to")


def test_a_subscription_through_a_pubsub_not_scoped_to_the_app_is_rejected(production):
    kafka = find(production, "Component", lambda doc: doc["spec"]["type"] == "pubsub.kafka")
    kafka["scopes"] = ["tideline-web"]
    problems = subscribe_problems(production)
    assert problems_mentioning(
        problems, "tideline-notifications", "is no Component scoped to 'tideline-notifications'"
    )


def test_a_subscription_with_another_dead_letter_topic_is_rejected(production):
    problems = subscribe_problems(production, _rewritten("deadLetterTopic", "elsewhere"))
    assert problems_mentioning(problems, "dead-letters to 'elsewhere'")


def test_the_apps_pubsub_and_state_store_are_components_scoped_to_them(objects):
    assert support.component_name_problems(objects, component_defaults()) == []


def test_dapr_local_apps_pubsub_and_state_store_are_components_scoped_to_them(local):
    assert support.component_name_problems(local, component_defaults()) == []


def test_a_pubsub_name_naming_no_component_is_rejected(production):
    for doc in support.of_kind(production, "ConfigMap"):
        if "DAPR_PUBSUB_NAME" in (doc.get("data") or {}):
            doc["data"]["DAPR_PUBSUB_NAME"] = "no-such-pubsub"
    for doc in production:
        for container in support.app_containers(doc):
            for variable in container.get("env") or []:
                if variable["name"] == "DAPR_PUBSUB_NAME":
                    variable["value"] = "no-such-pubsub"
    problems = support.component_name_problems(
        production, {**component_defaults(), "DAPR_PUBSUB_NAME": "no-such-pubsub"}
    )
    assert problems_mentioning(
        problems, "DAPR_PUBSUB_NAME is 'no-such-pubsub', which names no pubsub.* Component"
    )


def test_a_component_not_scoped_to_an_app_that_uses_it_is_rejected(production):
    where, app_id, environment = support.dapr_apps(production)[0]
    name = environment.get("DAPR_STATESTORE_NAME") or settings.DAPR_STATESTORE_NAME
    component = find(production, "Component", lambda doc: support.name_of(doc) == name)
    component["scopes"] = [scope for scope in component.get("scopes") or [] if scope != app_id]
    component["scopes"] = component["scopes"] or ["someone-else"]
    problems = support.component_name_problems(production, component_defaults())
    message = (
        f"{where}: Component {name!r} (DAPR_STATESTORE_NAME) is not scoped to app id {app_id!r}"
    )
    assert message in problems


def test_every_role_is_served(objects):
    assert support.role_problems(objects, served_roles()) == []


def test_dapr_local_serves_every_role(local):
    assert support.role_problems(local, served_roles()) == []


def test_a_role_no_deployment_serves_is_rejected(production):
    role = sorted(served_roles())[0]

    def serves(doc: Doc) -> bool:
        return any(
            role in (support.container_environment(c, production).get("EVENT_CONSUMERS") or "")
            for c in support.app_containers(doc)
        )

    remaining = [doc for doc in production if not (doc.get("kind") == "Deployment" and serves(doc))]
    assert len(remaining) < len(production)
    assert f"no Dapr app serves the role {role!r}" in support.role_problems(
        remaining, served_roles()
    )


def test_the_dapr_folders_hold_objects():
    """So that a moved or emptied folder cannot pass the checks above."""
    assert support.dapr_documents()
    assert support.local_documents()


# --- Kafka ACLs -------------------------------------------------------------------------


def acl_problems(docs: list[Doc]) -> list[str]:
    return support.kafka_acl_problems(
        docs, dapr_subscribe, component_defaults(), code_topics(), settings.EVENT_DEAD_LETTER_TOPIC
    )


def test_the_kafka_user_may_do_what_the_apps_do(objects):
    assert acl_problems(objects) == []


def _acls(docs: list[Doc]) -> list[Doc]:
    return find(docs, "KafkaUser")["spec"]["authorization"]["acls"]


def _drop_operation(docs: list[Doc], resource_type: str, name: str, operation: str) -> None:
    acls = _acls(docs)
    matching = [
        a for a in acls if a["resource"] == {**a["resource"], "type": resource_type, "name": name}
    ]
    assert matching, f"no ACL on {resource_type} {name}"
    for acl in matching:
        acl["operations"] = [op for op in acl["operations"] if op not in (operation, "All")]


def test_a_consumer_group_the_user_may_not_read_is_rejected(production):
    _drop_operation(production, "group", "tideline-notifications", "Read")
    assert problems_mentioning(
        acl_problems(production), "no ACL allows Read on group 'tideline-notifications'"
    )


def test_a_subscribed_topic_the_user_may_not_read_is_rejected(production):
    topic = subscribed_topics(production)[0]
    _drop_operation(production, "topic", topic, "Read")
    assert problems_mentioning(acl_problems(production), f"no ACL allows Read on topic {topic!r}")


def test_a_published_topic_the_user_may_not_write_is_rejected(production):
    topic = code_topics()[-1]
    _drop_operation(production, "topic", topic, "Write")
    assert problems_mentioning(acl_problems(production), f"no ACL allows Write on topic {topic!r}")


def test_a_dead_letter_topic_the_user_may_not_write_is_rejected(production):
    dead_letter = settings.EVENT_DEAD_LETTER_TOPIC
    _drop_operation(production, "topic", dead_letter, "Write")
    assert problems_mentioning(
        acl_problems(production), f"no ACL allows Write on topic {dead_letter!r}"
    )


def test_a_topic_the_user_may_not_even_describe_is_rejected(production):
    dead_letter = settings.EVENT_DEAD_LETTER_TOPIC
    for operation in ("Write", "Describe"):
        _drop_operation(production, "topic", dead_letter, operation)
    assert problems_mentioning(
        acl_problems(production), f"no ACL allows Describe on topic {dead_letter!r}"
    )


def test_a_prefix_or_all_acl_grants_as_kafka_does(production):
    find(production, "KafkaUser")["spec"]["authorization"]["acls"] = [
        {
            "resource": {"type": "topic", "name": "t", "patternType": "prefix"},
            "operations": ["All"],
        },
        {
            "resource": {"type": "group", "name": "*", "patternType": "literal"},
            "operations": ["Read"],
        },
    ]
    problems = acl_problems(production)
    assert problems_mentioning(problems, "on topic 'tideline-dead-letter'") == []
    assert problems_mentioning(problems, "on group") == []


# --- NetworkPolicies --------------------------------------------------------------------


def test_network_policies_let_the_pods_reach_what_they_use(objects):
    assert support.network_policy_problems(objects) == []


def _policy_ports(docs: list[Doc], name: str) -> list[Doc]:
    policy = find(docs, "NetworkPolicy", lambda doc: support.name_of(doc) == name)
    rules = policy["spec"].get("egress") or policy["spec"].get("ingress")
    return rules[0]["ports"]


@pytest.mark.parametrize(
    ("policy", "port", "what"),
    [
        ("allow-dns", 53, "DNS on 53"),
        ("to-postgresql", 5432, "PostgreSQL on 5432"),
        ("dapr-sidecar-to-kafka", 9093, "Kafka on 9093"),
        ("dapr-sidecar-to-control-plane", 50001, "the Dapr control plane on 50001"),
        ("dapr-sidecar-to-control-plane", 50006, "the Dapr control plane on 50006"),
        ("dapr-sidecar-to-control-plane", 6500, "the Dapr control plane on 6500"),
    ],
)
def test_an_egress_port_no_policy_opens_is_rejected(production, policy, port, what):
    ports = _policy_ports(production, policy)
    ports[:] = [item for item in ports if item["port"] != port] or [{"port": 1}]
    assert problems_mentioning(
        support.network_policy_problems(production),
        "Deployment/tideline-web",
        f"no NetworkPolicy lets it reach {what}",
    )


def test_brokers_on_a_port_no_policy_opens_are_rejected(production):
    _kafka_component(production)["brokers"]["value"] = "tideline-kafka-bootstrap.kafka.svc:9092"
    assert problems_mentioning(
        support.network_policy_problems(production), "no NetworkPolicy lets it reach Kafka on 9092"
    )


def test_a_pod_the_kafka_policy_does_not_select_is_rejected(production):
    policy = find(
        production, "NetworkPolicy", lambda d: support.name_of(d) == "dapr-sidecar-to-kafka"
    )
    policy["spec"]["podSelector"]["matchExpressions"][0]["values"].remove("recurrence")
    assert problems_mentioning(
        support.network_policy_problems(production),
        "Deployment/tideline-recurrence: no NetworkPolicy lets it reach Kafka",
    )


def test_an_ingress_controller_kept_from_the_web_port_is_rejected(production):
    _policy_ports(production, "web-from-ingress-controller")[0]["port"] = 8080
    assert problems_mentioning(
        support.network_policy_problems(production),
        "Deployment/tideline-web: no NetworkPolicy lets the ingress controller reach port 8000",
    )


# --- Autoscaling ------------------------------------------------------------------------


def test_autoscaled_workloads_leave_replicas_to_their_hpa(objects):
    assert support.of_kind(objects, "HorizontalPodAutoscaler")
    assert support.autoscaled_replica_problems(objects) == []


def test_an_autoscaled_workload_setting_replicas_is_rejected(production):
    hpa = find(production, "HorizontalPodAutoscaler")
    name = hpa["spec"]["scaleTargetRef"]["name"]
    find(production, "Deployment", lambda doc: support.name_of(doc) == name)["spec"]["replicas"] = 2
    assert support.autoscaled_replica_problems(production) == [
        f"Deployment/{name}: sets spec.replicas, which HorizontalPodAutoscaler/{name} owns"
    ]
