"""A draft's problems, with what this installation knows: the Django side of
dialogues/flow/checks.py (which fields the Marketo sync brings in)."""

from dialogues.flow.checks import flow_problems
from dialogues.flow.graph import FlowProblem
from marketo_sync.models import SyncSettings


def draft_problems(flow: object) -> list[FlowProblem]:
    """Everything that stops `flow` from being published (empty: it can be)."""
    # The one settings row (pk=1, see SyncSettings.load), read without creating it: a page
    # view should not write.
    sync = SyncSettings.objects.filter(pk=1).first() or SyncSettings()
    return flow_problems(
        flow, person_fields=sync.lead_fields(), company_fields=sync.all_company_fields()
    )
