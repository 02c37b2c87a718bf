/* Sortable tables and the "only images where A ≠ B" filter of segtui's HTML report.
 * Headers are buttons (Enter or Space sorts from the keyboard). Sorting is stable: rows
 * that compare equal keep the report's order; "n/a" sorts last in either direction.
 * When the wiring is done, <body data-ready="1"> says the script ran to its end. */
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  /* items: [{key: number|string|null, index: number}] -> a new array, sorted. */
  function sortItems(items, numeric, descending) {
    return items.slice().sort(function (x, y) {
      var xMissing = x.key === null, yMissing = y.key === null;
      if (xMissing || yMissing) {
        return xMissing && yMissing ? x.index - y.index : (xMissing ? 1 : -1);
      }
      var c = numeric ? x.key - y.key : collator.compare(x.key, y.key);
      return (descending ? -c : c) || x.index - y.index;
    });
  }

  function cellKey(cell, numeric) {
    if (!numeric) { return cell.textContent; }
    var raw = cell.getAttribute("data-v");
    return raw === null || raw === "" ? null : Number(raw);
  }

  function sortTable(table, column, descending) {
    var body = table.tBodies[0];
    var header = table.tHead.rows[0].cells[column];
    var numeric = header.getAttribute("data-type") === "num";
    var rows = Array.prototype.slice.call(body.rows);
    var items = rows.map(function (row) {
      return { key: cellKey(row.cells[column], numeric), index: Number(row.getAttribute("data-i")), row: row };
    });
    var fragment = document.createDocumentFragment();
    sortItems(items, numeric, descending).forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function wireTable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        sortTable(table, column, th.getAttribute("aria-sort") === "ascending");
      });
    });
  }

  function updateCounts() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-count-for]"), function (out) {
      var table = document.getElementById(out.getAttribute("data-count-for"));
      var rows = table.tBodies[0].rows;
      var shown = 0;
      for (var n = 0; n < rows.length; n++) {
        if (getComputedStyle(rows[n]).display !== "none") { shown++; }
      }
      out.textContent = "showing " + shown + " of " + rows.length + " rows";
    });
  }

  function wireFilter() {
    var box = document.getElementById("only-differs");
    if (!box) { return; }
    box.addEventListener("change", function () {
      document.body.classList.toggle("only-differs", box.checked);
      updateCounts();
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), wireTable);
  wireFilter();
  updateCounts();
  window.segtuiReport = { sortItems: sortItems, sortTable: sortTable };
  document.body.setAttribute("data-ready", "1");
})();
