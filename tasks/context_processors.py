"""Template context for every page: the sidebar and the live-updates position, each
computed only if a template shows it."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

#: Each smart view's icon in the sidebar.
SMART_VIEW_ICONS = {"today": "☀", "upcoming": "▦", "overdue": "!", "all": "≡", "completed": "✓"}


def sidebar(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from events.live import current_position

    from .selectors import SmartView, sidebar_get

    return {
        "sidebar": SimpleLazyObject(lambda: sidebar_get(user=user)),
        # Where the page's live stream starts: the last change the page already shows.
        "live_after": SimpleLazyObject(lambda: current_position(user.pk)[1] or "start"),
        "smart_views": [
            (view.value, view.label, SMART_VIEW_ICONS[view.value]) for view in SmartView
        ],
    }
