"""Forms of the promotion pages: they parse input; the services decide."""

from django import forms

from governance.workflow.policies import STAGE_TARGETS


class RequestForm(forms.Form):
    model = forms.CharField(max_length=256)
    version = forms.IntegerField(min_value=1)
    target_kind = forms.ChoiceField(choices=[("stage", "Stage"), ("alias", "Alias")], initial="alias")
    target_stage = forms.ChoiceField(choices=[("", "—")] + [(s, s) for s in STAGE_TARGETS], required=False)
    target_alias = forms.CharField(max_length=256, required=False, initial="champion")
    archive_existing = forms.BooleanField(required=False, label="Archive the versions now in that stage")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)

    def target(self) -> dict:
        data = self.cleaned_data
        if data["target_kind"] == "stage":
            return {"target_stage": data["target_stage"], "target_alias": ""}
        return {"target_stage": "", "target_alias": data["target_alias"]}


class RollbackForm(forms.Form):
    model = forms.CharField(max_length=256)
    target = forms.CharField(max_length=260, help_text="stage:Production or alias:champion")
    urgent = forms.BooleanField(required=False, label="Urgent (one approval suffices; separation of duties stays)")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)

    def target_kwargs(self) -> dict:
        kind, _, name = self.cleaned_data["target"].partition(":")
        return {"target_stage": name} if kind == "stage" else {"target_alias": name}


class TransitionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)
    override = forms.BooleanField(required=False)
