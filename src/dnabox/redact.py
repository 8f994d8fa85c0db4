"""How an error message may show a value someone wrote: the one home for redaction.

Fleet files are read in everyone's CI, and their errors end up in CI logs. An operator
who pasted a private key, a public key line or an API token into the wrong field must
not see it printed back, so every error path shows user-written values through
:func:`shown`: key material and token-like strings become their kind and length, and
anything long becomes a short prefix and its length.
"""

from __future__ import annotations

import re

# Values up to this length are shown whole (when nothing in them looks secret); longer
# ones show only this many leading characters.
SHORT = 40
PREFIX = 16

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_OPENSSH = re.compile(
    r"(ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d{3}|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)"
    r"@openssh\.com)(?:-cert-v01@openssh\.com)?\s+AAAA"
)
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d")
# A run of base64 / base64url characters: tokens, key bodies, secrets. '-' and '.' are
# left out so DNS-style names and file names are not taken for tokens.
_RUN = re.compile(r"[A-Za-z0-9+/=_]{20,}")
_HEX = re.compile(r"[0-9A-Fa-f]{32,}")
# A whole value that is nothing but base64 (a key body pasted without its header).
_BLOB = re.compile(r"[A-Za-z0-9+/=\s]{64,}")


def secret_kind(text: str) -> str | None:
    """What secret-looking thing ``text`` holds (``None``: nothing that looks secret)."""
    pem = _PEM.search(text)
    if pem:
        return f"PEM block {pem.group(1)!r}"
    ssh = _OPENSSH.search(text)
    if ssh:
        return f"OpenSSH key ({ssh.group(1)})"
    if _PUTTY.search(text):
        return "PuTTY key"
    for run in _RUN.findall(text):
        if _mixed(run):
            return "token-like string"
    if _HEX.search(text):
        return "long hex string"
    return None


def key_material(text: str) -> str | None:
    """The kind of key material ``text`` is, when it is a key rather than a path to one."""
    kind = secret_kind(text)
    if kind and not kind.startswith(("token", "long hex")):
        return kind
    if _BLOB.fullmatch(text.strip()) and _mixed(text):
        return "base64 data"
    return None


def _mixed(run: str) -> bool:
    """Upper- and lower-case letters and digits together: random data, not a word."""
    return (any(c.isdigit() for c in run) and any(c.islower() for c in run)
            and any(c.isupper() for c in run))


def shown(value: object, *, quote: bool = True) -> str:
    """``value`` as an error message may show it.

    Secret-looking text becomes ``<kind, N characters>``; text longer than ``SHORT``
    becomes its first ``PREFIX`` characters and its length; control characters are
    escaped. ``quote=False`` leaves plain, short text unquoted (a key in a field path).
    """
    is_text = isinstance(value, str)
    text = value if isinstance(value, str) else repr(value)
    kind = secret_kind(text)
    if kind is not None:
        return f"<{kind}, {len(text)} characters>"
    if len(text) > SHORT:
        return f"{text[:PREFIX]!r}... ({len(text)} characters)"
    if is_text and (quote or not text.isprintable()):
        return repr(text)
    return text
