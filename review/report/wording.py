"""How the report words numbers and lists: percentages rounded as readers round, plurals,
p-values, lists joined with "and", a protocol's phrase at the start of a sentence or a
label inside one."""

from __future__ import annotations

import decimal
import math


def percent(value: float, digits: int = 1) -> str:
    """A percentage rounded half up, as readers round (62.5 → 63, not Python's 62)."""
    if value is None or math.isnan(value):
        return "not estimable"
    step = decimal.Decimal(1).scaleb(-digits)
    return f"{decimal.Decimal(repr(float(value))).quantize(step, decimal.ROUND_HALF_UP)}%"


def plural(count: int, word: str) -> str:
    """`word` for one, `word`s otherwise."""
    return word if count == 1 else f"{word}s"


def p_text(value: float) -> str:
    """A p-value as reports print it: three decimals, or "< 0.001"."""
    if value is None or math.isnan(value):
        return "not estimable"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def join_words(words: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def capitalised(phrase: str) -> str:
    """A protocol's phrase at the start of a sentence or a header: 'event-free' → 'Event-free'."""
    return phrase[:1].upper() + phrase[1:]


def in_sentence(label: str) -> str:
    """A protocol's label, written for a table, inside a sentence: 'Spine (any level)' →
    'spine (any level)'. A first word that is a code or an abbreviation ('T4', 'MRSA',
    'HbA1c') keeps its capitals."""
    first = label.split(" ", 1)[0]
    if any(character.isdigit() for character in first) or first[1:] != first[1:].lower():
        return label
    return label[:1].lower() + label[1:]
