"""When a dialogue shows itself on a page, validated. Stored as JSON on Dialogue.trigger.

Marketo's three behaviours: time on the page, time on the site (counted by the widget from the
visitor's first page view), and how far down the page the visitor scrolled. The widget applies
them; a visitor who met a dialogue's trigger before sees it at once on their next page.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = {
    "time_on_page": "Time on page",
    "time_on_site": "Time on site",
    "scroll_depth": "Scroll depth",
}


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["time_on_page", "time_on_site", "scroll_depth"] = "time_on_page"
    # For the two times; 0 shows the dialogue as soon as the widget has loaded.
    seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    # For scroll depth: the share of the page, in percent, the visitor has seen.
    percent: Annotated[int, Field(ge=0, le=100)] = 0

    @model_validator(mode="after")
    def _one_measure(self) -> "Trigger":
        if self.type == "scroll_depth" and self.seconds:
            raise ValueError("a scroll depth trigger is measured in percent, not seconds")
        if self.type != "scroll_depth" and self.percent:
            raise ValueError("a time trigger is measured in seconds, not percent")
        return self
