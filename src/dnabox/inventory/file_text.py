"""Read a fleet file's bytes as UTF-8 text, or say precisely why they are not.

YAML parsers accept UTF-16 and UTF-32 too, but a fleet file is read by shells, editors
and diff tools in CI as well: one encoding keeps every reader in agreement. A UTF-8
byte-order mark (what some Windows editors write) is accepted and dropped.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from dnabox.errors import InventoryError, Problem

# A 1,000-box fleet is 0.2-0.7 MB of YAML. The pure-Python parser (see yaml_bounds) reads
# about 300 KB/s, so this bounds a parse to about 15 s and keeps room for 6,000+ boxes.
MAX_BYTES = 4 * 1024 * 1024
_CHUNK = 1024 * 1024

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_FIELD = "(encoding)"


def read_text(path: Path) -> str:
    """The file's text; InventoryError naming the line of the first byte that is not text."""
    name = str(path)
    chunks: list[bytes] = []
    size = 0
    try:
        # In chunks, so /dev/zero or a named pipe stops at the limit too.
        with path.open("rb") as handle:
            while size <= MAX_BYTES and (chunk := handle.read(_CHUNK)):
                chunks.append(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InventoryError([Problem(name, 0, "(file)", f"cannot read: {exc.strerror}")]) from None
    if size > MAX_BYTES:
        raise InventoryError([Problem(
            name, 0, "(file)",
            f"larger than {MAX_BYTES // 2**20} MiB; a fleet file of 1,000 boxes is under 1 MB: "
            "is this the right file?")])
    return decode(name, b"".join(chunks))


def decode(name: str, raw: bytes) -> str:
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            raise _refused(name, 1, f"the file is {encoding} (it starts with a {encoding} "
                                    f"byte-order mark); save it as UTF-8, e.g. "
                                    f"iconv -f {encoding} -t UTF-8")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    nul = raw.find(b"\x00")
    if nul >= 0:
        if _looks_wide(raw):
            raise _refused(name, 1, "the file looks like UTF-16 without a byte-order mark "
                                    "(every other byte is NUL); save it as UTF-8")
        line, column = _position(raw, nul)
        raise _refused(name, line, f"a NUL byte at column {column}: a fleet file is text, "
                                   "and this one is binary or corrupt")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(raw, exc.start)
        raise _refused(
            name, line,
            f"byte 0x{raw[exc.start]:02X} at column {column} is not UTF-8 (Latin-1 or "
            "Windows-1252 text?); save the file as UTF-8, e.g. iconv -f LATIN1 -t UTF-8",
        ) from None


def _looks_wide(raw: bytes) -> bool:
    """UTF-16 without a BOM: ASCII text with a NUL beside every character."""
    head = raw[:200]
    return len(head) >= 4 and (head[1::2].count(0) > len(head) // 4 or
                               head[0::2].count(0) > len(head) // 4)


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset``."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - start + 1


def _refused(name: str, line: int, message: str) -> InventoryError:
    return InventoryError([Problem(name, line, _FIELD, message)])
