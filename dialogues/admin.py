from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from dialogues import services
from dialogues.flow.cards import FlowInvalid, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Membership, Site


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "public_key", "chat_enabled"]
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
