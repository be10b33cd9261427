"""The look and feel of a site's widget, validated. Stored as JSON on Site.theme.

Every field has a default, so a theme stored before a field existed stays valid and gets it.
The avatar and the privacy link are not here: they live on Site (an upload, a site setting)
and are added to the theme the widget API sends."""

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
    # Space between the widget and the corner of the page it sits in.
    padding_px: Annotated[int, Field(ge=0, le=120)] = 20
    # How long the bot "types" before each message, as Marketo's response delay.
    response_delay_ms: Annotated[int, Field(ge=0, le=5000)] = 600
    # A short tone (made by the widget with Web Audio, no file) when a bot message arrives.
    new_message_sound: bool = False


def default_theme() -> dict:
    return Theme().model_dump()
