"""python manage.py erase_person EMAIL [--site ID] [--reference TEXT] [--yes]

Erase everything DynChat holds about one person (reports.erasure), on every site or on one
(--site). Shows what would be erased and asks before doing it, unless --yes (or --no-input)
is given. Marketo and the agents' calendars are not touched: see docs/retention.md."""

from django.core.management.base import BaseCommand, CommandError

from dialogues.models import Site
from reports import erasure


class Command(BaseCommand):
    help = "Erase a person (their visitors, conversations, outbox records...) by email."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--site", type=int, help="Only on this site (its id).")
        parser.add_argument(
            "--reference", default="", help="The privacy request's reference (a ticket number)."
        )
        parser.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            dest="interactive",
            action="store_false",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args, email, site, reference, interactive, **options):
        scope = None
        if site is not None:
            scope = Site.objects.filter(pk=site).first()
            if scope is None:
                raise CommandError(f"There is no site {site}.")
        try:
            preview = erasure.erasure_preview(email, site=scope)
        except erasure.InvalidErasure as exc:
            raise CommandError(str(exc)) from None
        where = f"site {scope.pk} ({scope.name})" if scope else "every site"
        self.stdout.write(f"On {where}, this would erase:")
        self._write_counts(preview.counts)
        if preview.upcoming_meetings:
            self.stderr.write(
                self.style.WARNING(
                    f"{preview.upcoming_meetings} booked meeting(s) with this person are still "
                    "to come: their calendar events and invitations keep the address. Cancel "
                    "them first if they will not take place."
                )
            )
        if interactive:
            try:
                answer = input("Erase this person? This cannot be undone. [y/N] ")
            except EOFError:  # no terminal to answer from (a pipe, cron): that is no "yes"
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing was erased (--yes erases without asking).")
        try:
            done = erasure.erase_person(
                email,
                site=scope,
                requested_by_name=erasure.COMMAND_NAME,
                reference=reference,
            )
        except erasure.InvalidErasure as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased: {erasure.describe(done.counts)}. Recorded as erasure {done.pk} "
                "(the address itself is not kept)."
            )
        )

    def _write_counts(self, counts: dict[str, int]) -> None:
        for kind, (_, plural) in erasure.KINDS.items():
            self.stdout.write(f"{plural:>28}: {counts[kind]}")
