"""{% site_nav site %}: the links between a site's pages, for whoever is looking.

A tag rather than a context variable so that every site page (the dialogue list included)
shows the same links without each view having to work out the user's role."""

from django import template

from dialogues.access import ADMIN_ONLY, has_role

register = template.Library()


@register.inclusion_tag("dialogues/_site_nav.html", takes_context=True)
def site_nav(context, site):
    request = context["request"]
    return {
        "site": site,
        "site_admin": has_role(request.user, site, ADMIN_ONLY),
        # Namespaced for the reports app, whose page names ("meetings") repeat others'.
        "current": _current(request.resolver_match),
    }


def _current(match) -> str:
    if match.namespace == "reports":
        return f"reports:{match.url_name}"
    return match.url_name
