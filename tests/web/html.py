"""Reading server-rendered pages in tests: the response's HTML as a tree of elements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = frozenset({"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The visible words, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join("".join(parts).split())

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find(self, tag: str, **attrs: str) -> list[Element]:
        """The descendants ``<tag>`` whose attributes have the given values."""
        return [
            e
            for e in self.iter()
            if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    def find_all(self, *tags: str) -> list[Element]:
        return [e for e in self.iter() if e.tag in tags]

    def by_id(self, element_id: str) -> Element | None:
        return next((e for e in self.iter() if e.attrs.get("id") == element_id), None)

    def get(self, element_id: str) -> Element:
        """The element with ``id``, failing the test when the page has none."""
        element = self.by_id(element_id)
        assert element is not None, f"no element with id {element_id!r} on the page"
        return element


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        if tag == "option" and self.stack[-1].tag == "option":  # </option> is optional
            self.stack.pop()
        element = Element(tag, dict(attrs))
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(response) -> Element:
    """The response's HTML as a tree of elements."""
    builder = _TreeBuilder()
    builder.feed(response.content.decode())
    return builder.root


def cells(response, row_id: str) -> list[str]:
    """The text of each cell of a table row."""
    return [cell.text for cell in parse(response).get(row_id).find_all("th", "td")]


def flash(response) -> list[str]:
    """The flash messages shown on the page."""
    return [m.text for m in parse(response).get("messages").find_all("div")]


def field_error(response, control_id: str) -> str:
    """The error shown beside a control, checked to be tied to it for assistive technology."""
    document = parse(response)
    control = document.get(control_id)
    assert control.attrs.get("aria-invalid") == "true"
    error_id = f"{control_id}_error"
    assert error_id in (control.attrs.get("aria-describedby") or "").split()
    return document.get(error_id).text


def unlabelled_controls(response) -> list[str]:
    """Form controls a screen reader could not name."""
    document = parse(response)
    labelled = {label.attrs.get("for") for label in document.find_all("label")}
    controls = [
        control
        for control in document.find_all("input", "select", "textarea")
        if control.attrs.get("type") not in ("hidden", "submit")
    ]
    assert controls, "the page has no form control to check"
    return [
        str(control.attrs)
        for control in controls
        if control.attrs.get("id") not in labelled and not control.attrs.get("aria-label")
    ]
