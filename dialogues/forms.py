from django import forms

from dialogues.starters import STARTERS


class NewDialogueForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, label="Name")
    starter = forms.ChoiceField(
        choices=[(key, label) for key, (label, _flow) in STARTERS.items()],
        initial="blank",
        label="Start from",
    )
