"""Forms of the promotion pages: the one parser of what a user typed; the services decide the rest.

Limits come from the model fields; an invalid form reaches no service, so it changes nothing.
"""


from django import forms

from governance.workflow.models import (
    OPERATION_NOT_REQUESTABLE,
    REQUESTED_OPERATIONS,
    Operation,
    PromotionRequest,
)
from governance.workflow.policies import STAGE_TARGETS, target_alias_problem
from registry_ui.validation import (
    MultiLineField,
    SingleLineField,
    length_hint,
    max_length_of,
    max_value_of,
)

# Justifications and comments are TextFields (no database limit): this is the product's limit, the
# same on the pages and the API, so what one door accepts the other does too.
TEXT_MAX_LENGTH = 5000
MODEL_NAME_MAX_LENGTH = max_length_of(PromotionRequest, "model_name")
ALIAS_MAX_LENGTH = max_length_of(PromotionRequest, "target_alias")
VERSION_MAX = max_value_of(PromotionRequest, "version")
ROLLBACK_TARGET_MAX_LENGTH = len("alias:") + ALIAS_MAX_LENGTH
REQUESTER_MAX_LENGTH = max_length_of(PromotionRequest, "requester_username")

REJECT_NEEDS_COMMENT = "Rejecting needs a comment that says why."
OVERRIDE_NEEDS_COMMENT = "An override needs a comment that says why."


def alias_problem(alias: str) -> str:
    """Why `alias` cannot be a promotion target ('' when it can): the rule the service enforces."""
    return target_alias_problem(alias)


def _justification() -> MultiLineField:
    return MultiLineField(max_length=TEXT_MAX_LENGTH, error_messages={"required": "A justification is required."})


NEW_ALIAS = "new"


class RequestForm(forms.Form):
    """The request page's pickers post `target_choice` ("stage:Production", "alias:champion" or "new" with
    the name in target_alias); a client may post target_kind + target_stage/target_alias instead."""

    model = SingleLineField(max_length=MODEL_NAME_MAX_LENGTH)
    version = forms.IntegerField(min_value=1, max_value=VERSION_MAX)
    operation = forms.ChoiceField(
        choices=[(op.value, op.label) for op in REQUESTED_OPERATIONS], initial=Operation.MOVE, required=False,
        error_messages={"invalid_choice": OPERATION_NOT_REQUESTABLE.replace("{operation!r}", "'%(value)s'")})
    target_choice = forms.CharField(max_length=ROLLBACK_TARGET_MAX_LENGTH, required=False)
    target_kind = forms.ChoiceField(choices=[("stage", "Stage"), ("alias", "Alias")], initial="alias", required=False)
    target_stage = forms.ChoiceField(choices=[("", "—")] + [(s, s) for s in STAGE_TARGETS], required=False)
    # strip=False: "champion " is refused with a message, not quietly trimmed into a protected name.
    target_alias = SingleLineField(max_length=ALIAS_MAX_LENGTH, required=False, strip=False)
    archive_existing = forms.BooleanField(required=False, label="Archive the versions now in that stage")
    justification = _justification()

    def clean(self):
        data = super().clean()
        data["operation"] = data.get("operation") or Operation.MOVE
        if data["operation"] == Operation.DELETE:
            return data  # a deletion names only the version
        if data["operation"] == Operation.REMOVE_ALIAS:
            data["target_kind"] = "alias"
        choice = data.get("target_choice") or ""
        if choice == NEW_ALIAS:
            data["target_kind"] = "alias"
        elif choice:
            kind, sep, name = choice.partition(":")
            if not sep or kind not in ("stage", "alias") or (kind == "stage" and name not in STAGE_TARGETS):
                self.add_error("target_choice", "Choose a stage or an alias from the list.")
                return data
            data["target_kind"] = kind
            data["target_stage" if kind == "stage" else "target_alias"] = name
            self.errors.pop("target_alias" if kind == "alias" else "target_stage", None)
        kind = data.get("target_kind")
        if not kind and "target_choice" not in self.errors:
            self.add_error("target_choice", "Choose the target: a stage or an alias.")
        if kind == "stage" and not data.get("target_stage") and "target_stage" not in self.errors:
            self.add_error("target_stage", "Choose the stage to promote to.")
        if kind == "alias" and "target_alias" not in self.errors:
            alias = data.get("target_alias", "")
            if not alias:
                self.add_error("target_alias", "Name the alias to promote to.")
            elif problem := alias_problem(alias):
                self.add_error("target_alias", problem)
        return data

    def target(self) -> dict:
        data = self.cleaned_data
        if data["operation"] == Operation.DELETE:
            return {"target_stage": "", "target_alias": "", "operation": Operation.DELETE}
        if data["operation"] == Operation.REMOVE_ALIAS:
            return {"target_stage": "", "target_alias": data["target_alias"], "operation": Operation.REMOVE_ALIAS}
        if data["target_kind"] == "stage":
            return {"target_stage": data["target_stage"], "target_alias": ""}
        return {"target_stage": "", "target_alias": data["target_alias"]}


class RollbackForm(forms.Form):
    model = SingleLineField(max_length=MODEL_NAME_MAX_LENGTH)
    target = SingleLineField(max_length=ROLLBACK_TARGET_MAX_LENGTH,
                             help_text=f"stage:Production or alias:champion. {length_hint(ROLLBACK_TARGET_MAX_LENGTH)}")
    urgent = forms.BooleanField(required=False, label="Urgent (one approval suffices; separation of duties stays)")
    justification = _justification()

    def clean_target(self) -> str:
        kind, sep, name = self.cleaned_data["target"].partition(":")
        if not sep or kind not in ("stage", "alias"):
            raise forms.ValidationError("Write the target as stage:<stage> or alias:<alias>.")
        if kind == "stage" and name not in STAGE_TARGETS:
            raise forms.ValidationError(f"Unknown stage {name!r}; choose one of {', '.join(STAGE_TARGETS)}.")
        if kind == "alias" and (problem := alias_problem(name)):
            raise forms.ValidationError(problem)
        return f"{kind}:{name}"

    def target_kwargs(self) -> dict:
        kind, _, name = self.cleaned_data["target"].partition(":")
        return {"target_stage": name} if kind == "stage" else {"target_alias": name}


class TransitionForm(forms.Form):
    """The comment (and approve's override) of approve/reject/cancel/deploy. `action` says which, so
    a reject without a reason is refused here, next to the field, before anything happens."""

    comment = MultiLineField(max_length=TEXT_MAX_LENGTH, rows=2, required=False)
    override = forms.BooleanField(required=False)

    def __init__(self, *args, action: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action

    def clean(self):
        data = super().clean()
        if "comment" in self.errors:
            return data
        comment = data.get("comment", "")
        if self.action == "reject" and not comment:
            self.add_error("comment", REJECT_NEEDS_COMMENT)
        if self.action == "review" and not comment:
            self.add_error("comment", "Closing a review needs a comment: what was found.")
        if self.action == "approve" and data.get("override") and not comment:
            self.add_error("comment", OVERRIDE_NEEDS_COMMENT)
        return data

    def service_kwargs(self) -> dict:
        kwargs = {"comment": self.cleaned_data["comment"]}
        if self.action == "approve":
            kwargs["override"] = self.cleaned_data["override"]
        return kwargs


class RequestListForm(forms.Form):
    """The paging of the request list page (GET); its filters are the API's (filters.RequestFilterSet)."""

    page = forms.IntegerField(min_value=1, required=False)


class RetentionForm(forms.Form):
    """The model a retention dry run or proposal is about (GET and POST)."""

    model = SingleLineField(max_length=MODEL_NAME_MAX_LENGTH)


class BreakGlassForm(RollbackForm):
    """Break-glass: the target (as in a rollback), a version unless rolling back, the mandatory reason."""

    version = forms.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)
    rollback = forms.BooleanField(required=False, label="Roll back (put the previous holder back)")
    reason = MultiLineField(max_length=TEXT_MAX_LENGTH, error_messages={"required": "A reason is required."})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("urgent", "justification"):
            del self.fields[name]

    def clean(self):
        data = super().clean()
        if not data.get("rollback") and data.get("version") is None and "version" not in self.errors:
            self.add_error("version", "Name the version to deploy (or tick roll back).")
        return data


def _target_kwargs(value: str) -> dict:
    kind, _, name = value.partition(":")
    return {"target_stage": name} if kind == "stage" else {"target_alias": name}


class TimeMachineForm(forms.Form):
    """What held a target at a time: model, target (stage:Production or alias:champion), date-time (UTC)."""

    model = SingleLineField(max_length=MODEL_NAME_MAX_LENGTH)
    target = SingleLineField(max_length=ROLLBACK_TARGET_MAX_LENGTH, initial="alias:champion")
    at = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                             help_text="UTC")

    clean_target = RollbackForm.clean_target

    def target_kwargs(self) -> dict:
        return _target_kwargs(self.cleaned_data["target"])


class RecertifyForm(forms.Form):
    """An approver re-certifies one protected holder: model, version, target ("Production" / "@alias")."""

    model_name = SingleLineField(max_length=MODEL_NAME_MAX_LENGTH)
    version = forms.IntegerField(min_value=1, max_value=VERSION_MAX)
    target = SingleLineField(max_length=ROLLBACK_TARGET_MAX_LENGTH)
    comment = MultiLineField(max_length=TEXT_MAX_LENGTH, rows=2,
                             error_messages={"required": "Re-certifying needs a comment: what was checked."})
