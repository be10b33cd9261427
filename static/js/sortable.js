// Drag a row to reorder a table: the dialogue list's priorities, the routing queue. The move
// buttons in each row do the same without JavaScript. A sortable table says where to send
// the order (data-reorder-url), which data- attribute of its rows holds their id
// (data-sort-key, in dataset form: "dialogueId" for data-dialogue-id) and what to re-read from
// the server afterwards (data-reload, a selector). After a drop the whole new order is sent with
// the order the page showed before it ({order, expected}; a stale page changes nothing, 409);
// either way that part of the page is then re-read, so what is shown is what is stored.
(function () {
  "use strict";
  var dragged = null;
  var before = null;

  function rowAt(target) {
    var row = target.closest ? target.closest("tr[draggable]") : null;
    return row && row.closest("table[data-reorder-url]") ? row : null;
  }

  function orderOf(table) {
    var key = table.dataset.sortKey;
    return Array.prototype.map.call(table.querySelectorAll("tbody tr"), function (row) {
      return Number(row.dataset[key]);
    });
  }

  document.addEventListener("dragstart", function (event) {
    dragged = rowAt(event.target);
    if (!dragged) return;
    before = orderOf(dragged.closest("table"));
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", "");
  });

  document.addEventListener("dragover", function (event) {
    var row = dragged && rowAt(event.target);
    if (!row || row.closest("table") !== dragged.closest("table")) return;
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

  function save(table, order, expected) {
    var target = table.dataset.reload;
    function reload() {
      window.htmx.ajax("GET", window.location.pathname, { target: target, swap: "outerHTML" });
    }
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
        note.textContent = error.message + " The list below is reloaded.";
        var part = document.querySelector(target);
        part.parentNode.insertBefore(note, part);
        reload();
      });
  }
})();
