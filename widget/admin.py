from django.contrib import admin

from widget.models import Conversation, TranscriptEntry


class TranscriptInline(admin.TabularInline):
    model = TranscriptEntry
    fields = ["seq", "author", "card_id", "text", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "site", "dialogue", "version", "status", "started_at"]
    list_filter = ["site", "status"]
    readonly_fields = [
        "site",
        "visitor",
        "dialogue",
        "version",
        "status",
        "state",
        "page_url",
        "started_at",
        "engaged_at",
        "completed_at",
    ]
    exclude = ["token_hash", "transcript_length"]
    inlines = [TranscriptInline]

    def has_add_permission(self, request):
        return False
