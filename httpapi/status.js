// Keeps the status page current: polls status.json every two seconds and
// re-renders the header and the table the way status.html renders them on
// the server, so the page reads the same before and after the first poll.
// Text goes in through textContent only, never innerHTML, because table
// names and error messages come from outside.
(function () {
  "use strict";

  var POLL_MS = 2000;
  // Below the poll interval, so that a hung request cannot stall the page.
  var TIMEOUT_MS = 1500;
  // Same geometry as format.go's sparkline constants.
  var SPARK_W = 120, SPARK_H = 28, SPARK_PAD = 2;
  var SVG = "http://www.w3.org/2000/svg";

  var app = document.getElementById("app");
  var readyMaxLag = Number(app.getAttribute("data-ready-max-lag"));

  // The formatting twins of format.go.
  function round1(v) { return Math.round(v * 10) / 10; }
  function count(n) { return Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 }); }
  function bytesText(n) {
    if (n < 1024) { return n + " B"; }
    var units = ["KiB", "MiB", "GiB", "TiB"], i = 0, v = n / 1024;
    for (; v >= 1024 && i < units.length - 1; v /= 1024) { i++; }
    return round1(v).toFixed(1) + " " + units[i];
  }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function dur(sec) {
    if (!(sec > 0)) { return "0s"; }
    if (sec < 10) { return round1(sec).toFixed(1) + "s"; }
    var s = Math.floor(sec);
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m " + pad2(s % 60) + "s"; }
    if (s < 86400) { return Math.floor(s / 3600) + "h " + pad2(Math.floor(s % 3600 / 60)) + "m"; }
    return Math.floor(s / 86400) + "d " + pad2(Math.floor(s % 86400 / 3600)) + "h";
  }
  function rate(v) {
    if (!(v > 0)) { return "0 rows/s"; }
    if (v < 10) { return round1(v).toFixed(1) + " rows/s"; }
    return count(Math.round(v)) + " rows/s";
  }
  function lastRate(series) { return rate(series && series.length ? series[series.length - 1] : 0); }
  function clock(iso) { return new Date(iso).toISOString().slice(11, 19) + " UTC"; }
  function since(now, iso) { return (Date.parse(now) - Date.parse(iso)) / 1000; }
  function ago(now, iso) { return dur(since(now, iso)) + " ago"; }
  function spark(series) {
    series = series || [];
    var peak = 0, i;
    for (i = 0; i < series.length; i++) { peak = Math.max(peak, series[i]); }
    var step = series.length > 1 ? SPARK_W / (series.length - 1) : 0, pts = [];
    for (i = 0; i < series.length; i++) {
      var y = SPARK_H - SPARK_PAD;
      if (peak > 0) { y -= series[i] / peak * (SPARK_H - 2 * SPARK_PAD); }
      pts.push(round1(i * step).toFixed(1) + "," + round1(y).toFixed(1));
    }
    if (!pts.length) { return null; }
    var line = pts.join(" ");
    return { line: line, area: "0," + SPARK_H + " " + line + " " + SPARK_W + "," + SPARK_H };
  }
  function snapshotView(t) {
    if (t.snapshot_done) { return { done: true, text: count(t.snapshot_rows) + " rows" }; }
    if (t.snapshot_total > 0) {
      var rows = Math.min(t.snapshot_rows, t.snapshot_total);
      return {
        bar: true, value: rows / t.snapshot_total, percent: Math.min(Math.floor(rows * 100 / t.snapshot_total), 99),
        text: count(t.snapshot_rows) + " / ~" + count(t.snapshot_total)
      };
    }
    if (t.snapshot_rows > 0) { return { text: count(t.snapshot_rows) + " rows copied" }; }
    return { text: "—" };
  }

  // el builds an element: attrs are set as attributes, children are nodes
  // or strings (made text nodes, so never parsed as markup).
  function el(tag, attrs, children, ns) {
    var e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  function row(t, now) {
    var s = spark(t.throughput), sv = snapshotView(t), snap;
    if (sv.done) {
      snap = [el("span", { "class": "done" }, ["✓ done"]), el("small", {}, [sv.text])];
    } else if (sv.bar) {
      snap = [el("progress", { max: "1", value: String(sv.value) }), el("small", {}, [sv.percent + "% · " + sv.text])];
    } else {
      snap = [el("small", {}, [sv.text])];
    }
    var err = t.last_error ?
      [el("span", { "class": "msg", title: t.last_error }, [t.last_error]),
        el("small", {}, [clock(t.last_error_at) + " · " + ago(now, t.last_error_at)])] :
      [el("span", { "class": "none" }, ["—"])];
    var tp = [];
    if (s) {
      tp.push(el("svg", { "class": "spark", viewBox: "0 0 " + SPARK_W + " " + SPARK_H, preserveAspectRatio: "none", "aria-hidden": "true" }, [
        el("polygon", { "class": "area", points: s.area }, [], SVG),
        el("polyline", { "class": "line", points: s.line }, [], SVG)
      ], SVG));
    }
    tp.push(el("span", { "class": "rate" }, [lastRate(t.throughput)]));
    return el("tr", { "data-source": t.source }, [
      el("td", { "class": "name" }, [
        el("span", { "class": "source" }, [t.source]),
        el("span", { "class": "arrow" }, ["→"]),
        el("span", { "class": "target" }, [t.target + "/" + t.table])
      ]),
      el("td", { "class": "num" }, [
        el("span", { "class": "big" }, [count(t.upserts + t.deletes)]),
        el("small", {}, [count(t.upserts) + " upserts · " + count(t.deletes) + " deletes"])
      ]),
      el("td", { "class": "tp" }, tp),
      el("td", { "class": "snap" }, snap),
      el("td", { "class": "num" }, [el("span", { "class": t.dead_letters > 0 ? "dead bad" : "dead" }, [count(t.dead_letters)])]),
      el("td", { "class": "err" }, err)
    ]);
  }

  function render(s) {
    var tables = s.tables || [];
    document.title = "replicator · " + s.phase;
    var phase = document.getElementById("phase");
    phase.className = "phase phase-" + s.phase;
    phase.textContent = s.phase + (s.reconnect_attempt ? " · attempt " + s.reconnect_attempt : "");
    document.getElementById("ack").textContent = s.acknowledged || "—";
    var lag = document.getElementById("lag");
    // toggle rather than className, so that no empty class attribute
    // appears where the server rendered none.
    lag.classList.toggle("warn", s.lag_seconds >= readyMaxLag);
    lag.textContent = bytesText(s.lag_bytes) + " · " + dur(s.lag_seconds);
    document.getElementById("uptime").textContent = dur(since(s.now, s.started));
    var note = document.getElementById("standby");
    note.textContent = "standby: " + (s.standby || "");
    note.hidden = !s.standby;
    var banner = document.getElementById("daemon-error");
    banner.textContent = s.last_error || "";
    banner.hidden = !s.last_error;
    var body = el("tbody", { id: "tables" }, tables.map(function (t) { return row(t, s.now); }));
    if (!tables.length) {
      body.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: "6" }, ["No tables are mapped."])]));
    }
    var old = document.getElementById("tables");
    old.parentNode.replaceChild(body, old);
    document.getElementById("updated").textContent = "Data as of " + clock(s.now);
    document.getElementById("failed").textContent = "";
    app.classList.remove("stale");
    app.setAttribute("data-rendered", "js");
  }

  // stale keeps the last figures on screen but dims them and says the
  // update failed, so that a dead daemon does not look like a quiet one.
  function stale(err) {
    app.classList.add("stale");
    var why = err && err.name === "AbortError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : String(err && err.message || err);
    document.getElementById("failed").textContent = " · update failed: " + why;
  }

  // Each poll is scheduled after the previous one settled, so they never pile up.
  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    fetch("status.json", { cache: "no-store", signal: ctl.signal })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(render)
      .catch(stale)
      .finally(function () {
        clearTimeout(timer);
        setTimeout(poll, POLL_MS);
      });
  }
  setTimeout(poll, POLL_MS);
})();
