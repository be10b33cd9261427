"""When a dialogue shows itself on a page, validated. Stored as JSON on Dialogue.trigger.

Only "time on page" exists so far; the targeting issue adds time on site and scroll depth.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["time_on_page"] = "time_on_page"
    # 0 shows the dialogue as soon as the widget has loaded.
    seconds: Annotated[int, Field(ge=0, le=3600)] = 0
