"""The README as a script: its shell blocks, what it says they answer, and a bash to run them.

The convention (README.md, "Development"):

- a ```` ```sh ```` block runs; ```` ```sh no-run ```` is shown, never run (it starts a server,
  needs a cluster, or is production's);
- an ```` ```http ```` block right after a block that runs is what the server answers to that
  block's last requests, in order: each answer a status line (``HTTP/1.1 201 Created``),
  then its JSON body as far as it is shown, where ``...`` stands for any value (``"id": ...``),
  the remaining fields of an object (``, ...}``) or the remaining items of a list (``, ...]``),
  and a string ending in ``...`` for any string that starts so;
- a ```` ```text console ```` block right after a block that runs (or after its ``http``
  block) is what the server prints on its console soon after: lines in order, ``...``
  standing for any text within a line.

Every request a block makes must succeed (a status below 400) unless its answer is shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the README says ``make run`` serves; the test substitutes the live server's URL.
README_URL = "http://127.0.0.1:8000"
ELLIPSIS = "\u2026ellipsis\u2026"
#: A fence opens with three backticks or more and an info string without backticks
#: (CommonMark), so inline code such as ```` ```sh ```` at the start of a line is no fence.
FENCE = re.compile(r"^(`{3,})([^`\s]*)[ \t]*([^`]*)$")
STATUS_LINE = re.compile(r"^HTTP/1\.1 (\d{3})\b.*$", re.MULTILINE)


@dataclass
class Answer:
    """One answer an ``http`` block shows: its status and its body as far as it is shown."""

    status: int
    body: Any = None  # None: no body shown


@dataclass
class Block:
    """A fenced block of the README: its language, the words after it, its text and line."""

    language: str
    options: str
    text: str
    line: int
    answers: list[Answer] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        return self.language == "sh" and "no-run" not in self.options.split()


def parse_blocks(markdown: str) -> list[Block]:
    """The blocks that run, in order, each with what the README says it answers (the
    ``http`` and ``text console`` blocks that follow it)."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        body = []
        closing = re.compile(f"^{opening[1]}`*\\s*$")
        while index < len(lines) and not closing.match(lines[index]):
            body.append(lines[index])
            index += 1
        index += 1
        blocks.append(Block(opening[2], opening[3].strip(), "\n".join(body) + "\n", start + 1))
    running: list[Block] = []
    owner: Block | None = None  # the block that runs, while what follows it tells its results
    for block in blocks:
        if block.runs:
            running.append(block)
            owner = block
        elif owner is not None and block.language == "http" and not owner.answers:
            owner.answers = parse_answers(block.text, where=f"README.md:{block.line}")
        elif owner is not None and block.options == "console" and not owner.console:
            owner.console = [line for line in block.text.splitlines() if line.strip()]
        else:
            owner = None
    return running


def parse_answers(text: str, *, where: str) -> list[Answer]:
    """The answers of an ``http`` block: status lines, each followed by an optional body."""
    starts = list(STATUS_LINE.finditer(text))
    if not starts or text[: starts[0].start()].strip():
        raise ValueError(f"{where}: an http block starts with a status line (HTTP/1.1 200 OK)")
    answers = []
    for number, start in enumerate(starts):
        end = starts[number + 1].start() if number + 1 < len(starts) else len(text)
        body = text[start.end() : end].strip()
        try:
            parsed = parse_shown_json(body) if body else None
        except ValueError as exc:
            raise ValueError(f"{where}: the body after {start[0]!r} is not JSON: {exc}") from exc
        answers.append(Answer(int(start[1]), parsed))
    return answers


def parse_shown_json(text: str) -> Any:
    """JSON in which a bare ``...`` stands for what is not shown (see the module's doc)."""
    out: list[str] = []
    stack: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == '"':
            end = position + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[position : end + 1])
            position = end + 1
            continue
        if text.startswith("...", position):
            in_object_key = stack[-1:] == ["{"] and "".join(out).rstrip()[-1:] in ("{", ",")
            out.append(f'"{ELLIPSIS}": null' if in_object_key else f'"{ELLIPSIS}"')
            position += 3
            continue
        if char in "[{":
            stack.append(char)
        elif char in "]}":
            stack.pop()
        out.append(char)
        position += 1
    return json.loads("".join(out))


def mismatches(shown: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from what the README shows (empty when it matches)."""
    if shown == ELLIPSIS:
        return []
    if isinstance(shown, str) and shown.endswith("...") and isinstance(actual, str):
        return [] if actual.startswith(shown[:-3]) else [f"{path}: {actual!r} != {shown!r}"]
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        problems = []
        for key, value in shown.items():
            if key == ELLIPSIS:
                continue
            if key not in actual:
                problems.append(f"{path}: no field {key!r}")
            else:
                problems += mismatches(value, actual[key], f"{path}.{key}")
        if ELLIPSIS not in shown:
            extra = sorted(set(actual) - set(shown))
            if extra:
                problems.append(f"{path}: fields the README does not show: {extra}")
        return problems
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{path}: {actual!r} is not a list"]
        open_ended = bool(shown) and shown[-1] == ELLIPSIS
        items = shown[:-1] if open_ended else shown
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return [f"{path}: {len(actual)} items, the README shows {len(items)}: {actual!r}"]
        problems = []
        for number, item in enumerate(items):
            problems += mismatches(item, actual[number], f"{path}[{number}]")
        return problems
    if shown != actual or type(shown) is not type(actual):
        return [f"{path}: {actual!r} != {shown!r}"]
    return []


def console_line_pattern(shown: str) -> re.Pattern[str]:
    """A console line as the README shows it, ``...`` standing for any text."""
    return re.compile(".*".join(re.escape(part) for part in shown.strip().split("...")))


@dataclass
class Request:
    """One request a block's ``curl`` made: its status and what it answered."""

    status: int
    body: str


#: Put before the README's blocks in the bash that runs them: stop at the first failing
#: command, and record each curl's status and answer (the README's commands are unchanged).
PRELUDE = r"""
set -euo pipefail
curl() {
    local number
    number=$(wc -l < "$READMETEST_DIR/statuses")
    command curl -s --write-out '%{stderr}%{http_code}\n' "$@" \
        2>>"$READMETEST_DIR/statuses" | tee "$READMETEST_DIR/answer-$number"
}
"""


class BashSession:
    """One bash that runs the README's blocks in order, keeping its variables between them."""

    def __init__(self, workdir: Path, env: dict[str, str], *, cwd: Path) -> None:
        self.workdir = workdir
        (workdir / "statuses").write_text("")
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env={**env, "READMETEST_DIR": str(workdir)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send(PRELUDE)
        self._count = 0

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()

    def requests(self) -> list[Request]:
        statuses = (self.workdir / "statuses").read_text().split()
        return [
            Request(int(status), (self.workdir / f"answer-{number}").read_text())
            for number, status in enumerate(statuses)
        ]

    def run(self, script: str, *, timeout: float) -> list[Request]:
        """Run ``script``; the requests it made. AssertionError, with what it printed, when a
        command fails (``set -e``) or it takes longer than ``timeout`` seconds."""
        self._count += 1
        marker = f"__README_BLOCK_{self._count}_DONE__"
        path = self.workdir / f"block-{self._count}.sh"
        path.write_text(script)
        before = len(self.requests())
        self._send(f"source {path}\necho {marker}")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"still running after {timeout:.0f} s; so far:\n{''.join(output)}"
                ) from None
            if line is None:
                self._process.wait(timeout=5)
                raise AssertionError(
                    f"a command failed (exit {self._process.returncode}); it printed:\n"
                    + "".join(output)
                )
            if line.rstrip("\n").endswith(marker):  # an answer may end without a newline
                return self.requests()[before:]
            output.append(line)

    def close(self) -> None:
        """End the bash and whatever it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=5)
