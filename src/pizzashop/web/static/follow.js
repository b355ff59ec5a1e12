// Follows one order live with server-sent events: no reload, no polling loop in the page.
// The browser reconnects by itself and sends Last-Event-ID, so no change is missed.
(function () {
  const timeline = document.getElementById("timeline");
  if (!timeline || timeline.dataset.final === "true" || !window.EventSource) return;
  const statusText = document.getElementById("status-text");
  const troubles = document.getElementById("troubles");
  const cancelOrder = document.getElementById("cancel-order");
  const url = timeline.dataset.events + "?after=" + encodeURIComponent(timeline.dataset.lastSeq || "0");
  const source = new EventSource(url);

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  }

  function markStep(change) {
    const step = timeline.querySelector('li[data-status="' + change.status + '"]');
    if (step) {
      step.classList.add("done");
      step.querySelector("time").textContent = clock(change.timestamp);
    } else if (change.error) {
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = change.text + " (" + clock(change.timestamp) + ")";
      troubles.appendChild(note);
    }
  }

  source.addEventListener("status", function (event) {
    const change = JSON.parse(event.data);
    markStep(change);
    // The server says which status the order shows: a late step never moves it back.
    statusText.textContent = change.order_status_text;
    statusText.dataset.status = change.order_status;
    // Out of the oven (or final): a cancel could no longer win.
    if (cancelOrder && !change.cancellable) cancelOrder.hidden = true;
  });
  // Sent once the order is final; without it the browser would reconnect for ever.
  source.addEventListener("end", function () { source.close(); });
})();
