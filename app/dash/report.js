/* report.js - draws the offline report from its JSON (dash_report.c): the summary table,
   the charts over time and the latency histogram (run), bars of the points (bench), and a
   timeline per scenario with its steps, expectation results and seed (test). */
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const root = document.getElementById("report");
  const el = (tag, cls, txt) => { const e = document.createElement(tag); if (cls) e.className = cls; if (txt !== undefined) e.textContent = txt; return e; };
  const add = (parent, e) => { parent.appendChild(e); return e; };

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, prefix + k + ".", out);
      else out.push([prefix + k, Array.isArray(v) ? JSON.stringify(v) : String(v)]);
    }
    return out;
  }

  function table(title, obj) {
    add(root, el("h2", null, title));
    const t = add(root, el("table"));
    for (const [k, v] of flatten(obj, "", [])) {
      const tr = add(t, el("tr"));
      add(tr, el("th", null, k));
      add(tr, el("td", null, v));
    }
  }

  function chartBox(title) {
    add(root, el("h2", null, title));
    return add(root, el("div", "charts"));
  }

  function bars(box, title, labels, datasets) {
    const wrap = add(box, el("div", "chart"));
    const colors = ["#2a7ab0", "#d9822b", "#3a9a4a", "#b03a3a", "#7a4ab0"];
    new Chart(add(wrap, el("canvas")), {
      type: "bar",
      data: { labels, datasets: datasets.map((d, k) => Object.assign({ backgroundColor: colors[k % colors.length] }, d)) },
      options: { animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: title } } },
    });
  }

  function histogram(box, h) {
    const labels = h.bounds_ms.map((b) => "\u2264 " + b + " ms").concat(["> " + h.bounds_ms[h.bounds_ms.length - 1] + " ms"]);
    bars(box, "latency publish \u2192 registration (items)", labels, [{ label: "items", data: h.counts }]);
  }

  const STEP = /^\s*\[\s*([0-9.]+)s\]\s+(\S+)\s+(line \d+)?\s*(.*)$/;
  function scenario(s) {
    const st = s.skipped ? "skip" : s.passed ? "pass" : "fail";
    const box = add(root, el("div", "scenario " + st));
    add(box, el("h3", null, `${s.name}: ${s.skipped ? "skipped" : s.passed ? "passed" : "FAILED"} in ${(s.duration_ms / 1000).toFixed(1)} s`));
    if (s.skipped) add(box, el("p", null, s.skip_why));
    const p = add(box, el("p"));
    p.append("seed " + s.seed + " \u00b7 replay: ");
    add(p, el("code", null, `scansim test --seed ${s.seed} ${s.path}`));
    if (s.failure) add(box, el("p", "hint", s.failure));
    const steps = (s.timeline || "").split("\n").map((l) => STEP.exec(l)).filter(Boolean);
    if (!steps.length) return;
    const outcomes = [...new Set(steps.map((m) => m[2]))];
    const colors = { ok: "#3a9a4a", pass: "#3a9a4a", FAIL: "#b03a3a", fail: "#b03a3a" };
    const wrap = add(box, el("div", "chart"));
    new Chart(add(wrap, el("canvas")), {
      type: "scatter",
      data: { datasets: outcomes.map((o, k) => ({ label: o, pointRadius: 5,
        backgroundColor: colors[o] || ["#2a7ab0", "#d9822b", "#7a4ab0", "#5a6478"][k % 4],
        data: steps.map((m, i) => ({ x: +m[1], y: i + 1, o: m[2], t: m[4] })).filter((d) => d.o === o) })) },
      options: { animation: false, maintainAspectRatio: false,
        plugins: { title: { display: true, text: "timeline: steps over time" },
          tooltip: { callbacks: { label: (c) => `${c.raw.x.toFixed(3)} s ${c.raw.o}: ${c.raw.t}` } } },
        scales: { x: { title: { display: true, text: "s" } }, y: { reverse: true, title: { display: true, text: "step" } } } },
    });
    const t = add(box, el("table", "tl"));
    for (const m of steps) {
      const tr = add(t, el("tr"));
      add(tr, el("td", null, m[1] + " s"));
      add(tr, el("td", "o-" + m[2], m[2]));
      add(tr, el("td", null, m[3] || ""));
      add(tr, el("td", null, m[4]));
    }
  }

  if (data.table) table("Summary", data.table);
  if (data.model) {
    const box = chartBox("Over time");
    scansimCharts(box).push(data.model.samples);
    histogram(chartBox("Latency histogram"), data.model.histogram);
  }
  if (data.bars) {
    const box = chartBox(data.bars.title);
    for (const b of data.bars.charts) bars(box, b.title, b.labels, b.datasets);
  }
  if (data.scenarios) {
    add(root, el("h2", null, "Scenarios"));
    data.scenarios.forEach(scenario);
  }
  window.scansimReportDone = true;
})();
