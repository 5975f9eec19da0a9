"""Forms of model cards: a textarea per section of the card (the tier's template and any section the
card already has), the decision comment. The services check every value."""

from django import forms

from governance.cards.text import MAX_SECTION_CHARS


class CardForm(forms.Form):
    base_revision = forms.IntegerField(required=False, widget=forms.HiddenInput)
    comment = forms.CharField(max_length=2000, required=False, label="What changed and why",
                              widget=forms.TextInput)

    def __init__(self, *args, sections: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.layout = sections
        for s in sections:
            self.fields[f"s_{s['key']}"] = forms.CharField(
                label=s["title"] + (" (required)" if s.get("required") else ""), required=False,
                max_length=MAX_SECTION_CHARS + 1000, help_text=s.get("guidance", ""),
                widget=forms.Textarea(attrs={"rows": 5}))

    def section_fields(self):
        return [self[f"s_{s['key']}"] for s in self.layout]

    def sections(self) -> dict[str, str]:
        return {s["key"]: self.cleaned_data.get(f"s_{s['key']}") or "" for s in self.layout}


class DecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False)
