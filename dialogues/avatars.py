"""Checking an uploaded bot avatar before it is stored and served to every visitor.

The bytes decide, not the file name or the browser's declared type: the image must decode as
PNG, JPEG or WebP, within a size and dimension budget that keeps it cheap to serve from the
database. Needs no Django.
"""

import io
import warnings

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 256 * 1024
MIN_SIDE = 32
MAX_SIDE = 1024
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class AvatarInvalid(ValueError):
    """The upload cannot be an avatar; the message says why, for the marketer."""


def avatar_content_type(data: bytes) -> str:
    """The content type of a valid avatar ("image/png", ...). Raises AvatarInvalid."""
    if len(data) > MAX_BYTES:
        raise AvatarInvalid(
            f"The image is {len(data) // 1024} KB; the limit is {MAX_BYTES // 1024} KB."
        )
    if not data:
        raise AvatarInvalid("The file is empty.")
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES)) as image:
                kind, (width, height) = image.format, image.size
                if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                    raise AvatarInvalid(
                        f"The image is {width}x{height} pixels; use between {MIN_SIDE} and "
                        f"{MAX_SIDE} pixels a side (a square of 128 to 256 looks best)."
                    )
                # Decode every pixel: a file that only starts like an image fails here.
                image.load()
    except AvatarInvalid:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise AvatarInvalid("This file is not a PNG, JPEG or WebP image.") from None
    except (OSError, SyntaxError, ValueError):
        raise AvatarInvalid("This image is damaged or incomplete and cannot be shown.") from None
    return CONTENT_TYPES[kind]
