from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from pydantic import ValidationError as SchemaError

from dialogues import services
from dialogues.flow.cards import FlowInvalid, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from dialogues.origins import origin_problem
from dialogues.theme import Theme
from dialogues.trigger import Trigger


def _schema_messages(exc: SchemaError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = ["name", "allowed_origins", "chat_enabled", "theme"]

    def clean_allowed_origins(self):
        origins = self.cleaned_data["allowed_origins"]
        if not isinstance(origins, list):
            raise ValidationError('A JSON list, e.g. ["https://www.example.com"].')
        problems = [p for p in map(origin_problem, origins) if p]
        if problems:
            raise ValidationError(problems)
        return [origin.rstrip("/") for origin in origins]

    def clean_theme(self):
        try:
            return Theme.model_validate(self.cleaned_data["theme"] or {}).model_dump()
        except SchemaError as exc:
            raise ValidationError(_schema_messages(exc)) from None


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    form = SiteForm
    list_display = ["name", "public_key", "chat_enabled"]
    readonly_fields = ["public_key"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # Whoever creates a site administers it, as with services.create_site(owner=...).
            services.add_member(site=obj, user=request.user, role=Membership.Role.ADMIN)

    inlines = [MembershipInline]


class DialogueForm(forms.ModelForm):
    class Meta:
        model = Dialogue
        fields = ["site", "name", "priority", "trigger", "flow"]

    def clean_flow(self):
        flow = self.cleaned_data["flow"]
        try:
            parse_flow(flow)
        except FlowInvalid as exc:
            raise ValidationError([f"{p.location}: {p.message}" for p in exc.problems]) from None
        return flow

    def clean_trigger(self):
        try:
            return Trigger.model_validate(self.cleaned_data["trigger"]).model_dump()
        except SchemaError as exc:
            raise ValidationError(_schema_messages(exc)) from None


@admin.register(Dialogue)
class DialogueAdmin(admin.ModelAdmin):
    form = DialogueForm
    list_display = ["name", "site", "status", "priority", "current_version"]
    list_filter = ["site", "status"]
    actions = ["publish", "unpublish"]

    @admin.action(description="Publish the draft as a new version")
    def publish(self, request, queryset):
        for dialogue in queryset:
            try:
                version = services.publish_dialogue(dialogue_id=dialogue.pk, user=request.user)
            except FlowInvalid as exc:
                self.message_user(request, f"{dialogue}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Published {version}.")

    @admin.action(description="Unpublish")
    def unpublish(self, request, queryset):
        for dialogue in queryset:
            services.unpublish_dialogue(dialogue_id=dialogue.pk)
        self.message_user(request, f"Unpublished {queryset.count()} dialogue(s).")


@admin.register(DialogueVersion)
class DialogueVersionAdmin(admin.ModelAdmin):
    list_display = ["dialogue", "number", "published_at", "published_by"]
    readonly_fields = ["dialogue", "number", "flow", "published_at", "published_by"]

    def has_add_permission(self, request):
        return False  # versions are made by publishing, never by hand
