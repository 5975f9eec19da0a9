"""Forms of the notify pages: parse what a person typed; the services decide the rest."""

from django import forms

from governance.notify.models import EventKind, MailKind, Subscription
from registry_ui.validation import SingleLineField, max_length_of

NAME_MAX = max_length_of(Subscription, "name")
URL_MAX = max_length_of(Subscription, "url")
MODEL_MAX = max_length_of(Subscription, "model_name")


class SubscriptionForm(forms.Form):
    name = SingleLineField(max_length=NAME_MAX)
    url = forms.URLField(max_length=URL_MAX, assume_scheme="https")
    kinds = forms.MultipleChoiceField(choices=EventKind.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple,
                                      help_text="None ticked: every kind.")
    model_name = SingleLineField(max_length=MODEL_MAX, required=False, label="Only this model (optional)")
    slack = forms.BooleanField(required=False, label='Slack-compatible body ({"text": ...})')
    active = forms.BooleanField(required=False, initial=True)

    def values(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("name", "url", "kinds", "model_name", "slack", "active")}


class SubscriptionEditForm(SubscriptionForm):
    rotate_secret = forms.BooleanField(required=False, label="Generate a new secret (shown once)")


class PreferencesForm(forms.Form):
    enabled = forms.MultipleChoiceField(choices=MailKind.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                        label="Send me mail when")

    def muted(self) -> list[str]:
        return sorted(set(MailKind.values) - set(self.cleaned_data["enabled"]))


class WatchForm(forms.Form):
    model = SingleLineField(max_length=max_length_of(Subscription, "model_name"))
    watch = forms.TypedChoiceField(choices=[("1", "watch"), ("0", "stop watching")], coerce=lambda v: v == "1")
