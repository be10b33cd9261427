// Drag a dialogue's row to change priorities on the dialogue list. The move buttons in each row
// do the same without JavaScript; this only saves the new order after a drop and re-renders the
// table from the server, so what is shown is what is stored.
(function () {
  "use strict";
  var dragged = null;

  function rowAt(target) {
    return target.closest ? target.closest("#dialogue-table tr[draggable]") : null;
  }

  document.addEventListener("dragstart", function (event) {
    dragged = rowAt(event.target);
    if (!dragged) return;
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.dialogueId);
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
    save(table);
  });

  function save(table) {
    var rows = table.querySelectorAll("tbody tr[data-dialogue-id]");
    var order = Array.prototype.map.call(rows, function (row) {
      return Number(row.dataset.dialogueId);
    });
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["Content-Type"] = "application/json";
    fetch(table.dataset.reorderUrl, {
      method: "POST",
      headers: headers,
      credentials: "same-origin",
      body: JSON.stringify({ order: order }),
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error ? data.error.message : "Not saved.");
        });
      })
      .then(function () {
        // The move buttons carry orders computed by the server: fetch them afresh.
        window.htmx.ajax("GET", window.location.pathname, {
          target: "#dialogue-table",
          swap: "outerHTML",
        });
      })
      .catch(function (error) {
        var note = document.createElement("p");
        note.className = "error";
        note.setAttribute("role", "alert");
        note.textContent = error.message + " The list below is reloaded.";
        table.parentNode.insertBefore(note, table);
        window.htmx.ajax("GET", window.location.pathname, {
          target: "#dialogue-table",
          swap: "outerHTML",
        });
      });
  }
})();
