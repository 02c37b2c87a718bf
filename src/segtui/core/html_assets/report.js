/* Sortable tables and the "only where A ≠ B" filter of segtui's HTML report.
 * Headers are buttons (Enter or Space sorts from the keyboard). Sorting is stable: rows
 * that compare equal keep the report's order; "n/a" sorts last in either direction.
 * A long table shows its first rows only (data-limit; the others are class "more", so the
 * browser lays out a few hundred rows, not thousands, on each sort) until "show all".
 * When the wiring is done, <body data-ready="1"> says the script ran to its end. */
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var filterBox = document.getElementById("only-differs");

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

  /* Mark the rows past the table's limit (among those the filter keeps); count what shows. */
  function applyLimit(table) {
    var limit = table.classList.contains("all") ? Infinity : Number(table.getAttribute("data-limit") || Infinity);
    var filtering = filterBox !== null && filterBox.checked;
    var rows = table.tBodies[0].rows;
    var kept = 0;
    for (var n = 0; n < rows.length; n++) {
      var row = rows[n];
      var keeps = !filtering || row.getAttribute("data-differs") !== "0";
      if (keeps) { kept++; }
      var past = keeps && kept > limit;
      if (row.classList.contains("more") !== past) { row.classList.toggle("more", past); }
    }
    var shown = Math.min(kept, limit);
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (count) { count.textContent = "showing " + shown + " of " + rows.length + " rows"; }
    var button = document.querySelector('[data-show-all="' + table.id + '"]');
    if (button) {
      button.hidden = shown >= kept;
      button.textContent = "Show all " + kept + " rows";
    }
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
    applyLimit(table);
  }

  function wireTable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        sortTable(table, column, th.getAttribute("aria-sort") === "ascending");
      });
    });
    var more = document.querySelector('[data-show-all="' + table.id + '"]');
    if (more) {
      more.addEventListener("click", function () {
        table.classList.add("all");
        applyLimit(table);
      });
    }
  }

  var tables = Array.prototype.slice.call(document.querySelectorAll("table.sortable"));
  tables.forEach(wireTable);
  if (filterBox) {
    filterBox.addEventListener("change", function () {
      document.body.classList.toggle("only-differs", filterBox.checked);
      tables.forEach(applyLimit);
    });
  }
  tables.forEach(applyLimit);
  window.segtuiReport = { sortItems: sortItems, sortTable: sortTable };
  document.body.setAttribute("data-ready", "1");
})();
