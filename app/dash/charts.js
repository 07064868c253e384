/* charts.js - the charts over time, shared by the dashboard and the offline report.
   A sample is [t_s, online, registrations/s, p50 ms, p99 ms, reconnects, errors]. */
"use strict";
function scansimCharts(box) {
  const specs = [
    { title: "devices online", lines: [["online", 1]] },
    { title: "registrations / s", lines: [["registrations/s", 2]] },
    { title: "latency (ms)", lines: [["p50", 3], ["p99", 4]] },
    { title: "reconnects and errors", lines: [["reconnects", 5], ["errors", 6]] },
  ];
  const colors = ["#2a7ab0", "#d9822b", "#3a9a4a", "#b03a3a"];
  const charts = specs.map((spec) => {
    const wrap = document.createElement("div");
    wrap.className = "chart";
    const canvas = document.createElement("canvas");
    wrap.appendChild(canvas);
    box.appendChild(wrap);
    return new Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: spec.lines.map((l, k) => ({
        label: l[0], data: [], borderColor: colors[k], backgroundColor: colors[k],
        pointRadius: 0, borderWidth: 2, tension: 0.1 })) },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { title: { display: true, text: spec.title } },
        scales: { x: { title: { display: true, text: "s" } }, y: { beginAtZero: true } } },
    });
  });
  const MAX = 3600;
  return {
    push(samples) {
      if (!samples || !samples.length) return;
      charts.forEach((c, i) => {
        const cols = specs[i].lines.map((l) => l[1]);
        for (const s of samples) {
          c.data.labels.push(s[0].toFixed(0));
          cols.forEach((col, k) => c.data.datasets[k].data.push(s[col]));
        }
        if (c.data.labels.length > MAX) {
          const cut = c.data.labels.length - MAX;
          c.data.labels.splice(0, cut);
          c.data.datasets.forEach((d) => d.data.splice(0, cut));
        }
        c.update("none");
      });
    },
    resize() { charts.forEach((c) => c.resize()); },
    clear() {
      charts.forEach((c) => { c.data.labels = []; c.data.datasets.forEach((d) => { d.data = []; }); c.update("none"); });
    },
  };
}

/* Draw a 128x64 1-bit frame (SSD1306 page order, base64) on a canvas, pixel for pixel. */
function scansimDrawOled(canvas, b64) {
  const raw = atob(b64);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(128, 64);
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 128; x++) {
      const lit = (raw.charCodeAt((y >> 3) * 128 + x) >> (y & 7)) & 1;
      const o = (y * 128 + x) * 4;
      img.data[o] = lit ? 0x9e : 0x05;
      img.data[o + 1] = lit ? 0xe8 : 0x0b;
      img.data[o + 2] = lit ? 0xff : 0x14;
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}
