// Keeps the operator page's stock live: it asks /api/stock every two seconds, as the menu does,
// so a restock shows once the pantry has counted it and the read model has its new level.
"use strict";

(function () {
  const table = document.getElementById("stock");
  if (!table) return;
  const STOCK_EVERY_MS = 2000;

  function showLevels(stock) {
    for (const row of table.querySelectorAll("tr[data-ingredient]")) {
      const left = stock[row.dataset.ingredient];
      if (left === undefined) continue;
      // The same figures as the page's first rendering: 1,234 (web/templates/pipeline.html).
      const text = left.toLocaleString("en-US");
      const cell = row.querySelector("[data-left]");
      if (cell.textContent !== text) cell.textContent = text;
      row.classList.toggle("sold-out", left === 0);
    }
  }

  async function refreshStock() {
    try {
      const answer = await fetch("/api/stock", { headers: { Accept: "application/json" } });
      if (answer.ok) showLevels((await answer.json()).stock);
    } catch (error) {
      // The next turn tries again.
    }
  }

  setInterval(refreshStock, STOCK_EVERY_MS);
})();
