"""The one menu every part of the shop reads: the web form, the CLI, the validation."""

from __future__ import annotations

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

MAX_EXTRA_TOPPINGS = len(EXTRA_TOPPINGS)
MAX_NAME_LENGTH = 40
