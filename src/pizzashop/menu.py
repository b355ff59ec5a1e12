"""The one menu every part of the shop reads: the web form, the CLI, the validation; and the
shop's rules for an order, which the command side and the kitchen both apply."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from pizzashop.config import Settings
from pizzashop.contract import Order

SAUCES: tuple[str, ...] = ("Tomato", "Organic tomato", "Pesto", "Marinara", "Buffalo", "Hummus")
CHEESES: tuple[str, ...] = ("Mozzarella", "Provolone", "Cheddar", "Ricotta", "Gouda", "Gruyere")
MAIN_TOPPINGS: tuple[str, ...] = (
    "Pepperoni",
    "Sausage",
    "Chicken",
    "Pork",
    "Minced meat",
    "Vegan meat",
)
EXTRA_TOPPINGS: tuple[str, ...] = (
    "Mushroom",
    "Onion",
    "Eggs",
    "Black olives",
    "Green pepper",
    "Fresh garlic",
)

INGREDIENTS: tuple[str, ...] = (*SAUCES, *CHEESES, *MAIN_TOPPINGS, *EXTRA_TOPPINGS)
MAX_EXTRA_TOPPINGS = len(EXTRA_TOPPINGS)
MAX_NAME_LENGTH = 40

# Characters a name may not hold: control (Cc: NUL, newline, ESC), format (Cf: zero-width
# spaces, right-to-left overrides) and lone surrogates (Cs), which forge log lines, move
# terminals' cursors, hide or reorder text, or cannot be encoded at all.
UNFIT_IN_NAMES = frozenset({"Cc", "Cf", "Cs"})


def _name_problem(name: str) -> str | None:
    if any(unicodedata.category(c) in UNFIT_IN_NAMES for c in name):
        return "control characters, invisible formatting and lone surrogates are not allowed"
    if not any(c.isprintable() and not c.isspace() for c in name):
        return "a name is required (something visible)"
    if len(name) > MAX_NAME_LENGTH:
        return f"at most {MAX_NAME_LENGTH} characters"
    return None


def menu_errors(order: Order) -> dict[str, str]:
    """What is wrong with an order by the shop's rules, by field. Empty when it is fine."""
    errors: dict[str, str] = {}
    name_problem = _name_problem(order.name)
    if name_problem:
        errors["name"] = name_problem
    for field_name, choices in (
        ("sauce", SAUCES),
        ("cheese", CHEESES),
        ("main_topping", MAIN_TOPPINGS),
    ):
        value = getattr(order, field_name)
        if value not in choices:
            errors[field_name] = f"{value!r} is not on the menu ({', '.join(choices)})"
    extras = order.extra_toppings
    unknown = [x for x in extras if x not in EXTRA_TOPPINGS]
    if len(extras) > MAX_EXTRA_TOPPINGS:
        errors["extra_toppings"] = f"at most {MAX_EXTRA_TOPPINGS} extra toppings"
    elif unknown:
        errors["extra_toppings"] = f"not on the menu: {', '.join(map(repr, unknown))}"
    elif len(set(extras)) != len(extras):
        errors["extra_toppings"] = "each extra topping at most once"
    return errors


# How much of an ingredient the pantry starts with (the settings say), until it first moves.
StartingStock = Callable[[str], int]


def starting_stock(settings: Settings) -> StartingStock:
    named, default = dict(settings.pantry_stock), settings.pantry_default_stock
    return lambda ingredient: named.get(ingredient, default)
