"""What the web app knows of the pantry's stock: the read model's levels, read again at most
every half second, for the menu page's sold-out marks and the front door's 409."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pizzashop.config import Settings
from pizzashop.readmodel import reading
from pizzashop.readmodel.pantry import stock_levels
from pizzashop.readmodel.views import OrderViews

FRESH_FOR = 0.5  # seconds a reading of the levels serves every request


class StockBoard:
    def __init__(self, views: OrderViews, settings: Settings, fresh_for: float = FRESH_FOR) -> None:
        self._views, self._settings, self._fresh_for = views, settings, fresh_for
        self._levels: dict[str, int] = {}
        self._read_at = -fresh_for

    async def levels(self) -> dict[str, int]:
        """Every ingredient on the menu and how much is left, as the read model last said."""
        now = time.monotonic()
        if now - self._read_at >= self._fresh_for:
            stored = await reading.read(self._views.stock)
            self._levels, self._read_at = stock_levels(stored, self._settings), now
        return self._levels

    async def sold_out(self, ingredients: Sequence[str]) -> str | None:
        levels = await self.levels()
        return next((i for i in ingredients if levels.get(i, 1) <= 0), None)
