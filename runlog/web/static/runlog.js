// runlog's pages: every link and chart works without this script; it only adds
// conveniences. Served from the package (no network needed).
(function () {
  "use strict";

  // Chart controls redraw as soon as a choice changes.
  function autoSubmit() {
    document.querySelectorAll("form.rl-controls").forEach(function (form) {
      form.addEventListener("change", function (event) {
        if (event.target.matches("select, input[type=checkbox]")) { form.submit(); }  // typed steps wait for Redraw
      });
    });
  }

  // A "select all" box above the runs' checkboxes.
  function selectAll() {
    document.querySelectorAll("input.rl-all").forEach(function (all) {
      all.hidden = false;
      var boxes = all.closest("table").querySelectorAll('tbody input[type="checkbox"]');
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
      });
    });
  }

  // The leaderboard's direction, a choice rather than free text.
  function directionChoice() {
    var direction = document.querySelector('form input[type="text"][name="direction"]');
    if (!direction) { return; }
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

  // Hovering a chart shows the nearest point of each line: its x and y.
  function hover() {
    document.querySelectorAll("svg.rl-chart").forEach(function (svg) {
      var d = svg.dataset;
      var x0 = +d.x0, x1 = +d.x1, y0 = +d.y0, y1 = +d.y1, logy = d.logy === "1";
      var left = +d.left, right = +d.right, top = +d.top, bottom = +d.bottom;
      var lines = Array.prototype.map.call(svg.querySelectorAll("g.rl-series"), function (g) {
        var raw = g.querySelector("polyline.rl-raw");
        var points = raw ? raw.getAttribute("points").trim().split(/\s+/).map(function (pair) {
          var xy = pair.split(","); return [+xy[0], +xy[1]];
        }) : [];
        return { label: g.dataset.series, points: points };
      });
      var tip = document.createElement("div");
      tip.className = "rl-tip";
      tip.hidden = true;
      svg.parentNode.appendChild(tip);
      function valueAt(py) {
        var f = (bottom - py) / (bottom - top);
        return logy ? Math.pow(10, Math.log10(y0) + f * (Math.log10(y1) - Math.log10(y0))) : y0 + f * (y1 - y0);
      }
      svg.addEventListener("mousemove", function (event) {
        var box = svg.getBoundingClientRect();
        var px = (event.clientX - box.left) / box.width * svg.viewBox.baseVal.width;
        if (px < left || px > right) { tip.hidden = true; return; }
        var step = x0 + (px - left) / (right - left) * (x1 - x0);
        var rows = lines.map(function (line) {
          var best = null;
          line.points.forEach(function (p) { if (!best || Math.abs(p[0] - px) < Math.abs(best[0] - px)) { best = p; } });
          return best ? line.label + ": " + valueAt(best[1]).toPrecision(5) : "";
        }).filter(Boolean).slice(0, 12);
        tip.textContent = "";
        var head = document.createElement("strong");
        head.textContent = "x " + step.toPrecision(6);
        tip.appendChild(head);
        rows.forEach(function (text) { var row = document.createElement("div"); row.textContent = text; tip.appendChild(row); });
        tip.style.left = (event.clientX - svg.parentNode.getBoundingClientRect().left + 12) + "px";
        tip.hidden = false;
      });
      svg.addEventListener("mouseleave", function () { tip.hidden = true; });
    });
  }

  // Dragging across a chart whose x is steps zooms into them: the page again with
  // from= and to= (the form's "steps from .. to" does the same without this script).
  function dragZoom() {
    document.querySelectorAll('svg.rl-chart[data-zoom="1"]').forEach(function (svg) {
      var d = svg.dataset, x0 = +d.x0, x1 = +d.x1, left = +d.left, right = +d.right;
      var band = document.createElement("div");
      band.className = "rl-zoom-band";
      band.hidden = true;
      svg.parentNode.appendChild(band);
      var start = null;
      function unitX(event) {
        var box = svg.getBoundingClientRect();
        return (event.clientX - box.left) / box.width * svg.viewBox.baseVal.width;
      }
      function pixelX(event) { return event.clientX - svg.parentNode.getBoundingClientRect().left; }
      svg.addEventListener("mousedown", function (event) {
        var x = unitX(event);
        if (event.button !== 0 || x < left || x > right) { return; }
        start = { unit: x, pixel: pixelX(event) };
        event.preventDefault();
      });
      window.addEventListener("mousemove", function (event) {
        if (!start) { return; }
        var here = pixelX(event);
        band.style.left = Math.min(start.pixel, here) + "px";
        band.style.width = Math.abs(here - start.pixel) + "px";
        band.style.height = svg.getBoundingClientRect().height + "px";
        band.hidden = false;
      });
      window.addEventListener("mouseup", function (event) {
        if (!start) { return; }
        var a = start.unit, b = Math.max(left, Math.min(right, unitX(event)));
        start = null;
        band.hidden = true;
        if (Math.abs(b - a) < 4) { return; }  // a click, not a drag
        var step = function (x) { return x0 + (x - left) / (right - left) * (x1 - x0); };
        var url = new URL(window.location.href);
        url.searchParams.set("from", String(Math.floor(step(Math.min(a, b)))));
        url.searchParams.set("to", String(Math.ceil(step(Math.max(a, b)))));
        window.location.assign(url.toString());
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autoSubmit();
    selectAll();
    directionChoice();
    hover();
    dragZoom();
  });
})();
