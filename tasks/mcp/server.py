"""The MCP server: Tideline's tools and resources, declared for the ``mcp`` SDK.

Each tool is a thin async shell over ``operations``: it shapes its arguments as the REST API
receives them and runs the operation on Django's thread for synchronous code
(``sync_to_async(thread_sensitive=True)``) as the user the transport authenticated
(``acting_as``). A refusal comes back as a tool error whose text is the API's error body.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from asgiref.sync import sync_to_async
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, WithJsonSchema
from rest_framework.utils.encoders import JSONEncoder

from ..models import Priority, RecurrenceMode, RecurrenceType
from ..selectors import ORDERING_CHOICES, SmartView
from . import operations

#: The user the running tool or resource acts for: set per HTTP request by ``http`` and for
#: the whole process by ``manage.py mcp``. Unset, every tool refuses.
_acting_user_id: ContextVar[int | None] = ContextVar("tideline_mcp_user_id", default=None)


@contextmanager
def acting_as(user_id: int) -> Iterator[None]:
    """Tools and resources run in this block (and in what it starts) act for ``user_id``."""
    token = _acting_user_id.set(user_id)
    try:
        yield
    finally:
        _acting_user_id.reset(token)


NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}


async def _run(operation: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``operation`` for the acting user on Django's sync thread; raises ``Refused``."""
    user_id = _acting_user_id.get()
    if user_id is None:
        raise operations.Refused(NOT_AUTHENTICATED)
    run = sync_to_async(operations.run_as, thread_sensitive=True)
    return await run(user_id, operation, **kwargs)


def _as_json(data: Any) -> tuple[str, Any]:
    """``data`` (serializer output) as JSON text, and as plain JSON values."""
    text = json.dumps(data, cls=JSONEncoder, ensure_ascii=False)
    return text, json.loads(text)


def _result(data: Any, *, is_error: bool = False) -> CallToolResult:
    text, value = _as_json(data)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=value, is_error=is_error
    )


async def _tool(operation: Callable[..., Any], /, **kwargs: Any) -> CallToolResult:
    try:
        return _result(await _run(operation, **kwargs))
    except operations.Refused as refused:
        return _result(refused.detail, is_error=True)


def _one_of(values: list[str]) -> Any:
    """A string the input schema lists the choices of. The API's serializer or FilterSet
    checks it, so a wrong one is refused with the API's own message, naming the field."""
    return Annotated[str, WithJsonSchema({"type": "string", "enum": values})]


PriorityName = _one_of(Priority.values)
ViewName = _one_of(SmartView.values)
OrderingName = _one_of([value for value, _ in ORDERING_CHOICES])
RecurrenceTypeName = _one_of(RecurrenceType.values)
RecurrenceModeName = _one_of(RecurrenceMode.values)
StatusName = _one_of(["pending", "completed"])
#: The fields ``update_task`` can clear (set to null).
ClearableField = _one_of(["due_date", "remind_at", "remind_before", "category"])

TaskId = Annotated[int, Field(ge=1, le=2**63 - 1, description="The task's id.")]
Page = Annotated[int, Field(description="The page, from 1.")]
PageSize = Annotated[int | None, Field(description="Results per page (default 50, at most 200).")]
DateBound = Annotated[
    str | None,
    Field(
        description="A date (2030-02-01: that whole day in the user's time zone) or an ISO "
        "8601 date-time (inclusive)."
    ),
]

# The task fields of add_task and update_task, as the API's task body has them.
Title = Annotated[str | None, Field(description="The title (at most 200 characters).")]
Description = Annotated[str | None, Field(description="Notes (at most 10,000 characters).")]
PriorityField = Annotated[PriorityName | None, Field(description="Default medium.")]
DueDate = Annotated[
    str | None,
    Field(
        description="ISO 8601 date-time; without an offset it is read in the task's time "
        "zone (2030-03-01T17:00:00)."
    ),
]
TimeZone = Annotated[
    str | None,
    Field(description="IANA time zone, e.g. Europe/Paris; default the user's."),
]
CategoryId = Annotated[int | None, Field(description="One of the user's category ids.")]
Tags = Annotated[
    list[str] | None,
    Field(description="Tag names (unknown ones are created), at most 50."),
]
RecurrenceRule = Annotated[
    str | None,
    Field(description='An RFC 5545 RRULE, e.g. "FREQ=WEEKLY;BYDAY=MO"; "" stops repeating.'),
]
RecurrenceTypeField = Annotated[
    RecurrenceTypeName | None, Field(description="A preset instead of a rule.")
]
RecurrenceInterval = Annotated[int | None, Field(description="The preset's interval.")]
RecurrenceModeField = Annotated[
    RecurrenceModeName | None,
    Field(description="schedule (the default) or completion: the next is due after completing."),
]
RemindAt = Annotated[str | None, Field(description="An ISO 8601 date-time to be reminded at.")]
RemindBefore = Annotated[
    str | None,
    Field(
        description='How long before the due date to be reminded, ISO 8601: "PT1H", "P1D" '
        '(as tasks show it; "01:00:00" is read too).'
    ),
]


mcp_server = MCPServer(
    "Tideline",
    instructions="Tideline is the user's task manager. list_tasks reads tasks through the "
    "smart views (today, upcoming, overdue, all, completed) and filters; add_task takes one "
    'line of quick-add text ("Pay rent every month on the 1st at 9am #Home p1") or fields. '
    "Dates are in the user's time zone. Errors name the field at fault.",
)
tool = mcp_server.tool
READ = ToolAnnotations(read_only_hint=True)
IDEMPOTENT = ToolAnnotations(idempotent_hint=True)


@tool(annotations=READ)
async def list_tasks(
    view: Annotated[
        ViewName | None,
        Field(
            description="A smart view: today (due today or overdue), upcoming (the next 14 "
            "days), overdue, all (pending) or completed."
        ),
    ] = None,
    status: Annotated[StatusName | None, Field(description="pending or completed.")] = None,
    priority: Annotated[
        list[PriorityName] | None, Field(description="Any of these priorities.")
    ] = None,
    category: Annotated[int | None, Field(description="A category id.")] = None,
    tags: Annotated[list[str] | None, Field(description="Has any of these tags.")] = None,
    tags_all: Annotated[list[str] | None, Field(description="Has all of these tags.")] = None,
    due_after: DateBound = None,
    due_before: DateBound = None,
    created_after: DateBound = None,
    created_before: DateBound = None,
    overdue: Annotated[bool | None, Field(description="Pending and due in the past.")] = None,
    has_due_date: bool | None = None,
    has_recurrence: bool | None = None,
    search: Annotated[
        str | None, Field(description="Words that must all appear in title or description.")
    ] = None,
    ordering: Annotated[
        OrderingName | None,
        Field(description="Sort key, - for descending; default newest first (-created_at)."),
    ] = None,
    saved_view: Annotated[
        int | None,
        Field(description="A saved view's id: its filters, under the ones given here."),
    ] = None,
    page: Page = 1,
    page_size: PageSize = None,
) -> CallToolResult:
    """List the user's tasks, filtered and sorted as GET /api/tasks/ does; a page of them
    (count, page, pages, next_page, results)."""
    filters = {
        "view": view,
        "status": status,
        "priority": priority,
        "category": category,
        "tags": tags,
        "tags_all": tags_all,
        "due_after": due_after,
        "due_before": due_before,
        "created_after": created_after,
        "created_before": created_before,
        "overdue": overdue,
        "has_due_date": has_due_date,
        "has_recurrence": has_recurrence,
        "search": search,
        "ordering": ordering,
    }
    return await _tool(
        operations.list_tasks,
        filters=filters,
        saved_view=saved_view,
        page=page,
        page_size=page_size,
    )


@tool(annotations=READ)
async def get_task(task_id: TaskId) -> CallToolResult:
    """One of the user's tasks, with its repeat in words and its series."""
    return await _tool(operations.get_task, task_id=task_id)


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@tool()
async def add_task(
    text: Annotated[
        str | None,
        Field(
            description='One line of quick-add text, e.g. "Water plants every monday p2", '
            '"Pay rent every month on the 1st at 9am #Home @bills p1": dates, repeats, '
            "#category, @tags, p1-p4 and reminders are read from it. Or give the fields."
        ),
    ] = None,
    title: Title = None,
    description: Description = None,
    priority: PriorityField = None,
    due_date: DueDate = None,
    timezone: TimeZone = None,
    category: CategoryId = None,
    tags: Tags = None,
    recurrence_rule: RecurrenceRule = None,
    recurrence_type: RecurrenceTypeField = None,
    recurrence_interval: RecurrenceInterval = None,
    recurrence_mode: RecurrenceModeField = None,
    remind_at: RemindAt = None,
    remind_before: RemindBefore = None,
) -> CallToolResult:
    """Create a task from quick-add text, or from its fields (title at least)."""
    fields = _given(
        title=title,
        description=description,
        priority=priority,
        due_date=due_date,
        timezone=timezone,
        category=category,
        tags=tags,
        recurrence_rule=recurrence_rule,
        recurrence_type=recurrence_type,
        recurrence_interval=recurrence_interval,
        recurrence_mode=recurrence_mode,
        remind_at=remind_at,
        remind_before=remind_before,
    )
    return await _tool(operations.add_task, text=text, fields=fields)


@tool(annotations=IDEMPOTENT)
async def update_task(
    task_id: TaskId,
    title: Title = None,
    description: Description = None,
    priority: PriorityField = None,
    due_date: DueDate = None,
    timezone: TimeZone = None,
    category: CategoryId = None,
    tags: Annotated[list[str] | None, Field(description="The task's tags, replacing them.")] = None,
    recurrence_rule: RecurrenceRule = None,
    recurrence_type: RecurrenceTypeField = None,
    recurrence_interval: RecurrenceInterval = None,
    recurrence_mode: RecurrenceModeField = None,
    remind_at: RemindAt = None,
    remind_before: RemindBefore = None,
    clear: Annotated[
        list[ClearableField] | None,
        Field(description="Fields to clear: due_date, remind_at, remind_before, category."),
    ] = None,
) -> CallToolResult:
    """Change some fields of a task (the others stay as they are)."""
    changes = _given(
        title=title,
        description=description,
        priority=priority,
        due_date=due_date,
        timezone=timezone,
        category=category,
        tags=tags,
        recurrence_rule=recurrence_rule,
        recurrence_type=recurrence_type,
        recurrence_interval=recurrence_interval,
        recurrence_mode=recurrence_mode,
        remind_at=remind_at,
        remind_before=remind_before,
    )
    both = sorted(set(clear or ()) & changes.keys())
    if both:
        return _result(
            {name: ["Given and cleared: do one or the other."] for name in both}, is_error=True
        )
    changes.update(dict.fromkeys(clear or (), None))
    return await _tool(operations.update_task, task_id=task_id, changes=changes)


@tool(annotations=IDEMPOTENT)
async def complete_task(task_id: TaskId) -> CallToolResult:
    """Mark a task completed. A repeating task answers with its next due date
    (next_occurrence_at); its next instance appears in the lists just after."""
    return await _tool(operations.complete_task, task_id=task_id)


@tool(annotations=IDEMPOTENT)
async def reopen_task(task_id: TaskId) -> CallToolResult:
    """Mark a completed task pending again."""
    return await _tool(operations.reopen_task, task_id=task_id)


@tool(annotations=ToolAnnotations(destructive_hint=True))
async def delete_task(task_id: TaskId) -> CallToolResult:
    """Delete a task (a repeating task's later instances stay)."""
    return await _tool(operations.delete_task, task_id=task_id)


@tool(annotations=READ)
async def list_categories(page: Page = 1, page_size: PageSize = None) -> CallToolResult:
    """The user's categories by name, with their task counts (all, and pending)."""
    return await _tool(operations.list_categories, page=page, page_size=page_size)


@tool(annotations=READ)
async def list_tags(page: Page = 1, page_size: PageSize = None) -> CallToolResult:
    """The user's tags by name, with their task counts (all, and pending)."""
    return await _tool(operations.list_tags, page=page, page_size=page_size)


@tool(annotations=READ)
async def preview_recurrence(
    rule: Annotated[
        str, Field(description='An RFC 5545 RRULE, e.g. "FREQ=MONTHLY;BYMONTHDAY=-1".')
    ],
    due_date: Annotated[
        str | None, Field(description="The first due date (DTSTART), ISO 8601; default now.")
    ] = None,
    timezone: TimeZone = None,
    mode: Annotated[RecurrenceModeName | None, Field(description="schedule or completion.")] = None,
    count: Annotated[
        int | None, Field(description="How many occurrences (1-50, default 5).")
    ] = None,
) -> CallToolResult:
    """Check a recurrence rule and list its next occurrences, in words too; nothing is saved."""
    arguments = _given(rule=rule, due_date=due_date, timezone=timezone, mode=mode, count=count)
    return await _tool(operations.preview_recurrence, arguments=arguments)


# --- resources: the smart views and the saved ones ------------------------------------------


async def _read(operation: Callable[..., Any], /, **kwargs: Any) -> str:
    try:
        text, _ = _as_json(await _run(operation, **kwargs))
    except operations.Refused as refused:
        text, _ = _as_json(refused.detail)
        raise ResourceError(text) from None
    return text


def _smart_view_reader(view: SmartView) -> Callable[[], Any]:
    async def read() -> str:
        return await _read(operations.list_tasks, filters={"view": view.value})

    return read


for _view in SmartView:
    mcp_server.resource(
        f"tideline://views/{_view.value}",
        name=f"view-{_view.value}",
        title=_view.label,
        description=f"The first page of the user's {_view.label} view (list_tasks view="
        f"{_view.value}).",
        mime_type="application/json",
    )(_smart_view_reader(_view))


@mcp_server.resource(
    "tideline://views",
    name="views",
    title="Saved views",
    description="The user's saved views (id, name, filters); read one at "
    "tideline://views/saved/{id}.",
    mime_type="application/json",
)
async def saved_views() -> str:
    return await _read(operations.list_saved_views)


@mcp_server.resource(
    "tideline://views/saved/{view_id}",
    name="saved-view",
    title="A saved view",
    description="The first page of one of the user's saved views.",
    mime_type="application/json",
)
async def saved_view(view_id: str) -> str:
    if not view_id.isascii() or not view_id.isdigit() or len(view_id) > 18:
        raise ResourceNotFoundError(f"No saved view {view_id}.")
    try:
        data = await _run(operations.list_tasks, filters={}, saved_view=int(view_id))
    except operations.Refused as refused:
        text, _ = _as_json(refused.detail)
        if "saved_view" in refused.detail:
            raise ResourceNotFoundError(text) from None
        raise ResourceError(text) from None
    return _as_json(data)[0]
