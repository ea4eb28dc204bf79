"""Offline checks of the deployment files (``k8s/``, ``dapr/``): parsed documents in, problems out.

Every check takes the objects as parsed YAML (a list of dicts) and returns a list of problems,
each a sentence that names the object at fault; ``[]`` means the objects pass. The schemas are
the ones the API server and daprd really apply: Kubernetes' own (``kubernetes-validate``), the
Dapr and Strimzi CRDs and components-contrib's ``metadata.yaml`` files vendored under
``schemas/`` (their versions and sources: ``schemas/README.md``).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions, major_minor, schema_contents
from referencing import Registry, Resource

Doc = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
K8S = REPO / "k8s"
DAPR = REPO / "dapr"
DAPR_LOCAL = DAPR / "local"
OVERLAYS = ("minikube", "production")

#: The Kubernetes version the built-in objects are checked against: the newest that the
#: pinned kubernetes-validate ships.
KUBERNETES_VERSION = "1.37"
#: API groups whose objects are checked against the vendored CRDs instead.
CUSTOM_GROUPS = {"dapr.io", "kafka.strimzi.io"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
#: The workloads that serve: their app containers get the full production environment.
SERVICE_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
TOKEN_ANNOTATIONS = {
    # annotation -> the app container's variable that must carry the same token
    "dapr.io/api-token-secret": "DAPR_API_TOKEN",  # app -> sidecar
    "dapr.io/app-token-secret": "APP_API_TOKEN",  # sidecar -> app
}
#: The key the Dapr injector reads from each Secret named by a token annotation.
TOKEN_KEY = "token"


# --- Loading ----------------------------------------------------------------------------


def load_documents(path: Path) -> list[Doc]:
    """The non-empty YAML documents of one file."""
    with path.open() as stream:
        return [doc for doc in yaml.load_all(stream, Loader=yaml.CSafeLoader) if doc]


def folder_documents(folder: Path) -> list[Doc]:
    """Every document of the folder's ``*.yaml``/``*.yml`` files (not its subfolders)."""
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return [doc for path in paths for doc in load_documents(path)]


def kubernetes_objects(docs: Iterable[Doc]) -> list[Doc]:
    """The documents that are Kubernetes objects (not a Kustomization, not a Dapr run file)."""
    return [
        doc
        for doc in docs
        if ("apiVersion" in doc or "kind" in doc) and group_of(doc) != "kustomize.config.k8s.io"
    ]


def dapr_documents() -> list[Doc]:
    """The objects of dapr/ (what k8s/base includes, or ``kubectl apply -k dapr``)."""
    return kubernetes_objects(folder_documents(DAPR))


def local_documents() -> list[Doc]:
    """Everything under dapr/local: the Dapr CLI's components and multi-app run file."""
    paths = sorted([*DAPR_LOCAL.rglob("*.yaml"), *DAPR_LOCAL.rglob("*.yml")])
    return [doc for path in paths for doc in load_documents(path)]


def run_file_apps(docs: Iterable[Doc]) -> list[tuple[str, dict[str, str]]]:
    """(app id, environment) of each app of the Dapr CLI multi-app run files among ``docs``."""
    apps = []
    for doc in docs:
        if "apps" not in doc or "kind" in doc:
            continue
        common = (doc.get("common") or {}).get("env") or {}
        for app in doc["apps"] or []:
            environment = {**common, **(app.get("env") or {})}
            apps.append((app.get("appID", ""), {k: str(v) for k, v in environment.items()}))
    return apps


def run_file_app_ids(docs: Iterable[Doc]) -> set[str]:
    """The app ids of Dapr CLI multi-app run files (``apps[].appID``)."""
    return {app_id for app_id, _ in run_file_apps(docs)}


def overlay_names() -> list[str]:
    """The folders under k8s/overlays that hold a kustomization."""
    overlays = K8S / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(
        path.parent.name for path in overlays.glob("*/kustomization.y*ml") if path.is_file()
    )


class KustomizeError(Exception):
    """``kubectl kustomize`` could not build a folder."""


def kustomize_build(folder: Path) -> list[Doc]:
    """The objects ``kubectl kustomize folder`` builds (what ``kubectl apply -k`` applies)."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {folder} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.load_all(result.stdout, Loader=yaml.CSafeLoader) if doc]


def overlay_kustomizations(name: str) -> list[Path]:
    """An overlay's folder and the folders under it that hold a kustomization of their own
    (e.g. ``kafka/``, applied separately to the Kafka namespace)."""
    folder = K8S / "overlays" / name
    nested = sorted(path.parent for path in folder.glob("*/**/kustomization.y*ml"))
    return [folder, *nested]


@functools.cache
def built_overlay(name: str) -> tuple[Doc, ...]:
    """The objects of an overlay's kustomizations, built once per session (copy to change)."""
    return tuple(doc for folder in overlay_kustomizations(name) for doc in kustomize_build(folder))


def secret_templates(name: str) -> list[Doc]:
    """The Secrets of an overlay's ``*.example.yaml`` files: created by hand, not by kustomize."""
    folder = K8S / "overlays" / name
    docs = [doc for path in sorted(folder.glob("*.example.y*ml")) for doc in load_documents(path)]
    return of_kind(docs, "Secret")


def overlay_bundle(name: str) -> list[Doc]:
    """What a cluster runs with an overlay: its kustomizations' output, its Secret templates
    and dapr/'s objects."""
    return bundle(built_overlay(name), secret_templates(name), dapr_documents())


def bundle(*groups: Iterable[Doc]) -> list[Doc]:
    """The objects of several sources as applied together; the first source wins a duplicate."""
    seen: set[tuple[str, str, str]] = set()
    merged = []
    for docs in groups:
        for doc in docs:
            key = (group_of(doc), doc.get("kind", ""), name_of(doc))
            if key not in seen:
                seen.add(key)
                merged.append(doc)
    return merged


# --- Small accessors --------------------------------------------------------------------


def name_of(doc: Doc) -> str:
    return (doc.get("metadata") or {}).get("name", "")


def ref(doc: Doc) -> str:
    """``Kind/name``: how problems name an object."""
    return f"{doc.get('kind', '?')}/{name_of(doc)}"


def group_of(doc: Doc) -> str:
    api_version = doc.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


def of_kind(docs: Iterable[Doc], kind: str, group: str | None = None) -> list[Doc]:
    return [
        doc for doc in docs if doc.get("kind") == kind and (group is None or group_of(doc) == group)
    ]


def pod_spec(doc: Doc) -> Doc | None:
    """The pod template's spec of a workload, else None."""
    if doc.get("kind") not in WORKLOAD_KINDS:
        return None
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def pod_annotations(doc: Doc) -> dict[str, str]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}


def dapr_enabled(doc: Doc) -> bool:
    return str(pod_annotations(doc).get("dapr.io/enabled", "")).lower() == "true"


def app_ids(docs: Iterable[Doc]) -> set[str]:
    """The Dapr app ids of the workloads (``dapr.io/app-id`` of Dapr-enabled pods)."""
    return {
        pod_annotations(doc)["dapr.io/app-id"]
        for doc in docs
        if dapr_enabled(doc) and "dapr.io/app-id" in pod_annotations(doc)
    }


def is_tideline_image(image: str) -> bool:
    """Whether a container runs the Tideline image (its repository's last part names it)."""
    repository = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return "tideline" in repository


def app_containers(doc: Doc) -> list[Doc]:
    """The (non-init) containers of a workload that run the Tideline image."""
    spec = pod_spec(doc) or {}
    return [c for c in spec.get("containers") or [] if is_tideline_image(c.get("image", ""))]


def secret_keys(docs: Iterable[Doc]) -> dict[str, set[str]]:
    """Secret name -> its keys (``data`` and ``stringData``)."""
    return {
        name_of(doc): {*(doc.get("data") or {}), *(doc.get("stringData") or {})}
        for doc in of_kind(docs, "Secret")
    }


def container_environment(
    container: Doc, docs: Iterable[Doc], problems: list[str] | None = None, where: str = ""
) -> dict[str, str | None]:
    """The variables a container gets from the manifests: name -> literal value, or None.

    None stands for a value the manifests do not spell out (from a Secret, a field, a
    resource). A missing ConfigMap or Secret named by ``envFrom`` is reported in ``problems``.
    """
    config_maps = {name_of(doc): doc.get("data") or {} for doc in of_kind(docs, "ConfigMap")}
    secrets = secret_keys(docs)
    environment: dict[str, str | None] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref_ = source["configMapRef"]
            values = config_maps.get(ref_.get("name"))
            kind = "ConfigMap"
        else:
            ref_ = source.get("secretRef") or {}
            keys = secrets.get(ref_.get("name"))
            values = None if keys is None else dict.fromkeys(keys)
            kind = "Secret"
        if values is None:
            if problems is not None and not ref_.get("optional"):
                problems.append(
                    f"{where}: container {container.get('name')!r} takes its environment "
                    f"from {kind} {ref_.get('name')!r}, which the manifests do not define"
                )
            continue
        environment.update({prefix + key: value for key, value in values.items()})
    for variable in container.get("env") or []:
        environment[variable["name"]] = (
            variable.get("value") if "valueFrom" not in variable else None
        )
    return environment


# --- Built-in objects: kubernetes-validate ---------------------------------------------


def builtin_problems(docs: Iterable[Doc]) -> list[str]:
    """Every built-in object validates strictly (unknown fields rejected) for KUBERNETES_VERSION."""
    return [
        problem
        for doc in kubernetes_objects(docs)
        if group_of(doc) not in CUSTOM_GROUPS
        and (problem := _builtin_problem(json.dumps(doc, sort_keys=True)))
    ]


@functools.cache
def _builtin_problem(serialized: str) -> str | None:
    """One object's first problem (memoized: the same object recurs across the tests)."""
    doc = json.loads(serialized)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{ref(doc)}: {_path(exc.absolute_path)}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"{ref(doc)}: {exc.message}"
    return None


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(part) for part in parts) or "(root)"


# --- Dapr and Strimzi objects: the vendored CRDs ----------------------------------------

_OBJECT_META = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def strict_schema(node: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema that rejects what the API server would prune.

    An object without ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties:
    false``; ``nullable`` and ``x-kubernetes-int-or-string`` become JSON Schema types.
    """
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for key in ("properties", "patternProperties"):
        if key in node:
            node[key] = {name: strict_schema(child) for name, child in node[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = strict_schema(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            node[key] = [strict_schema(child) for child in node[key]]
    if node.get("x-kubernetes-int-or-string"):
        node["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if (
        node.get("type") == "object"
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        node["additionalProperties"] = False
    return node


def _kubernetes_definitions() -> Resource:
    """kubernetes-validate's strict definitions (for ObjectMeta) of KUBERNETES_VERSION."""
    version = [v for v in all_versions() if major_minor(v) == KUBERNETES_VERSION][-1]
    contents = schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    return Resource.from_contents(contents)


@functools.cache
def crd_validators() -> dict[tuple[str, str, str], jsonschema.protocols.Validator]:
    """(group, version, kind) -> a strict validator, for every served version of a vendored CRD."""
    registry = _kubernetes_definitions() @ Registry()
    validators = {}
    for path in sorted([*SCHEMAS.glob("dapr/*.yaml"), *SCHEMAS.glob("strimzi/*.yaml")]):
        for crd in load_documents(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                schema["properties"] = {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    **schema.get("properties", {}),
                    "metadata": {"$ref": _OBJECT_META},
                }
                schema.setdefault("required", [])
                key = (spec["group"], version["name"], spec["names"]["kind"])
                validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators


def crd_problems(docs: Iterable[Doc]) -> list[str]:
    """Every Dapr and Strimzi object validates strictly against its vendored CRD version."""
    problems = []
    validators = crd_validators()
    for doc in kubernetes_objects(docs):
        group = group_of(doc)
        if group not in CUSTOM_GROUPS:
            continue
        version = doc.get("apiVersion", "").split("/")[-1]
        validator = validators.get((group, version, doc.get("kind")))
        if validator is None:
            problems.append(
                f"{ref(doc)}: no vendored CRD serves {doc.get('apiVersion')} {doc.get('kind')}"
            )
            continue
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
            problems.append(f"{ref(doc)}: {_path(error.absolute_path)}: {error.message}")
    return problems


# --- Dapr Components: components-contrib's metadata.yaml --------------------------------

#: Fields daprd accepts for every component of a kind although no metadata.yaml lists them:
#: components-contrib's .build-tools/pkg/metadataschema/validators.go (AppendBuiltin) adds
#: these to each bundled metadata file (v1.18.4, the version vendored).
BUILTIN_FIELDS = {
    "state": {"keyPrefix"},
    "lock": {"keyPrefix"},
    "pubsub": {
        "consumerID",
        "allowedTopics",
        "publishingScopes",
        "subscriptionScopes",
        "protectedTopics",
    },
}
BUILTIN_FIELDS_BY_CAPABILITY = {
    "actorStateStore": {"actorStateStore"},
    "transactional": {
        "outboxPublishPubsub",
        "outboxPublishTopic",
        "outboxPubsub",
        "outboxDiscardWhenMissingState",
    },
}


@functools.cache
def component_fields() -> dict[tuple[str, str], dict[str, frozenset[str] | None]]:
    """(component type, version) -> field name -> its allowed values (None: any value).

    A field's names come from ``metadata``, every ``authenticationProfiles`` entry and every
    ``builtinAuthenticationProfiles`` entry (the shared profiles of
    .build-tools/builtin-authentication-profiles.yaml plus the entry's own fields).
    """
    contrib = SCHEMAS / "components-contrib"
    shared_profiles = load_documents(contrib / ".build-tools/builtin-authentication-profiles.yaml")[
        0
    ]
    catalogue = {}
    for path in sorted(contrib.glob("**/metadata.yaml")):
        meta = load_documents(path)[0]
        definitions = list(meta.get("metadata") or [])
        for profile in meta.get("authenticationProfiles") or []:
            definitions += profile.get("metadata") or []
        for builtin in meta.get("builtinAuthenticationProfiles") or []:
            for profile in shared_profiles.get(builtin["name"], []):
                definitions += profile.get("metadata") or []
            definitions += builtin.get("metadata") or []
        fields: dict[str, frozenset[str] | None] = {}
        for definition in definitions:
            allowed = definition.get("allowedValues")
            name = definition["name"]
            if allowed is None or (name in fields and fields[name] is None):
                fields[name] = None
            else:
                fields[name] = fields.get(name, frozenset()) | {str(v) for v in allowed}
        builtins = set(BUILTIN_FIELDS.get(meta["type"], set()))
        for capability in meta.get("capabilities") or []:
            builtins |= BUILTIN_FIELDS_BY_CAPABILITY.get(capability, set())
        for name in builtins:
            fields.setdefault(name, None)
        catalogue[(f"{meta['type']}.{meta['name']}", meta["version"])] = fields
    return catalogue


def component_metadata_problems(docs: Iterable[Doc]) -> list[str]:
    """Each Component's metadata names exist in its type's metadata.yaml, with allowed values.

    daprd matches metadata names case-insensitively, and so does this check.
    """
    problems = []
    catalogue = component_fields()
    for doc in of_kind(docs, "Component", "dapr.io"):
        spec = doc.get("spec") or {}
        component_type, version = spec.get("type"), spec.get("version")
        fields = catalogue.get((component_type, version))
        if fields is None:
            problems.append(f"{ref(doc)}: no vendored metadata.yaml for {component_type} {version}")
            continue
        by_lower_name = {name.lower(): name for name in fields}
        for item in spec.get("metadata") or []:
            name = by_lower_name.get(str(item.get("name", "")).lower())
            if name is None:
                problems.append(
                    f"{ref(doc)}: metadata field {item.get('name')!r} is not in "
                    f"{component_type} {version}'s metadata.yaml"
                )
                continue
            allowed = fields[name]
            if allowed is not None and "value" in item and str(item["value"]) not in allowed:
                problems.append(
                    f"{ref(doc)}: metadata field {name!r} is {item['value']!r}, "
                    f"not one of {sorted(allowed)}"
                )
    return problems


# --- Dapr cross-checks ------------------------------------------------------------------


def resiliency_problems(docs: Iterable[Doc]) -> list[str]:
    """A Resiliency's targets name existing Components and app ids, and its own policies."""
    docs = list(docs)
    components = {name_of(doc) for doc in of_kind(docs, "Component", "dapr.io")}
    known_apps = app_ids(docs) | run_file_app_ids(docs)
    problems = []
    for doc in of_kind(docs, "Resiliency", "dapr.io"):
        spec = doc.get("spec") or {}
        policies = spec.get("policies") or {}
        targets = spec.get("targets") or {}
        uses: list[tuple[str, Doc]] = []
        for name, target in (targets.get("components") or {}).items():
            if name not in components:
                problems.append(
                    f"{ref(doc)}: targets.components names {name!r}, which is not a Component"
                )
            for direction in ("inbound", "outbound"):
                uses.append((f"components.{name}.{direction}", target.get(direction) or {}))
        for name, target in (targets.get("apps") or {}).items():
            if name not in known_apps:
                problems.append(f"{ref(doc)}: targets.apps names {name!r}, which is not an app id")
            uses.append((f"apps.{name}", target or {}))
        for name, target in (targets.get("actors") or {}).items():
            uses.append((f"actors.{name}", target or {}))
        for where, target in uses:
            for field, section in (
                ("timeout", "timeouts"),
                ("retry", "retries"),
                ("circuitBreaker", "circuitBreakers"),
            ):
                policy = target.get(field)
                if policy and policy not in (policies.get(section) or {}):
                    problems.append(
                        f"{ref(doc)}: targets.{where}.{field} names {policy!r}, "
                        f"which is not in policies.{section}"
                    )
    return problems


def scope_problems(docs: Iterable[Doc], known_app_ids: set[str]) -> list[str]:
    """Every Component and Subscription scope names a real app id."""
    problems = []
    for doc in kubernetes_objects(docs):
        if group_of(doc) != "dapr.io":
            continue
        for scope in doc.get("scopes") or []:
            if scope not in known_app_ids:
                problems.append(
                    f"{ref(doc)}: scope {scope!r} is not an app id (app ids: "
                    f"{', '.join(sorted(known_app_ids)) or 'none'})"
                )
    return problems


def dapr_annotation_problems(docs: Iterable[Doc]) -> list[str]:
    """Each Dapr-enabled pod names its token Secrets, each with the key ``token``, and reads them.

    The injector gives daprd the key ``token`` of the Secret named by
    ``dapr.io/api-token-secret`` (app -> sidecar) and of the one named by
    ``dapr.io/app-token-secret`` (sidecar -> app); the app container must read the same two
    values as DAPR_API_TOKEN and APP_API_TOKEN. ``dapr.io/config`` names a Configuration.
    """
    docs = list(docs)
    secrets = secret_keys(docs)
    configurations = {name_of(doc) for doc in of_kind(docs, "Configuration", "dapr.io")}
    problems = []
    for doc in docs:
        if not dapr_enabled(doc):
            continue
        annotations = pod_annotations(doc)
        config = annotations.get("dapr.io/config")
        if config and config not in configurations:
            problems.append(
                f"{ref(doc)}: dapr.io/config names {config!r}, which is not a Configuration"
            )
        for annotation, variable in TOKEN_ANNOTATIONS.items():
            secret = annotations.get(annotation)
            if not secret:
                problems.append(f"{ref(doc)}: no {annotation} annotation")
                continue
            if secret not in secrets:
                problems.append(
                    f"{ref(doc)}: {annotation} names Secret {secret!r}, "
                    "which the manifests do not define"
                )
            elif TOKEN_KEY not in secrets[secret]:
                problems.append(
                    f"{ref(doc)}: Secret {secret!r} (named by {annotation}) has no key "
                    f"{TOKEN_KEY!r} (its keys: {', '.join(sorted(secrets[secret]))})"
                )
            for container in app_containers(doc):
                if not _reads_secret_key(container, variable, secret, TOKEN_KEY):
                    problems.append(
                        f"{ref(doc)}: container {container.get('name')!r} does not read "
                        f"{variable} from Secret {secret!r} key {TOKEN_KEY!r}"
                    )
    return problems


def _reads_secret_key(container: Doc, variable: str, secret: str, key: str) -> bool:
    for item in container.get("env") or []:
        if item.get("name") == variable:
            selector = (item.get("valueFrom") or {}).get("secretKeyRef") or {}
            return selector.get("name") == secret and selector.get("key") == key
    return False


def dapr_apps(docs: Iterable[Doc]) -> list[tuple[str, str, dict[str, str | None]]]:
    """(where, app id, environment) of every Tideline app that runs with a sidecar.

    The apps are the Tideline containers of Dapr-enabled workloads and the apps of Dapr CLI
    run files; the environment is what the manifests give them (see container_environment).
    """
    docs = list(docs)
    apps: list[tuple[str, str, dict[str, str | None]]] = []
    for doc in docs:
        if not dapr_enabled(doc):
            continue
        app_id = pod_annotations(doc).get("dapr.io/app-id", "")
        for container in app_containers(doc):
            environment = container_environment(container, docs)
            apps.append((f"{ref(doc)} container {container.get('name')!r}", app_id, environment))
    for app_id, environment in run_file_apps(docs):
        apps.append((f"run file app {app_id!r}", app_id, dict(environment)))
    return apps


def component_name_problems(docs: Iterable[Doc], defaults: dict[str, str]) -> list[str]:
    """DAPR_PUBSUB_NAME and DAPR_STATESTORE_NAME of each Dapr app name a Component of the right
    kind that is scoped to the app (``defaults``: the settings' values when they are unset)."""
    docs = list(docs)
    components = {name_of(doc): doc for doc in of_kind(docs, "Component", "dapr.io")}
    problems = []
    for where, app_id, environment in dapr_apps(docs):
        for variable, kind in (("DAPR_PUBSUB_NAME", "pubsub."), ("DAPR_STATESTORE_NAME", "state.")):
            name = environment.get(variable) or defaults[variable]
            component = components.get(name, {})
            if not str((component.get("spec") or {}).get("type", "")).startswith(kind):
                problems.append(
                    f"{where}: {variable} is {name!r}, which names no {kind}* Component"
                )
            elif component.get("scopes") and app_id not in component["scopes"]:
                problems.append(
                    f"{where}: Component {name!r} ({variable}) is not scoped to app id {app_id!r}"
                )
    return problems


# --- Kafka topics -----------------------------------------------------------------------


def kafka_topic_problems(docs: Iterable[Doc], topics: Iterable[str], dead_letter: str) -> list[str]:
    """Every topic the code uses has a KafkaTopic; Strimzi objects name an existing Kafka."""
    docs = list(docs)
    declared = {
        (doc.get("spec") or {}).get("topicName") or name_of(doc)
        for doc in of_kind(docs, "KafkaTopic", "kafka.strimzi.io")
    }
    problems = [
        f"no KafkaTopic for topic {topic!r}"
        for topic in sorted(set(topics))
        if topic not in declared
    ]
    if dead_letter not in declared:
        problems.append(f"no KafkaTopic for the dead-letter topic {dead_letter!r}")
    clusters = {
        name_of(doc): (doc.get("metadata") or {}).get("namespace")
        for doc in of_kind(docs, "Kafka", "kafka.strimzi.io")
    }
    for doc in kubernetes_objects(docs):
        if group_of(doc) != "kafka.strimzi.io" or doc.get("kind") == "Kafka":
            continue
        metadata = doc.get("metadata") or {}
        cluster = (metadata.get("labels") or {}).get("strimzi.io/cluster")
        if cluster not in clusters:
            problems.append(
                f"{ref(doc)}: label strimzi.io/cluster is {cluster!r}, which names no Kafka"
            )
        elif metadata.get("namespace") != clusters[cluster]:
            problems.append(
                f"{ref(doc)}: namespace {metadata.get('namespace')!r} is not its Kafka's "
                f"({clusters[cluster]!r})"
            )
    return problems


def kafka_client_problems(docs: Iterable[Doc]) -> list[str]:
    """Each pubsub.kafka Component reaches a Strimzi listener the way the listener expects.

    Its brokers are a Kafka's bootstrap service on a listener's port; a SCRAM-SHA-512 listener
    needs ``authType: password``, ``saslMechanism: SHA-512`` (Strimzi's only SCRAM) and a
    ``saslUsername`` that is a SCRAM-SHA-512 KafkaUser of that Kafka; a TLS listener needs
    ``caCert``.
    """
    docs = list(docs)
    kafkas = {name_of(doc): doc for doc in of_kind(docs, "Kafka", "kafka.strimzi.io")}
    users = {
        name_of(doc): doc
        for doc in of_kind(docs, "KafkaUser", "kafka.strimzi.io")
        if ((doc.get("spec") or {}).get("authentication") or {}).get("type") == "scram-sha-512"
    }
    problems = []
    for doc in of_kind(docs, "Component", "dapr.io"):
        if (doc.get("spec") or {}).get("type") != "pubsub.kafka":
            continue
        items = {item.get("name"): item for item in doc["spec"].get("metadata") or []}
        values = {name: str(item.get("value", "")) for name, item in items.items()}
        for broker in values.get("brokers", "").split(","):
            host, _, port = broker.strip().rpartition(":")
            cluster = host.split(".")[0].removesuffix("-kafka-bootstrap")
            if cluster not in kafkas or not host.startswith(f"{cluster}-kafka-bootstrap"):
                problems.append(f"{ref(doc)}: broker {broker!r} is no Kafka's bootstrap service")
                continue
            listeners = kafkas[cluster]["spec"]["kafka"].get("listeners") or []
            listener = next((item for item in listeners if str(item.get("port")) == port), None)
            if listener is None:
                problems.append(
                    f"{ref(doc)}: broker {broker!r}: Kafka/{cluster} has no listener on {port}"
                )
                continue
            if (listener.get("authentication") or {}).get("type") == "scram-sha-512":
                if values.get("authType") != "password" or values.get("saslMechanism") != "SHA-512":
                    problems.append(
                        f"{ref(doc)}: listener {listener.get('name')!r} wants SCRAM-SHA-512: "
                        "authType 'password' and saslMechanism 'SHA-512'"
                    )
                user = users.get(values.get("saslUsername", ""))
                if (
                    user is None
                    or (user["metadata"].get("labels") or {}).get("strimzi.io/cluster") != cluster
                ):
                    problems.append(
                        f"{ref(doc)}: saslUsername {values.get('saslUsername')!r} is no "
                        f"SCRAM-SHA-512 KafkaUser of Kafka/{cluster}"
                    )
            if listener.get("tls") and "caCert" not in items:
                problems.append(f"{ref(doc)}: listener {listener.get('name')!r} is TLS: set caCert")
    return problems


# --- The settings' environment ----------------------------------------------------------

_ENV_METHODS = {name for name in dir(__import__("environ").Env) if not name.startswith("_")} - {
    "read_env",
    "URL_CLASS",
}


def settings_environment_reads(source: str) -> tuple[set[str], list[str]]:
    """The environment variables a settings module reads, and the reads it cannot name.

    Reads are django-environ calls (``env.str("X")``, ``env("X")``, ``environ.Env().str(...)``)
    and ``os.environ``/``os.getenv``. A read whose name is a parameter of a helper function
    (``def _time(name, ...): env.str(name, ...)``) is named by that helper's literal calls.
    """
    tree = ast.parse(source)
    helpers: dict[str, int] = {}  # helper function -> position of its name parameter
    through_helpers: set[int] = set()  # the reads inside helpers, named at their calls
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        parameters = [arg.arg for arg in function.args.args]
        for node in ast.walk(function):
            argument = _env_read_argument(node)
            if isinstance(argument, ast.Name) and argument.id in parameters:
                helpers[function.name] = parameters.index(argument.id)
                through_helpers.add(id(argument))
    names: set[str] = set()
    unresolved: list[str] = []
    for node in ast.walk(tree):
        argument = _env_read_argument(node)
        if argument is None and isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            position = helpers.get(node.func.id, len(node.args))
            argument = node.args[position] if position < len(node.args) else None
        if argument is None or id(argument) in through_helpers:
            continue
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            names.add(argument.value)
        else:
            unresolved.append(f"settings line {node.lineno}: {ast.unparse(node)}")
    return names, unresolved


def _env_read_argument(node: ast.AST) -> ast.expr | None:
    """The name argument of an environment read, or None when ``node`` is not one."""
    if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
        return node.slice
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id == "env":
        return node.args[0]
    if not isinstance(func, ast.Attribute):
        return None
    receiver = func.value
    if func.attr in _ENV_METHODS and (
        (isinstance(receiver, ast.Name) and receiver.id == "env")
        or (
            isinstance(receiver, ast.Call)
            and isinstance(receiver.func, ast.Attribute)
            and receiver.func.attr == "Env"
        )
    ):
        return node.args[0]
    if func.attr == "get" and _is_os_environ(receiver):
        return node.args[0]
    if func.attr == "getenv" and isinstance(receiver, ast.Name) and receiver.id == "os":
        return node.args[0]
    return None


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def environment_problems(
    docs: Iterable[Doc], required: Iterable[str], image_environment: Iterable[str]
) -> list[str]:
    """Every app container of a Deployment (StatefulSet, DaemonSet) running the Tideline image
    gets each required variable.

    A variable is set by the container's ``env``, its ``envFrom`` ConfigMaps and Secrets, or
    the image's own ``ENV`` (``image_environment``). Init containers and Jobs (a migration)
    run one command and are left out.
    """
    docs = list(docs)
    required = sorted(set(required) - set(image_environment))
    problems: list[str] = []
    for doc in docs:
        if doc.get("kind") not in SERVICE_KINDS:
            continue
        for container in app_containers(doc):
            environment = container_environment(container, docs, problems, ref(doc))
            problems += [
                f"{ref(doc)}: container {container.get('name')!r} does not set {variable}"
                for variable in required
                if variable not in environment
            ]
    return problems


# --- Subscriptions and roles ------------------------------------------------------------


def declared_subscriptions(docs: Iterable[Doc]) -> list[Doc]:
    return of_kind(docs, "Subscription", "dapr.io")


def _canonical_subscription(entry: Doc) -> str:
    """A subscription's delivery-relevant fields, the same for /dapr/subscribe and a CRD."""
    routes = entry.get("routes") or ({"default": entry["route"]} if entry.get("route") else {})
    return json.dumps(
        {
            "pubsubname": entry.get("pubsubname"),
            "topic": entry.get("topic"),
            "routes": {"rules": routes.get("rules") or [], "default": routes.get("default")},
            "deadLetterTopic": entry.get("deadLetterTopic"),
        },
        sort_keys=True,
    )


def subscription_problems(
    docs: Iterable[Doc], programmatic: Callable[[list[str], dict[str, str | None]], list[Doc]]
) -> list[str]:
    """Each app's declarative Subscriptions equal what its ``/dapr/subscribe`` answers.

    ``programmatic(roles, environment)`` answers ``/dapr/subscribe`` for a process serving
    ``roles`` with the app's manifest ``environment``. Without any declarative Subscription
    there is nothing to compare: the programmatic ones are then all there is.
    """
    docs = list(docs)
    subscriptions = declared_subscriptions(docs)
    if not subscriptions:
        return []
    problems = []
    for _, app_id, environment in dapr_apps(docs):
        roles = (environment.get("EVENT_CONSUMERS") or "all").split(",")
        expected = {_canonical_subscription(e) for e in programmatic(roles, environment)}
        declared = {
            _canonical_subscription(sub.get("spec") or {}): name_of(sub)
            for sub in subscriptions
            if not sub.get("scopes") or app_id in sub["scopes"]
        }
        problems += [
            f"app id {app_id!r}: /dapr/subscribe has {entry} but no Subscription does"
            for entry in sorted(expected - set(declared))
        ]
        problems += [
            f"app id {app_id!r}: Subscription/{declared[entry]} is not in /dapr/subscribe ({entry})"
            for entry in sorted(set(declared) - expected)
        ]
    return problems


def role_problems(docs: Iterable[Doc], roles: Iterable[str]) -> list[str]:
    """Every role with consumers or job callbacks is served by some Dapr app (EVENT_CONSUMERS)."""
    served = {
        role.strip()
        for _, _, environment in dapr_apps(docs)
        for role in (environment.get("EVENT_CONSUMERS") or "all").split(",")
    }
    if "all" in served:
        return []
    return [f"no Dapr app serves the role {role!r}" for role in sorted(set(roles) - served)]


def find(docs: Iterable[Doc], kind: str, predicate: Callable[[Doc], bool] = bool) -> Doc:
    """The first object of ``kind`` for which ``predicate`` holds (for the negative tests)."""
    for doc in docs:
        if doc.get("kind") == kind and predicate(doc):
            return doc
    raise LookupError(f"no {kind} matches")
