"""What a marketer does in the flow editor, for browser tests: sign in, create a dialogue, add a
card of a type, fill a card's form and save it, read the problems shown next to a card.

Cards are named by id (the editor makes them readable: "question-1"); form fields by their
posted names ("text", "next", "choice-0-label", "rule-0-cond-0-operator"), because rows repeat
their labels. Import it from other browser tests to continue a story (preview, publish, the
visitor seeing the dialogue on a host page)."""

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD


class FlowEditor:
    def __init__(self, page: Page, base_url: str):
        self.page, self.base_url = page, base_url
        self.cards = page.locator("ol.flow-cards > li.flow-card")

    # --- getting there -------------------------------------------------------------------------

    def sign_in(self, username: str, password: str = PASSWORD) -> "FlowEditor":
        self.page.goto(f"{self.base_url}/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()
        return self

    def create_dialogue(self, site, name: str, starter: str = "Blank") -> "FlowEditor":
        """From the site's dialogue list, create a draft and open its editor."""
        self.page.goto(f"{self.base_url}/sites/{site.pk}/dialogues/")
        self.page.get_by_label("Name").fill(name)
        self.page.get_by_label("Start from").select_option(label=starter)
        self.page.get_by_role("button", name="Create draft").click()
        self.page.get_by_role("link", name=name, exact=True).click()
        self.page.get_by_role("link", name="Edit the flow").click()
        expect(self.page.get_by_role("heading", name=f"Edit the flow of {name}")).to_be_visible()
        return self

    # --- cards ---------------------------------------------------------------------------------

    def card(self, card_id: str):
        return self.page.locator(f"#card-{card_id}")

    def card_ids(self) -> list[str]:
        return [element.get_attribute("id").removeprefix("card-") for element in self.cards.all()]

    def add_card(self, card_type: str, *, after: str | None = None) -> str:
        """Add a card of `card_type` ("message", "question", ...) at the end or after a card;
        returns the new card's id."""
        before = self.card_ids()
        if after is None:
            self.page.get_by_label("Add a card at the end").select_option(card_type)
            self.page.get_by_role("button", name="Add card", exact=True).click()
        else:
            self.card(after).get_by_label(f"Type of card to add after {after}").select_option(
                card_type
            )
            self.card(after).get_by_role("button", name=f"Add a card after {after}").click()
        expect(self.cards).to_have_count(len(before) + 1)
        (added,) = set(self.card_ids()) - set(before)
        return added

    def edit(self, card_id: str):
        """Open the card's form in place; returns the form."""
        self.card(card_id).get_by_role("link", name=f"Edit card {card_id}").click()
        form = self.card(card_id).locator("form")
        expect(form.get_by_role("button", name="Save card")).to_be_visible()
        return form

    def press(self, card_id: str, button: str):
        """A button in the card's open form that changes its rows ("Add a choice", ...)."""
        self.card(card_id).get_by_role("button", name=button, exact=True).click()

    def fill(self, card_id: str, fields: dict) -> None:
        """Fill the open form of a card: posted field name -> value (a select's option value,
        True/False for a checkbox, text otherwise)."""
        form = self.card(card_id).locator("form")
        for name, value in fields.items():
            field = form.locator(f'[name="{name}"]')
            kind = field.evaluate("element => element.tagName + ':' + (element.type || '')")
            if kind.startswith("SELECT"):
                field.select_option(value)
            elif kind == "INPUT:checkbox":
                field.set_checked(bool(value))
            else:
                field.fill(value)

    def save(self, card_id: str) -> None:
        self.card(card_id).get_by_role("button", name="Save card").click()
        expect(self.card(card_id)).not_to_have_class("flow-card editing")
        expect(self.card(card_id).get_by_role("link", name=f"Edit card {card_id}")).to_be_visible()

    def fill_card(self, card_id: str, fields: dict) -> None:
        """Open, fill and save a card in one go."""
        self.edit(card_id)
        self.fill(card_id, fields)
        self.save(card_id)

    def delete(self, card_id: str) -> None:
        self.card(card_id).get_by_role("button", name=f"Delete card {card_id}").click()
        expect(self.card(card_id)).to_have_count(0)

    def undo(self) -> None:
        self.page.get_by_role("button", name="Undo").click()

    # --- problems and publishing ---------------------------------------------------------------

    def problems(self, card_id: str):
        """The problems list shown next to a card."""
        return self.card(card_id).get_by_role("list", name=f"Problems with card {card_id}")

    def publish(self) -> None:
        self.page.get_by_role("button", name="Publish the draft").click()
