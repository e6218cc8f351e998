// profile's HTML report: draws the timelines from the JSON in #profile-data with uPlot.
// Every chart writes data-drawn="1" once drawn; errors land in #profile-errors, and
// #profile-status says how many charts drew, so a headless browser can check the page.
(function () {
  "use strict";
  var status = document.getElementById("profile-status");
  var errors = document.getElementById("profile-errors");
  function fail(msg) {
    var li = document.createElement("li");
    li.textContent = String(msg);
    errors.appendChild(li);
    status.setAttribute("data-errors", String(errors.children.length));
  }
  window.onerror = function (msg, src, line) { fail(msg + " (line " + line + ")"); };
  window.addEventListener("unhandledrejection", function (e) { fail(e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) {
    fail("blocked request: " + e.blockedURI);
  });

  var doc = JSON.parse(document.getElementById("profile-data").textContent);
  var charts = [];
  var drawn = 0;
  function markDrawn(el) {
    if (el.getAttribute("data-drawn") !== "1") {
      el.setAttribute("data-drawn", "1");
      drawn += 1;
      status.setAttribute("data-drawn", String(drawn));
    }
  }

  // Timelines on one x axis: x is seconds since each timeline's first active window for a
  // compare, seconds since the first scrape for one recording.
  var tls = doc.timelines;
  var tables = tls.map(function (t) {
    var cols = [t.x];
    doc.charts.forEach(function (c) {
      c.series.forEach(function (s) { cols.push(t.series[s.key] || t.x.map(function () { return null; })); });
    });
    cols.push(t.active);
    cols.push(t.failed);
    return cols;
  });
  var joined = tables.length === 1 ? tables[0] : uPlot.join(tables);
  var width = 0;
  tables.forEach(function (tb) { width += tb.length - 1; });
  var perTl = tables[0].length - 1;
  function column(tl, i) { return joined[1 + tl * perTl + i]; }
  var seriesIndex = {};
  var k = 0;
  doc.charts.forEach(function (c) {
    c.series.forEach(function (s) { seriesIndex[s.key] = k; k += 1; });
  });
  var nActive = k, nFailed = k + 1;

  // Shades idle windows grey and marks failed scrapes red along the bottom, per timeline.
  function bandsPlugin() {
    return {
      hooks: {
        drawClear: function (u) {
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          for (var tl = 0; tl < tls.length; tl++) {
            var act = column(tl, nActive), fl = column(tl, nFailed);
            var xs = u.data[0];
            for (var i = 0; i < xs.length; i++) {
              if (act[i] === null || act[i] === undefined) continue;
              var x0 = u.valToPos(xs[i], "x", true);
              var j = i + 1;
              while (j < xs.length && (act[j] === null || act[j] === undefined)) j++;
              var x1 = j < xs.length ? u.valToPos(xs[j], "x", true) : x0 + 2;
              if (act[i] === 0 && tl === 0) {
                ctx.fillStyle = "rgba(128,128,128,0.10)";
                ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
              }
              if (fl[i] > 0) {
                ctx.fillStyle = "rgba(220,40,40,0.85)";
                ctx.fillRect(x0, top + h - 6 - tl * 7, Math.max(2, x1 - x0), 5);
              }
            }
          }
          // Each significant finding's windows: a tinted band and a strip along the top.
          for (var t2 = 0; t2 < tls.length; t2++) {
            (tls[t2].findings || []).forEach(function (f, fi) {
              var hue = FINDING_COLORS[fi % FINDING_COLORS.length];
              f.spans.forEach(function (sp) {
                var a = u.valToPos(sp[0], "x", true), b = u.valToPos(sp[1], "x", true);
                ctx.fillStyle = "rgba(" + hue + ",0.08)";
                ctx.fillRect(a, top, Math.max(1, b - a), h);
                ctx.fillStyle = "rgba(" + hue + ",0.85)";
                ctx.fillRect(a, top + 1 + (t2 * 3 + fi) * 4, Math.max(2, b - a), 3);
              });
            });
          }
          ctx.restore();
        },
      },
    };
  }
  var FINDING_COLORS = ["230,120,0", "140,60,200", "0,140,140", "200,40,120"];

  // Horizontal reference lines (ceiling, 88 % and 95 % KV, the cap).
  function linesPlugin(lines) {
    return {
      hooks: {
        draw: function (u) {
          var ctx = u.ctx;
          ctx.save();
          lines.forEach(function (l) {
            var y = u.valToPos(l.value, "y", true);
            ctx.strokeStyle = l.color;
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1.5;
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.fillStyle = l.color;
            ctx.font = "11px sans-serif";
            ctx.fillText(l.label, u.bbox.left + 4, y - 3);
          });
          ctx.restore();
        },
      },
    };
  }

  var syncKey = "profile-x";
  var sync = uPlot.sync(syncKey);
  var zooming = false;
  function syncZoom(u) {
    if (zooming) return;
    zooming = true;
    var min = u.scales.x.min, max = u.scales.x.max;
    charts.forEach(function (o) { if (o !== u) o.setScale("x", { min: min, max: max }); });
    zooming = false;
  }

  var w = Math.max(600, Math.min(1200, document.body.clientWidth - 40));
  doc.charts.forEach(function (c) {
    var el = document.getElementById("chart-" + c.id);
    var data = [joined[0]];
    var series = [{ label: doc.x_label }];
    var maxY = 0;
    c.series.forEach(function (s) {
      for (var tl = 0; tl < tls.length; tl++) {
        var col = column(tl, seriesIndex[s.key]);
        data.push(col);
        col.forEach(function (v) { if (v !== null && v > maxY) maxY = v; });
        series.push({
          label: (tls.length > 1 ? tls[tl].label + ": " : "") + s.label,
          stroke: s.color,
          width: 1.5,
          dash: tl === 1 ? [5, 3] : undefined,
          spanGaps: tls.length > 1,
          points: { show: false },
          value: function (u, v) { return v === null || v === undefined ? "-" : v.toFixed(s.prec); },
        });
      }
    });
    c.lines.forEach(function (l) { if (l.value > maxY) maxY = l.value; });
    var opts = {
      width: w,
      height: 180,
      title: c.title,
      cursor: { sync: { key: syncKey }, drag: { x: true, y: false } },
      scales: {
        x: { time: false },
        y: { range: function (u, mn, mx) { return [0, Math.max(maxY * 1.08, c.min_max || 1)]; } },
      },
      axes: [{ label: doc.x_label }, { label: c.unit, size: 60 }],
      series: series,
      plugins: [bandsPlugin(), linesPlugin(c.lines)],
      hooks: {
        draw: [function () { markDrawn(el); }],
        setScale: [function (u, key) { if (key === "x") syncZoom(u); }],
      },
    };
    var u = new uPlot(opts, data, el);
    sync.sub(u);
    charts.push(u);
  });
  document.getElementById("profile-reset").addEventListener("click", function () {
    var xs = joined[0];
    if (xs.length) charts.forEach(function (u) { u.setScale("x", { min: xs[0], max: xs[xs.length - 1] }); });
  });
  status.setAttribute("data-charts", String(charts.length));
})();
