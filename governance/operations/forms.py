"""Input of the Operations page's writes."""

from django import forms

from registry_ui.validation import single_line


class SyncModelForm(forms.Form):
    model = forms.CharField(max_length=256, validators=[single_line])
