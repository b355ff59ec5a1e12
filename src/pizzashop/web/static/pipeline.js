// Keeps the pipeline page's figures live from its server-sent events: one snapshot a second.
// When the server closes the stream the browser reconnects by itself once it is back.
(function () {
  const pipeline = document.getElementById("pipeline");
  if (!pipeline || !window.EventSource) return;
  const source = new EventSource(pipeline.dataset.events);

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  }

  // The same words as the page's first rendering (web/admin.py, templates/pipeline.html).
  function duration(ms) {
    if (ms === null) return "–";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }

  function lag(stage, reachable) {
    if (stage.group === null) return "–";
    return reachable && stage.lag !== null ? String(stage.lag) : "broker unreachable";
  }

  function show(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function showStage(stage, reachable) {
    const box = pipeline.querySelector('[data-stage="' + stage.name + '"]');
    if (!box) return;
    const figure = function (name) { return box.querySelector('[data-figure="' + name + '"]'); };
    show(figure("in_works"), stage.in_works === null ? "–" : String(stage.in_works));
    show(figure("per_second"), stage.per_second.toFixed(1));
    show(figure("p50_ms"), duration(stage.p50_ms));
    show(figure("p99_ms"), duration(stage.p99_ms));
    show(figure("lag"), lag(stage, reachable));
    box.classList.toggle("busy", stage.in_works !== null && stage.in_works > 0);
    figure("lag").title = Object.entries(stage.lag_by_topic).map(function (e) { return e[0] + ": " + e[1]; }).join(", ");
  }

  function showStuck(snapshot) {
    show(document.getElementById("stuck-count"), String(snapshot.stuck_count));
    const list = document.getElementById("stuck-list");
    list.replaceChildren.apply(list, snapshot.stuck.map(function (order) {
      const item = document.createElement("li");
      const id = document.createElement("code");
      id.textContent = order.order_id;
      item.append(id, " waiting for " + (order.stage || "a step") + " since " + clock(order.since));
      return item;
    }));
  }

  source.addEventListener("snapshot", function (event) {
    const snapshot = JSON.parse(event.data);
    snapshot.stages.forEach(function (stage) { showStage(stage, snapshot.broker_reachable); });
    showStuck(snapshot);
    const broker = document.getElementById("broker-state");
    show(broker, snapshot.broker_reachable ? "broker answering" : "lag: broker unreachable");
    broker.dataset.reachable = String(snapshot.broker_reachable);
    show(document.getElementById("dead-letters"),
         snapshot.dead_letters === null ? "broker unreachable" : String(snapshot.dead_letters));
    show(document.getElementById("taken-at"), clock(snapshot.taken_at));
  });
})();
