// The order's records in Kafka, read when the customer opens "Under the hood" (each read
// asks the broker, so not on every page view), and again on "Read again".
(function () {
  const section = document.getElementById("under-the-hood");
  if (!section || !window.fetch) return;
  const table = document.getElementById("records");
  const note = document.getElementById("records-note");
  const again = document.getElementById("records-again");
  const COLUMNS = ["topic", "partition", "offset", "time", "service", "trace_id", "since_previous"];

  function row(record) {
    const tr = document.createElement("tr");
    COLUMNS.forEach(function (column) {
      const td = document.createElement("td");
      const value = record[column];
      td.textContent = value === null || value === "" ? "-" : String(value);
      tr.appendChild(td);
    });
    return tr;
  }

  function show(story) {
    const body = table.querySelector("tbody");
    body.replaceChildren.apply(body, story.records.map(row));
    note.textContent = story.records.length + " records, oldest first.";
    table.hidden = false;
  }

  function read() {
    note.textContent = "Reading from Kafka…";
    fetch(section.dataset.records, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : response.statusText);
          return body;
        });
      })
      .then(show)
      .catch(function (error) { note.textContent = "The records could not be read: " + error.message; })
      .finally(function () { again.hidden = false; });
  }

  section.addEventListener("toggle", function () {
    if (section.open && table.hidden) read();
  });
  again.addEventListener("click", read);
})();
