// runlog: link run_id primary-key cells to the run page, and offer a
// desc/asc choice for the leaderboard's direction. Served from the package.
(function () {
  var script = new URL(document.currentScript.src);
  var db = script.searchParams.get("db");
  var runPage = script.pathname.replace(/static\/runlog\.js$/, "run/");
  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.classList.contains("table-runs")) {
      document.querySelectorAll("table.rows-and-columns td.type-pk a").forEach(function (link) {
        link.href = runPage + encodeURIComponent(link.textContent) + (db ? "?db=" + encodeURIComponent(db) : "");
      });
    }
    var direction = document.querySelector('form input[type="text"][name="direction"]');
    if (direction) {
      var select = document.createElement("select");
      select.id = direction.id;
      select.name = "direction";
      ["desc", "asc"].forEach(function (value) {
        var option = new Option(value === "desc" ? "desc (highest first)" : "asc (lowest first)", value);
        option.selected = direction.value === value;
        select.appendChild(option);
      });
      direction.replaceWith(select);
    }
  });
})();
