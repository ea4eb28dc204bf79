"""Forms of the webhooks section of the settings page, and what that section shows."""

from __future__ import annotations

from typing import Any

from django import forms

from . import selectors
from .models import EVENT_TYPE_CHOICES, ReminderChannel


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        help_text="Where events are POSTed: https://, never a private or local address.",
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(t, t) for t in EVENT_TYPE_CHOICES],
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENT_TYPE_CHOICES),
    )
    description = forms.CharField(label="Description", max_length=200, required=False)


class ReminderChannelsForm(forms.Form):
    channel = forms.ChoiceField(
        label="Send my reminders by",
        choices=ReminderChannel.choices,
        widget=forms.RadioSelect,
        help_text="Webhook: to your webhooks that want <code>reminder.due</code>.",
    )
    ntfy_url = forms.URLField(
        label="ntfy topic URL",
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text="Also push each reminder to an ntfy topic, e.g. https://ntfy.sh/your-topic "
        "(pick a hard-to-guess topic name). Empty: no push.",
    )


def settings_section(
    user,
    *,
    webhook_form: WebhookForm | None = None,
    channels_form: ReminderChannelsForm | None = None,
    new_webhook: Any = None,
) -> dict[str, Any]:
    """The webhooks section's context: the user's endpoints, the forms, a new secret, the
    ntfy topic (its delivery log is linked)."""
    channels = selectors.reminder_channels(user=user)
    return {
        "webhooks": list(selectors.endpoint_list(user=user)),
        "webhook_form": webhook_form or WebhookForm(),
        "channels_form": channels_form or ReminderChannelsForm(initial=channels),
        "ntfy_topic": selectors.ntfy_topic_get(user=user) if channels["ntfy_url"] else None,
        "new_webhook": new_webhook,
    }
