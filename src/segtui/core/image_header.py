"""An image's pixel size read from its header, before any pixel is decoded.

Pillow's `Image.open` is lazy: it parses the header (PNG IHDR, JPEG SOFn, BMP, TIFF's
first IFD, WebP's VP8/VP8L/VP8X) and stops. Checking the size there is what keeps a
decompression bomb (a 100-byte PNG claiming 40000×40000) from ever being allocated.
"""

from __future__ import annotations

import struct
import warnings
from typing import BinaryIO

from PIL import Image

#: The formats segtui reads (OpenCV decodes them); Pillow only parses their headers here.
HEADER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class HeaderError(Exception):
    """An image whose header is unreadable or claims too many pixels; the message says which."""


def header_size(file: BinaryIO, max_pixels: int) -> tuple[int, int]:
    """(width, height) as the header states them; HeaderError when unreadable or over `max_pixels`."""
    limit = f"over {max_pixels // 1_000_000} megapixels"
    start = file.read(24)
    file.seek(0)
    if start[:8] == PNG_SIGNATURE and start[12:16] == b"IHDR":
        # The PNG size sits at a fixed place: said even when the rest is cut off.
        width, height = struct.unpack(">II", start[16:24])
        if width * height > max_pixels:
            raise HeaderError(f"image too large by its header: {width}×{height} pixels ({limit})")
    try:
        with warnings.catch_warnings():
            # segtui applies its own limit below; Pillow's warning for sizes between its
            # limit and twice that would only be noise on the terminal.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file, formats=HEADER_FORMATS) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        # Pillow's own limit (about 179 MP) stopped it before the size was handed over.
        raise HeaderError(f"image too large by its header ({limit})") from exc
    except Exception as exc:
        # A malformed header can make a format plugin raise nearly anything
        # (SyntaxError, struct.error, ValueError, EOFError, OSError...): all mean the same.
        raise HeaderError("not a readable image (unrecognised or corrupt header)") from exc
    if width <= 0 or height <= 0:
        raise HeaderError(f"not a readable image (its header says {width}×{height} pixels)")
    if width * height > max_pixels:
        raise HeaderError(f"image too large by its header: {width}×{height} pixels ({limit})")
    return width, height
