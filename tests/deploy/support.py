"""Offline checks of the deployment files (``k8s/``, ``dapr/``): parsed documents in, problems out.

Every check takes the objects as parsed YAML (a list of dicts) and returns a list of problems,
each a sentence that names the object at fault; ``[]`` means the objects pass. The schemas are
the ones the API server and daprd really apply: Kubernetes' own (``kubernetes-validate``), the
Dapr and Strimzi CRDs and components-contrib's ``metadata.yaml`` files vendored under
``schemas/`` (their versions and sources: ``schemas/README.md``).
"""

from __future__ import annotations

import ast
import base64
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
    """The objects of an overlay's kustomizations, assembled once per session (copy to change).

    Assembled in Python (``assemble``), so that every check runs without kubectl; a test
    compares the assembly with ``kubectl kustomize`` wherever kubectl exists.
    """
    return tuple(doc for folder in overlay_kustomizations(name) for doc in assemble(folder))


# --- Assembling a kustomization in Python -----------------------------------------------
# What ``kubectl kustomize`` does, for the fields this repository's kustomizations use and no
# more: anything else raises AssemblyError rather than being ignored.


class AssemblyError(Exception):
    """A kustomization uses something ``assemble`` does not implement, or names nothing."""


ASSEMBLED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "secretGenerator",
    "generatorOptions",
    "patches",
    "images",
    "replicas",
    "replacements",
}
#: Kinds without a namespace among those the repository declares (kustomize leaves them be).
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass"}
REPLICATED_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}


def kustomization_file(folder: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (folder / name).is_file():
            return folder / name
    raise AssemblyError(f"{folder}: no kustomization")


def assemble(folder: Path) -> list[Doc]:
    """The objects ``kubectl kustomize folder`` builds, in kustomize's order of steps:
    resources, generators, patches, then namespace, labels, replicas, images, replacements."""
    path = kustomization_file(folder)
    kustomization = load_documents(path)[0]
    unhandled = set(kustomization) - ASSEMBLED_FIELDS
    if unhandled or kustomization.get("kind", "Kustomization") != "Kustomization":
        raise AssemblyError(f"{path}: cannot assemble {sorted(unhandled) or kustomization['kind']}")
    docs: list[Doc] = []
    for resource in kustomization.get("resources") or []:
        target = (folder / resource).resolve()
        if target.is_dir():
            docs += assemble(target)
        elif target.is_file():
            docs += load_documents(target)
        else:
            raise AssemblyError(f"{path}: resource {resource!r} does not exist")
    docs += _generated_secrets(kustomization, path)
    for patch in kustomization.get("patches") or []:
        _apply_patch(docs, patch, path)
    if "namespace" in kustomization:
        for doc in docs:
            if doc.get("kind") not in CLUSTER_SCOPED_KINDS:
                doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("labels") or []:
        _add_labels(docs, entry, path)
    for entry in kustomization.get("replicas") or []:
        _set_replicas(docs, entry, path)
    for entry in kustomization.get("images") or []:
        _set_image(docs, entry, path)
    for entry in kustomization.get("replacements") or []:
        _replace(docs, entry, path)
    return docs


def _check_keys(entry: Doc, allowed: set[str], where: str) -> None:
    if set(entry) - allowed:
        raise AssemblyError(f"{where}: cannot assemble {sorted(set(entry) - allowed)}")


def _generated_secrets(kustomization: Doc, path: Path) -> list[Doc]:
    generators = kustomization.get("secretGenerator") or []
    options = kustomization.get("generatorOptions") or {}
    _check_keys(options, {"disableNameSuffixHash"}, f"{path}: generatorOptions")
    if generators and not options.get("disableNameSuffixHash"):
        raise AssemblyError(f"{path}: cannot assemble hashed generator names")
    secrets = []
    for generator in generators:
        _check_keys(generator, {"name", "literals", "type"}, f"{path}: secretGenerator")
        data = {}
        for literal in generator.get("literals") or []:
            key, _, value = literal.partition("=")
            data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": generator["name"]},
                "type": generator.get("type", "Opaque"),
                "data": data,
            }
        )
    return secrets


def _targets(docs: list[Doc], selector: Doc, where: str) -> list[Doc]:
    _check_keys(selector, {"kind", "name", "labelSelector"}, where)
    wanted_labels = dict(
        pair.split("=", 1)
        for pair in filter(None, (selector.get("labelSelector") or "").split(","))
    )
    targets = [
        doc
        for doc in docs
        if selector.get("kind") in (None, doc.get("kind"))
        and selector.get("name") in (None, name_of(doc))
        and wanted_labels.items() <= ((doc.get("metadata") or {}).get("labels") or {}).items()
    ]
    if not targets:
        raise AssemblyError(f"{where}: {selector} selects nothing")
    return targets


def _apply_patch(docs: list[Doc], entry: Doc, path: Path) -> None:
    _check_keys(entry, {"target", "patch"}, f"{path}: patches")
    patch = yaml.safe_load(entry["patch"])
    if isinstance(patch, list):  # JSON 6902
        for doc in _targets(docs, entry["target"], f"{path}: patch target"):
            for operation in patch:
                _json_patch(doc, operation, f"{path}: patch of {ref(doc)}")
        return
    selector = entry.get("target") or {"kind": patch["kind"], "name": name_of(patch)}
    for doc in _targets(docs, selector, f"{path}: patch target"):
        _merge(doc, {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}, path)


def _merge(doc: Doc, patch: Doc, path: Path) -> None:
    """A strategic-merge patch of maps only (null deletes); lists would need merge keys."""
    for key, value in patch.items():
        if isinstance(value, list):
            raise AssemblyError(f"{path}: cannot assemble a strategic-merge patch of a list")
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, dict):
            _merge(doc.setdefault(key, {}), value, path)
        else:
            doc[key] = value


def _json_patch(doc: Doc, operation: Doc, where: str) -> None:
    op = operation.get("op")
    if op not in ("add", "replace", "remove"):
        raise AssemblyError(f"{where}: cannot assemble op {op!r}")
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = doc
    try:
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            if op == "add":
                node.insert(len(node) if last == "-" else int(last), operation["value"])
            elif op == "replace":
                node[int(last)] = operation["value"]
            else:
                del node[int(last)]
        elif op == "add":
            node[last] = operation["value"]
        elif op == "replace":
            if last not in node:
                raise KeyError(last)
            node[last] = operation["value"]
        else:
            del node[last]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise AssemblyError(f"{where}: {op} {operation['path']}: no such member ({exc})") from None


def _templates(doc: Doc) -> list[Doc]:
    """The pod templates of a workload (CronJob: its job's)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return [spec["template"]] if doc.get("kind") in WORKLOAD_KINDS and "template" in spec else []


def _add_labels(docs: list[Doc], entry: Doc, path: Path) -> None:
    _check_keys(entry, {"pairs", "includeTemplates"}, f"{path}: labels")
    for doc in docs:
        metadatas = [doc.setdefault("metadata", {})]
        if entry.get("includeTemplates"):
            metadatas += [template.setdefault("metadata", {}) for template in _templates(doc)]
        for metadata in metadatas:
            metadata["labels"] = {**(metadata.get("labels") or {}), **entry["pairs"]}


def _set_replicas(docs: list[Doc], entry: Doc, path: Path) -> None:
    _check_keys(entry, {"name", "count"}, f"{path}: replicas")
    targets = [d for d in docs if d.get("kind") in REPLICATED_KINDS and name_of(d) == entry["name"]]
    if not targets:
        raise AssemblyError(f"{path}: replicas: no workload {entry['name']!r}")
    for doc in targets:
        doc["spec"]["replicas"] = entry["count"]


def _set_image(docs: list[Doc], entry: Doc, path: Path) -> None:
    _check_keys(entry, {"name", "newName", "newTag"}, f"{path}: images")
    for doc in docs:
        for template in _templates(doc):
            spec = template.get("spec") or {}
            for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                name, _, tag = container.get("image", "").partition(":")
                if name == entry["name"]:
                    container["image"] = (
                        f"{entry.get('newName', name)}:{entry.get('newTag', tag or 'latest')}"
                    )


def _field(doc: Doc, field_path: str) -> tuple[Any, str]:
    """The parent node of a kustomize field path (``a.b.[name=x].c``) and its last part."""
    *parents, last = field_path.split(".")
    node: Any = doc
    for part in parents:
        if part.startswith("[") and "=" in part:
            key, _, value = part[1:-1].partition("=")
            node = next(item for item in node if str(item.get(key)) == value)
        else:
            node = node[part]
    return node, last


def _replace(docs: list[Doc], entry: Doc, path: Path) -> None:
    where = f"{path}: replacements"
    _check_keys(entry, {"source", "targets"}, where)
    source = entry["source"]
    _check_keys(source, {"kind", "name", "fieldPath", "options"}, where)
    options = source.get("options") or {}
    _check_keys(options, {"delimiter", "index"}, where)
    (document,) = _targets(docs, {"kind": source["kind"], "name": source["name"]}, where)
    parent, last = _field(document, source["fieldPath"])
    value = str(parent[last])
    if "delimiter" in options:
        value = value.split(options["delimiter"])[options.get("index", 0)]
    for target in entry["targets"]:
        _check_keys(target, {"select", "fieldPaths", "options"}, where)
        target_options = target.get("options") or {}
        _check_keys(target_options, {"delimiter", "index"}, where)
        for doc in _targets(docs, target["select"], where):
            for field_path in target["fieldPaths"]:
                parent, last = _field(doc, field_path)
                if "delimiter" in target_options:
                    parts = str(parent[last]).split(target_options["delimiter"])
                    parts[target_options.get("index", 0)] = value
                    parent[last] = target_options["delimiter"].join(parts)
                else:
                    parent[last] = value


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
    declared = kafka_topics(docs)
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


#: ``programmatic(roles, environment)``: what ``GET /dapr/subscribe`` answers for a process
#: serving ``roles`` with an app's manifest ``environment``.
Programmatic = Callable[[list[str], dict[str, str | None]], list[Doc]]


def app_roles(environment: dict[str, str | None]) -> list[str]:
    return [role.strip() for role in (environment.get("EVENT_CONSUMERS") or "all").split(",")]


def app_subscriptions(
    docs: Iterable[Doc], programmatic: Programmatic
) -> list[tuple[str, str, dict[str, str | None], list[Doc]]]:
    """(where, app id, environment, its /dapr/subscribe entries) of every Dapr app."""
    return [
        (where, app_id, environment, programmatic(app_roles(environment), environment))
        for where, app_id, environment in dapr_apps(docs)
    ]


def kafka_topics(docs: Iterable[Doc]) -> set[str]:
    return {
        (doc.get("spec") or {}).get("topicName") or name_of(doc)
        for doc in of_kind(docs, "KafkaTopic", "kafka.strimzi.io")
    }


def subscribe_problems(
    docs: Iterable[Doc], programmatic: Programmatic, defaults: dict[str, str], dead_letter: str
) -> list[str]:
    """Each app's ``/dapr/subscribe`` (its subscriptions: there are no Subscription objects)
    names only KafkaTopics, the pubsub Component the app uses (DAPR_PUBSUB_NAME) scoped to its
    app id, and the dead-letter topic."""
    docs = list(docs)
    topics = kafka_topics(docs)
    components = {name_of(doc): doc for doc in of_kind(docs, "Component", "dapr.io")}
    problems = []
    for where, app_id, environment, entries in app_subscriptions(docs, programmatic):
        pubsub = environment.get("DAPR_PUBSUB_NAME") or defaults["DAPR_PUBSUB_NAME"]
        for entry in entries:
            said = f"{where}: /dapr/subscribe topic {entry.get('topic')!r}"
            if entry.get("topic") not in topics:
                problems.append(f"{said} has no KafkaTopic")
            if entry.get("pubsubname") != pubsub:
                problems.append(f"{said} names pubsub {entry.get('pubsubname')!r}, not {pubsub!r}")
            scopes = (components.get(entry.get("pubsubname")) or {}).get("scopes")
            if entry.get("pubsubname") not in components or (scopes and app_id not in scopes):
                problems.append(
                    f"{said}: pubsub {entry.get('pubsubname')!r} is no Component "
                    f"scoped to {app_id!r}"
                )
            if entry.get("deadLetterTopic") != dead_letter:
                problems.append(
                    f"{said} dead-letters to {entry.get('deadLetterTopic')!r}, not {dead_letter!r}"
                )
    return problems


def autoscaled_replica_problems(docs: Iterable[Doc]) -> list[str]:
    """A workload an HPA scales sets no ``spec.replicas``: each apply would reset the HPA's
    count to it (Kubernetes' HPA docs: remove spec.replicas from the manifest)."""
    docs = list(docs)
    problems = []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        for doc in docs:
            targeted = (doc.get("kind"), name_of(doc)) == (target.get("kind"), target.get("name"))
            if targeted and "replicas" in (doc.get("spec") or {}):
                problems.append(f"{ref(doc)}: sets spec.replicas, which {ref(hpa)} owns")
    return problems


# --- Kafka ACLs -------------------------------------------------------------------------


def _acl_allows(acls: list[Doc], resource_type: str, name: str, operation: str) -> bool:
    """Whether an allow rule grants ``operation`` (or All) on the topic or group ``name``.

    Read, Write, Delete and Alter imply Describe in Kafka, so Describe is granted by them.
    """
    implied = {"All", operation} | (
        {"Read", "Write", "Delete", "Alter"} if operation == "Describe" else set()
    )
    for acl in acls:
        resource = acl.get("resource") or {}
        if acl.get("type", "allow") != "allow" or resource.get("type") != resource_type:
            continue
        pattern = resource.get("name", "")
        matches = (
            name.startswith(pattern)
            if resource.get("patternType") == "prefix"
            else pattern in ("*", name)
        )
        operations = set(acl.get("operations") or []) | {acl.get("operation")}
        if matches and operations & implied:
            return True
    return False


def kafka_acl_problems(
    docs: Iterable[Doc],
    programmatic: Programmatic,
    defaults: dict[str, str],
    published: Iterable[str],
    dead_letter: str,
) -> list[str]:
    """The KafkaUser of each pubsub.kafka Component (its saslUsername) may do what the apps do.

    Every app relays the shared outbox, so the user writes every topic in ``published`` and,
    as the sidecars dead-letter, ``dead_letter``; an app that subscribes reads each of its
    topics and its consumer group (the Component's consumerGroup, ``{appID}`` standing for the
    app id). Describe, which Kafka's clients need too, comes with Read and Write.
    """
    docs = list(docs)
    users = {name_of(doc): doc for doc in of_kind(docs, "KafkaUser", "kafka.strimzi.io")}
    subscriptions = app_subscriptions(docs, programmatic)
    problems = []
    for component in of_kind(docs, "Component", "dapr.io"):
        spec = component.get("spec") or {}
        if spec.get("type") != "pubsub.kafka":
            continue
        values = {i.get("name"): str(i.get("value", "")) for i in spec.get("metadata") or []}
        user = users.get(values.get("saslUsername", ""))
        if user is None:
            problems.append(f"{ref(component)}: saslUsername names no KafkaUser")
            continue
        acls = ((user.get("spec") or {}).get("authorization") or {}).get("acls") or []
        needs = [("topic", topic, "Write") for topic in sorted({*published, dead_letter})]
        for _, app_id, environment, entries in subscriptions:
            used = environment.get("DAPR_PUBSUB_NAME") or defaults["DAPR_PUBSUB_NAME"]
            topics = sorted(
                {e["topic"] for e in entries if e.get("pubsubname") == name_of(component)}
            )
            if used != name_of(component) or not topics:
                continue
            group = values.get("consumerGroup", "").replace("{appID}", app_id)
            needs += [("group", group, "Read"), *(("topic", t, "Read") for t in topics)]
        for resource_type, name, operation in dict.fromkeys(needs):
            for wanted in (operation, "Describe"):
                if not _acl_allows(acls, resource_type, name, wanted):
                    problems.append(
                        f"{ref(user)}: no ACL allows {wanted} on {resource_type} {name!r}"
                    )
    return problems


# --- NetworkPolicies --------------------------------------------------------------------

#: The Dapr control plane's pod ports a sidecar dials: Sentry, Placement, Scheduler, operator.
DAPR_CONTROL_PLANE_PORTS = (50001, 50005, 50006, 6500)
POSTGRESQL_PORT = 5432
DNS_PORT = 53


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects ``labels``."""
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if not {
            "In": present and labels.get(key) in (values or []),
            "NotIn": not present or labels.get(key) not in (values or []),
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def _allowed_ports(policies: list[Doc], labels: dict[str, str], direction: str) -> list[Doc]:
    """The rules of ``direction`` ("ingress"/"egress") of the policies selecting ``labels``."""
    rules = []
    for policy in policies:
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if direction.capitalize() in types and _selects(spec.get("podSelector") or {}, labels):
            rules += spec.get(direction) or []
    return rules


def _rule_allows(rule: Doc, port: int | str, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        item.get("protocol", "TCP") == protocol and item.get("port") in (None, port)
        for item in ports
    )


def network_policy_problems(docs: Iterable[Doc]) -> list[str]:
    """The NetworkPolicies let each Dapr-enabled pod reach DNS, PostgreSQL, the Kafka listener
    of each pubsub.kafka Component's brokers and the Dapr control plane, and let the ingress
    controller (a peer in another namespace) reach the port of each Ingress backend's pods."""
    docs = list(docs)
    policies = of_kind(docs, "NetworkPolicy")
    kafka_ports = set()
    for component in of_kind(docs, "Component", "dapr.io"):
        if (component.get("spec") or {}).get("type") == "pubsub.kafka":
            for item in component["spec"].get("metadata") or []:
                if item.get("name") == "brokers":
                    kafka_ports |= {
                        int(broker.rpartition(":")[2]) for broker in str(item["value"]).split(",")
                    }
    needs = [
        ("DNS", DNS_PORT, "UDP"),
        ("PostgreSQL", POSTGRESQL_PORT, "TCP"),
        *(("Kafka", port, "TCP") for port in sorted(kafka_ports)),
        *(("the Dapr control plane", port, "TCP") for port in DAPR_CONTROL_PLANE_PORTS),
    ]
    problems = []
    for doc in docs:
        if not dapr_enabled(doc):
            continue
        labels = (_templates(doc)[0].get("metadata") or {}).get("labels") or {}
        rules = _allowed_ports(policies, labels, "egress")
        for what, port, protocol in needs:
            if not any(_rule_allows(rule, port, protocol) for rule in rules):
                problems.append(f"{ref(doc)}: no NetworkPolicy lets it reach {what} on {port}")
    services = {name_of(doc): doc for doc in of_kind(docs, "Service")}
    for ingress in of_kind(docs, "Ingress"):
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = (path.get("backend") or {}).get("service") or {}
                problems += _ingress_backend_problems(
                    ingress, backend, services.get(backend.get("name")), docs, policies
                )
    return problems


def _ingress_backend_problems(
    ingress: Doc, backend: Doc, service: Doc | None, docs: list[Doc], policies: list[Doc]
) -> list[str]:
    if service is None:
        return [f"{ref(ingress)}: backend Service {backend.get('name')!r} does not exist"]
    wanted = backend.get("port") or {}
    spec = service.get("spec") or {}
    port = next(
        (
            p
            for p in spec.get("ports") or []
            if wanted.get("name", p.get("port")) == p.get("name")
            and wanted.get("number", p.get("port")) == p.get("port")
        ),
        None,
    )
    if port is None:
        return [f"{ref(ingress)}: Service {name_of(service)!r} has no port {wanted}"]
    problems = []
    for doc in docs:
        templates = _templates(doc)
        labels = (templates[0].get("metadata") or {}).get("labels") or {} if templates else {}
        if not templates or not _selects({"matchLabels": spec.get("selector") or {}}, labels):
            continue
        target = port.get("targetPort", port["port"])
        numbers = {
            c.get("name"): c.get("containerPort")
            for container in (templates[0].get("spec") or {}).get("containers") or []
            for c in container.get("ports") or []
        }
        number = numbers.get(target, target)
        from_controller = [
            rule
            for rule in _allowed_ports(policies, labels, "ingress")
            if any("namespaceSelector" in peer for peer in rule.get("from") or [])
            and (_rule_allows(rule, number, "TCP") or _rule_allows(rule, target, "TCP"))
        ]
        if not from_controller:
            problems.append(
                f"{ref(doc)}: no NetworkPolicy lets the ingress controller reach port {number}"
            )
    return problems


def role_problems(docs: Iterable[Doc], roles: Iterable[str]) -> list[str]:
    """Every role with consumers or job callbacks is served by some Dapr app (EVENT_CONSUMERS)."""
    served = {role for _, _, environment in dapr_apps(docs) for role in app_roles(environment)}
    if "all" in served:
        return []
    return [f"no Dapr app serves the role {role!r}" for role in sorted(set(roles) - served)]


def find(docs: Iterable[Doc], kind: str, predicate: Callable[[Doc], bool] = bool) -> Doc:
    """The first object of ``kind`` for which ``predicate`` holds (for the negative tests)."""
    for doc in docs:
        if doc.get("kind") == kind and predicate(doc):
            return doc
    raise LookupError(f"no {kind} matches")
