"""Card templates in the admin: one per tier ('' = models without a tier), the sections as JSON. Saving
and deleting go through governance.cards.services (audited like every policy change); cards and their
revisions are read-only here (they change through their governed edit)."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from governance.cards import defaults
from governance.cards.models import CardRevision, CardTemplate, ModelCard
from governance.cards.services import card_template_reset, card_template_set, parse_template
from governance.errors import InvalidInput
from governance.risk.selectors import tiers
from registry_ui.client_ip import client_ip


class CardTemplateForm(forms.ModelForm):
    tier = forms.ChoiceField(choices=(), required=False)
    sections = forms.CharField(widget=forms.Textarea(attrs={"rows": 24, "cols": 90}),
                               help_text='A JSON list: {"key": "purpose", "title": "Purpose", "required": true, '
                                         '"guidance": "..."} per section, in order.')

    class Meta:
        model = CardTemplate
        fields = ["tier", "sections"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "Models without a tier")] + [(k, v.get("label", k))
                                                                        for k, v in tiers().items()]
        if self.instance.pk:
            self.fields["tier"].disabled = True
        value = self.initial.get("sections")
        if not isinstance(value, str):
            tier = self.initial.get("tier") or ""
            self.initial["sections"] = json.dumps(value or defaults.default_sections(tier), indent=2,
                                                  ensure_ascii=False)

    def clean_sections(self):
        try:
            return parse_template(self.cleaned_data["sections"])
        except InvalidInput as exc:
            raise ValidationError(exc.detail) from None


@admin.register(CardTemplate)
class CardTemplateAdmin(admin.ModelAdmin):
    form = CardTemplateForm
    list_display = ["__str__", "required_sections", "updated_by", "updated_at"]

    @admin.display(description="Required sections")
    def required_sections(self, obj) -> str:
        return ", ".join(s["title"] for s in obj.sections if s.get("required"))

    def save_model(self, request, obj, form, change):
        saved = card_template_set(actor=request.user, tier=form.cleaned_data["tier"] if not change else obj.tier,
                                  sections=form.cleaned_data["sections"], source_ip=client_ip(request))
        obj.pk = saved.pk  # what the admin's LogEntry and redirect read

    def delete_model(self, request, obj):
        card_template_reset(actor=request.user, tier=obj.tier, source_ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            card_template_reset(actor=request.user, tier=obj.tier, source_ip=client_ip(request))


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ModelCard)
class ModelCardAdmin(_ReadOnly):
    list_display = ["model", "version", "current", "created_at"]


@admin.register(CardRevision)
class CardRevisionAdmin(_ReadOnly):
    list_display = ["pk", "card", "number", "state", "author_username", "decided_by", "publish_state", "created_at"]
    list_filter = ["state", "publish_state"]
