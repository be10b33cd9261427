"""The look and feel of a site's widget, validated. Stored as JSON on Site.theme."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"


class Theme(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_name: Annotated[str, Field(min_length=1, max_length=40)] = "DynChat"
    header: Annotated[str, Field(max_length=80)] = "Chat with us"
    primary_color: Annotated[str, Field(pattern=HEX_COLOR)] = "#2457d6"
    text_color: Annotated[str, Field(pattern=HEX_COLOR)] = "#ffffff"
    # A CSS font-family list; only letters, digits, spaces, commas, quotes and dashes.
    font_family: Annotated[str, Field(max_length=120, pattern=r"^[\w ,'\"-]+$")] = (
        "system-ui, sans-serif"
    )
    position: Literal["right", "left"] = "right"
    # How long the bot "types" before each message, as Marketo's response delay.
    response_delay_ms: Annotated[int, Field(ge=0, le=5000)] = 600


def default_theme() -> dict:
    return Theme().model_dump()
