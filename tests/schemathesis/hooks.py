"""Teaches Schemathesis what an image upload is, for Atelier's multipart forms.

The API document says the `image` and `mask` parts of `/api/edit` and `/api/describe` are
PNG, JPEG or WebP files. Schemathesis would otherwise send random bytes, which the server
rightly refuses as "not an image"; here it sends real PNGs instead: small, of one size (so a
mask always matches its image, as the document asks), in random colours, half of them
black-and-white as a mask is. Loaded through SCHEMATHESIS_HOOKS by the test
`api::schemathesis_finds_nothing_the_document_does_not_say`.
"""

import struct
import zlib

import schemathesis
from hypothesis import strategies as st

SIDE = 64


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(red: int, green: int, blue: int, split: bool) -> bytes:
    """A SIDE x SIDE RGB PNG: one colour, or (split) white on the left and black on the right."""
    rows = []
    for _ in range(SIDE):
        if split:
            pixels = b"\xff\xff\xff" * (SIDE // 2) + b"\x00\x00\x00" * (SIDE - SIDE // 2)
        else:
            pixels = bytes((red, green, blue)) * SIDE
        rows.append(b"\x00" + pixels)
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _chunk(b"IEND", b"")
    )


channel = st.integers(min_value=0, max_value=255)
schemathesis.openapi.media_type("image/png", st.builds(png, channel, channel, channel, st.booleans()))
