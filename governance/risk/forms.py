"""Forms of model risk: parse input. Required values are checked by the services, after the permission
check, so someone who may not act learns that first and the message is the same on every entry point."""

from django import forms

from governance.risk import selectors
from governance.risk.models import Severity


class TierChangeForm(forms.Form):
    model = forms.CharField(max_length=256)
    tier = forms.ChoiceField(choices=(), required=False)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [(k, f"{v.get('label', k)}: {v.get('meaning', '')}")
                                       for k, v in selectors.tiers().items()]


class DecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False)


class FindingForm(forms.Form):
    model = forms.CharField(max_length=256)
    version = forms.IntegerField(min_value=1, required=False, help_text="Empty: the finding is on the model.")
    severity = forms.ChoiceField(choices=Severity.choices, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=8000, required=False)
    owner = forms.CharField(max_length=150, required=False)
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False)


class FindingNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=8000, required=False)
