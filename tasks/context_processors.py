"""Template context for every page: the sidebar, computed only if a template shows it."""

from django.utils.functional import SimpleLazyObject

#: (view, label, icon) in sidebar order.
SMART_VIEW_LINKS = [
    ("today", "Today", "☀"),
    ("upcoming", "Upcoming", "▦"),
    ("overdue", "Overdue", "!"),
    ("all", "All", "≡"),
    ("completed", "Completed", "✓"),
]


def sidebar(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .selectors import sidebar_get

    return {
        "sidebar": SimpleLazyObject(lambda: sidebar_get(user=user)),
        "smart_views": SMART_VIEW_LINKS,
    }
