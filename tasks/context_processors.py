"""Template context for every page: the sidebar, computed only if a template shows it."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

#: Each smart view's icon in the sidebar.
SMART_VIEW_ICONS = {"today": "☀", "upcoming": "▦", "overdue": "!", "all": "≡", "completed": "✓"}


def sidebar(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .selectors import SmartView, sidebar_get

    return {
        "sidebar": SimpleLazyObject(lambda: sidebar_get(user=user)),
        "smart_views": [
            (view.value, view.label, SMART_VIEW_ICONS[view.value]) for view in SmartView
        ],
    }
