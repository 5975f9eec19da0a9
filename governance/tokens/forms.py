"""The Tokens page's form (limits read from the model)."""

from django import forms

from governance.tokens.models import TokenScope
from governance.tokens.services import MAX_TTL_DAYS, NAME_MAX_LENGTH
from registry_ui.validation import SingleLineField


class TokenForm(forms.Form):
    name = SingleLineField(max_length=NAME_MAX_LENGTH, help_text="What uses it, e.g. ci-fraud-training.")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    ttl_days = forms.IntegerField(min_value=1, max_value=MAX_TTL_DAYS, initial=90, label="Expires in (days)")
