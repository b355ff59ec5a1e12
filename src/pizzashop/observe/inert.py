"""Text from outside the shop (a customer's name, a key or value another producer wrote) made
inert before a log line or a terminal shows it: every character that is not printable is
written as its escape, so such text cannot forge a log line (`\\n`), move a terminal's
cursor or clear it (`\\x1b`), or reorder what follows it (`\\u202e`)."""

from __future__ import annotations


def inert(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(character: str) -> str:
    return character.encode("unicode_escape").decode("ascii")
