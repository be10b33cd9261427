// Drag an agent's row to change the routing queue's order (templates/routing/_queue_table.html).
// The arrows in each row do the same without JavaScript. After a drop the whole new order is
// sent with the order the page showed before it, so a stale page changes nothing (409); either
// way the table is then re-read from the server, so what is shown is what is stored.
(function () {
  "use strict";
  var dragged = null;
  var before = null;

  function rowAt(target) {
    return target.closest ? target.closest("#queue-table tr[draggable]") : null;
  }

  function orderOf(table) {
    var rows = table.querySelectorAll("tbody tr[data-user-id]");
    return Array.prototype.map.call(rows, function (row) {
      return Number(row.dataset.userId);
    });
  }

  document.addEventListener("dragstart", function (event) {
    dragged = rowAt(event.target);
    if (!dragged) return;
    before = orderOf(dragged.closest("table"));
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.userId);
  });

  document.addEventListener("dragover", function (event) {
    var row = dragged && rowAt(event.target);
    if (!row) return;
    event.preventDefault();
    if (row === dragged) return;
    var box = row.getBoundingClientRect();
    var below = event.clientY > box.top + box.height / 2;
    row.parentNode.insertBefore(dragged, below ? row.nextSibling : row);
  });

  document.addEventListener("drop", function (event) {
    if (dragged) event.preventDefault();
  });

  document.addEventListener("dragend", function () {
    if (!dragged) return;
    var table = dragged.closest("table");
    dragged.classList.remove("dragging");
    dragged = null;
    var order = orderOf(table);
    if (order.join() === before.join()) return;
    save(table, order, before);
  });

  function reload() {
    window.htmx.ajax("GET", window.location.pathname, { target: "#queue", swap: "outerHTML" });
  }

  function save(table, order, expected) {
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["Content-Type"] = "application/json";
    fetch(table.dataset.reorderUrl, {
      method: "POST",
      headers: headers,
      credentials: "same-origin",
      body: JSON.stringify({ order: order, expected: expected }),
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error ? data.error.message : "Not saved.");
        });
      })
      .then(reload)
      .catch(function (error) {
        var note = document.createElement("p");
        note.className = "error";
        note.setAttribute("role", "alert");
        note.textContent = error.message + " The queue below is reloaded.";
        var queue = document.getElementById("queue");
        queue.parentNode.insertBefore(note, queue);
        reload();
      });
  }
})();
