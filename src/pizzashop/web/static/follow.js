// Follows one order live with server-sent events: no reload, no polling loop in the page.
// The browser reconnects by itself and sends Last-Event-ID, so no change is missed.
(function () {
  const timeline = document.getElementById("timeline");
  if (!timeline || timeline.dataset.final === "true" || !window.EventSource) return;
  const statusText = document.getElementById("status-text");
  const url = timeline.dataset.events + "?after=" + encodeURIComponent(timeline.dataset.lastSeq || "0");
  const source = new EventSource(url);

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  }

  source.addEventListener("status", function (event) {
    const change = JSON.parse(event.data);
    const step = timeline.querySelector('li[data-status="' + change.status + '"]');
    if (step) {
      step.classList.add("done");
      step.querySelector("time").textContent = clock(change.timestamp);
    }
    const shown = Number(statusText.dataset.status);
    const moving = change.status >= shown || shown === 510 || change.status >= 500;
    if (moving && !(shown === 400 || shown === 500)) {
      statusText.textContent = change.text;
      statusText.dataset.status = change.status;
    }
    if (change.final) source.close();
  });
})();
