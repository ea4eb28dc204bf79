"""The cases: each is a few variants (app, raw, naive) measured round by round, interleaved,
after a warm-up, with a check that the variants answered the same."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson


class Mismatch(AssertionError):
    """A baseline did not answer what the endpoint answered: the run is not a comparison."""


@dataclass(frozen=True)
class Goal:
    """``ratio``: app p50 / raw p50 at most this; ``ms``: app p50 at most this;
    ``rate``: at least this many per second; ``share``: app req/s ÷ plain req/s at least
    this (load runs)."""

    ratio: float | None = None
    ms: float | None = None
    rate: float | None = None
    share: float | None = None

    def __str__(self) -> str:
        if self.ratio is not None:
            return f"≤ {self.ratio:g}x"
        if self.ms is not None:
            return f"≤ {self.ms:g} ms"
        if self.share is not None:
            return f"≥ {self.share:g} of plain"
        return f"≥ {self.rate:g}/s"


@dataclass
class Result:
    case: str
    samples: dict[str, list[float]] = field(default_factory=dict)  # variant -> seconds
    goal: Goal | None = None
    checked: str = ""
    statements: int | None = None
    #: For throughput cases: the measured rate (events/s, req/s), and what it is compared to.
    rate: float | None = None
    #: Load runs: app req/s ÷ plain req/s.
    share: float | None = None
    note: str = ""

    def p(self, variant: str, q: float) -> float:
        values = sorted(self.samples[variant])
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000

    @property
    def ratio(self) -> float | None:
        if "app" in self.samples and "raw" in self.samples:
            return self.p("app", 0.5) / self.p("raw", 0.5)
        return None

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        if self.goal.ratio is not None:
            return self.ratio is not None and self.ratio <= self.goal.ratio
        if self.goal.ms is not None:
            return self.p("app", 0.5) <= self.goal.ms
        if self.goal.share is not None:
            return self.share is not None and self.share >= self.goal.share
        return self.rate is not None and self.rate >= self.goal.rate


@dataclass
class Case:
    name: str
    variants: dict[str, Callable[[int], object]]
    goal: Goal | None = None
    #: Called once before timing with one answer of each variant; returns what it checked.
    check: Callable[[dict[str, object]], str] | None = None
    #: Counts the SQL statements of one app call (before timing).
    count_statements: bool = False
    #: Rounds per ``--rounds``: a case of a few milliseconds takes more samples, so that a
    #: burst of the machine's other work moves its p50 less.
    rounds_factor: int = 1


def measure(case: Case, *, rounds: int, warmup: int = 3) -> Result:
    from django.db import connection

    result = Result(case.name, goal=case.goal)
    answers = {name: call(-1) for name, call in case.variants.items()}
    if case.check is not None:
        result.checked = case.check(answers)
    if case.count_statements:
        counted: list[str] = []
        with connection.execute_wrapper(
            lambda execute, sql, *a: (counted.append(sql), execute(sql, *a))[1]
        ):
            case.variants["app"](-2)
        result.statements = len(counted)
    for i in range(warmup):
        for call in case.variants.values():
            call(-3 - i)
    names = list(case.variants)
    for name in names:
        result.samples[name] = []
    for r in range(rounds * case.rounds_factor):
        # The order turns each round: no variant always follows the same one (and the
        # garbage its predecessor left).
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.perf_counter()
            case.variants[name](r)
            result.samples[name].append(time.perf_counter() - started)
    return result


def compare_lists(answers: dict[str, object]) -> str:
    """ids, tags and count of every variant equal to the app's, and the raw body equal."""
    app = orjson.loads(answers["app"])
    raw = orjson.loads(answers["raw"])
    _same(app, raw, "raw")
    if "naive" in answers:
        naive = orjson.loads(answers["naive"])
        _same(app, naive, "naive")
    if app != raw:
        raise Mismatch(f"raw body differs: {_first_difference(app, raw)}")
    return f"{len(app['results'])} ids, tags, count {app['count']}, whole body"


def _same(app: dict, other: dict, name: str) -> None:
    pairs = [(t["id"], sorted(t["tags"])) for t in app["results"]]
    theirs = [(t["id"], sorted(t["tags"])) for t in other["results"]]
    if app["count"] != other["count"] or pairs != theirs:
        raise Mismatch(
            f"{name} differs from the endpoint: count {other['count']} vs {app['count']}, "
            f"ids/tags {theirs[:3]}... vs {pairs[:3]}..."
        )


def compare_documents(answers: dict[str, object]) -> str:
    app, raw = orjson.loads(answers["app"]), orjson.loads(answers["raw"])
    if app != raw:
        raise Mismatch(f"raw body differs: {_first_difference(app, raw)}")
    return "whole body"


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<missing>") != b.get(key, "<missing>"):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: endpoint {a!r} vs raw {b!r}"


def summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f} ms"
