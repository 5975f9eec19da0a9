"""Query parameters of the registry pages, parsed by forms: a bad value is a 400 with the field's
message, never a filter silently dropped or cut short."""

from django import forms
from django.conf import settings

from registry_ui.mirror.models import ModelAlias, Stage
from registry_ui.pages.selectors import CatalogueFilters
from registry_ui.validation import FILTER_TEXT_MAX_LENGTH, SingleLineField, max_length_of


class CatalogueForm(forms.Form):
    q = SingleLineField(max_length=FILTER_TEXT_MAX_LENGTH, required=False, widget=forms.SearchInput(attrs={
        "placeholder": "name, description or tag", "autocomplete": "off"}))
    stage = forms.ChoiceField(choices=[("", "any"), *Stage.choices], required=False)
    # "@champion" and "champion" both name the alias: one more character than the alias itself.
    alias = SingleLineField(max_length=max_length_of(ModelAlias, "alias") + 1, required=False,
                            help_text="")  # a drop-down of the aliases in use: no limit to show
    tag = SingleLineField(max_length=FILTER_TEXT_MAX_LENGTH, required=False, widget=forms.TextInput(attrs={
        "placeholder": "team=risk"}))
    per_page = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
    page = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read when the form is built, so a test (or an operator) changing the setting is obeyed.
        self.fields["per_page"] = forms.IntegerField(min_value=1, max_value=settings.REGISTRY_MAX_PAGE_SIZE,
                                                     required=False, widget=forms.HiddenInput)

    def filters(self) -> CatalogueFilters:
        data = self.cleaned_data
        return CatalogueFilters(q=data["q"], stage=data["stage"], alias=data["alias"].lstrip("@"), tag=data["tag"])

    def page_size(self) -> int:
        return self.cleaned_data["per_page"] or settings.REGISTRY_CATALOGUE_PAGE_SIZE

    def page_number(self) -> int:
        return self.cleaned_data["page"] or 1
