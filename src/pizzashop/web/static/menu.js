// The menu marks each choice the pantry has run out of, and unmarks it once restocked,
// without a reload: it asks /api/stock every two seconds while the page is open.
"use strict";

const STOCK_EVERY_MS = 2000;

function markSoldOut(stock) {
  for (const label of document.querySelectorAll("label[data-ingredient]")) {
    const soldOut = stock[label.dataset.ingredient] === 0;
    label.classList.toggle("sold-out", soldOut);
    label.querySelector("input").disabled = soldOut;
    let note = label.querySelector(".sold-out-note");
    if (soldOut && !note) {
      note = document.createElement("span");
      note.className = "sold-out-note";
      note.textContent = " (sold out)";
      label.append(note);
    } else if (!soldOut && note) {
      note.remove();
    }
  }
}

async function refreshStock() {
  try {
    const answer = await fetch("/api/stock", { headers: { Accept: "application/json" } });
    if (answer.ok) markSoldOut((await answer.json()).stock);
  } catch (error) {
    // The next turn tries again; the pantry still decides every order.
  }
}

refreshStock();
setInterval(refreshStock, STOCK_EVERY_MS);
