"""Forms of the account pages. They validate with the same rules and wording as the API."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from ..models import validate_supported_timezone


class SignupForm(UserCreationForm):
    """Username, e-mail and a password typed twice; the user is created by the service."""

    email = forms.EmailField(
        label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password2"].label = "Password (again)"

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if self._meta.model.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("This username is taken.", code="unique")
        return username

    def _post_clean(self) -> None:
        # Django reports a weak password under the confirmation; it belongs beside the
        # first password field (the API's ``password``).
        forms.ModelForm._post_clean(self)
        self.validate_password_for_user(self.instance, password_field_name="password1")


class SettingsForm(forms.Form):
    email = forms.EmailField(
        label="E-mail",
        required=False,
        max_length=254,
        help_text="Reminders and password-reset links are sent here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        validators=[validate_supported_timezone],
        help_text="Start typing a city, e.g. Europe/Paris or America/New_York.",
        widget=forms.TextInput(
            attrs={"list": "timezone-options", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    reminders_enabled = forms.BooleanField(
        label="Send me reminder e-mails",
        required=False,
        help_text="Off: no reminder e-mails, whatever each task says.",
    )
