/* app.js - the dashboard page: one Server-Sent Events stream carries every change (the
   summary, new chart samples, the items when they changed, the shown page of devices with
   the OLEDs that changed); nothing is polled. The item form checks what the firmware
   checks before it posts, and shows the server's reason when it refuses. */
"use strict";
const NAME_MAX = 32, QTY_MIN = 1, QTY_MAX = 100000;
const $ = (id) => document.getElementById(id);
let charts = null, stream = null, fresh = true, layout = "", view = { q: "", page: 0, per: 48, items: "all" };
const cards = new Map();

function show() {
  const tab = (location.hash || "#items").slice(1);
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== tab;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.hash === "#" + tab);
  if (tab === "charts" && charts) charts.resize();
}

function text(el, s) { el.textContent = s; return el; }
function cell(tr, s, cls) { const td = text(document.createElement("td"), s); if (cls) td.className = cls; tr.appendChild(td); }

function summary(s) {
  layout = s.layout;
  text($("cmd"), s.command + " \u00b7 " + s.layout + " layout");
  let t = `online ${s.online}/${s.devices}`;
  if (s.have_ledger) t += ` \u00b7 items ${s.published} published, ${s.registered} registered, ${s.twice} twice, ${s.lost} not yet` +
    ` \u00b7 ${s.rate.toFixed(0)}/s \u00b7 p50 ${s.p50.toFixed(1)} ms p99 ${s.p99.toFixed(1)} ms`;
  t += ` \u00b7 reconnects ${s.reconnects} \u00b7 errors ${s.errors}`;
  text($("summary"), t);
  const seed = s.layout === "seed";
  $("f-device").disabled = seed;
  text($("layout-hint"), seed ? "Seed layout: every item goes to every device, as in the seed (device: all)."
    : "Per-device layout: an item goes to one device, or one item to each device with \u201call\u201d.");
}

function items(list, filter, total) {
  const body = $("items-table").tBodies[0];
  body.textContent = "";
  for (const it of list) {
    const tr = document.createElement("tr");
    tr.className = "st-" + it.state;
    cell(tr, "#" + it.id); cell(tr, it.name); cell(tr, String(it.qty)); cell(tr, it.to || "all");
    cell(tr, it.state === "twice" ? `twice (${it.count} registrations)` : it.state, "state");
    cell(tr, it.regs.map((r) => `${r[0]} (${r[1]})`).join(", "));
    cell(tr, it.latency_ms >= 0 ? it.latency_ms.toFixed(1) + " ms" : "");
    body.appendChild(tr);
  }
  const what = filter === "all" ? "" : ` ${$("items-filter").selectedOptions[0].text}`;
  text($("items-count"), `(newest ${list.length} of ${total}${what})`);
}

function card(row) {
  let c = cards.get(row.i);
  if (!c) {
    const el = document.createElement("div");
    el.className = "dev";
    el.innerHTML = '<div class="head"><b></b><span class="badge"></span></div><canvas width="128" height="64"></canvas><div class="nums"></div>';
    c = { el, id: el.querySelector("b"), badge: el.querySelector(".badge"), canvas: el.querySelector("canvas"), nums: el.querySelector(".nums") };
    cards.set(row.i, c);
  }
  text(c.id, row.id);
  text(c.badge, row.online ? "online" : row.state);
  c.badge.className = "badge " + (row.online ? "on" : "off");
  text(c.nums, `items ${row.rx} \u00b7 registered ${row.reg} \u00b7 queue ${row.queue} \u00b7 dup ${row.dup}\n` +
    `connects ${row.conn} \u00b7 losses ${row.lost} \u00b7 rejects ${row.rej} \u00b7 seen ${row.seen_s < 0 ? "never" : row.seen_s.toFixed(0) + " s ago"}`);
  if (row.fb) scansimDrawOled(c.canvas, row.fb);
  return c;
}

function devices(d) {
  const grid = $("dev-grid");
  const keep = new Set(d.rows.map((r) => r.i));
  for (const k of cards.keys()) if (!keep.has(k)) { cards.get(k).el.remove(); cards.delete(k); }
  d.rows.forEach((r, k) => { const c = card(r); if (grid.children[k] !== c.el) grid.insertBefore(c.el, grid.children[k] || null); });
  const pages = Math.max(1, Math.ceil(d.matches / d.per));
  text($("dev-page"), ` page ${d.page + 1} of ${pages} `);
  text($("dev-count"), `(${d.matches} of ${d.total})`);
  $("dev-prev").disabled = d.page <= 0;
  $("dev-next").disabled = d.page + 1 >= pages;
  text($("dev-remote"), d.remote);
  const ids = $("device-ids");
  if (!ids.children.length || ids.dataset.page !== String(d.page)) {
    ids.textContent = "";
    ids.dataset.page = String(d.page);
    for (const r of d.rows) { const o = document.createElement("option"); o.value = r.id; ids.appendChild(o); }
  }
}

function connect() {
  if (stream) stream.close();
  cards.forEach((c) => c.el.remove());
  cards.clear();
  const p = new URLSearchParams({ q: view.q, page: view.page, per: view.per, items: view.items });
  stream = new EventSource("events?" + p);
  stream.onopen = () => { fresh = true; };
  stream.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (fresh) charts.clear(); /* a new stream sends every sample again */
    fresh = false;
    summary(m.summary);
    if (m.items) items(m.items, m.items_filter, m.items_total);
    devices(m.devices);
    charts.push(m.samples);
  };
  stream.onerror = () => text($("summary"), "connection lost: retrying...");
  /* The server says it is stopping (the run ended): no retry, and the last figures stay. */
  stream.addEventListener("end", () => {
    stream.close();
    text($("summary"), $("summary").textContent + " (the run has ended)");
  });
}

/* The firmware's rules (fw_codec.h): a name of 1..32 bytes of UTF-8, 1..100000 tags. */
function check(form) {
  const name = form.name.value, bytes = new TextEncoder().encode(name).length;
  if (bytes < 1 || bytes > NAME_MAX) return `name: 1 to ${NAME_MAX} bytes (the firmware's limit), got ${bytes}`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return "name: control characters are not allowed";
  const q = form.quantity.value;
  if (!/^[0-9]+$/.test(q) || +q < QTY_MIN || +q > QTY_MAX) return `quantity: a whole number from ${QTY_MIN} to ${QTY_MAX}`;
  return "";
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.target, msg = $("form-msg");
  const why = check(form);
  msg.className = why ? "bad" : "";
  if (why) return text(msg, why);
  const body = new URLSearchParams({ name: form.name.value, quantity: form.quantity.value,
    device: layout === "seed" ? "all" : form.device.value || "all" });
  const r = await fetch("api/items", { method: "POST", body, headers: { "X-Scansim": "1" } });
  const j = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  msg.className = r.ok ? "good" : "bad";
  text(msg, r.ok ? `created \u201c${form.name.value}\u201d` : j.error);
}

window.addEventListener("hashchange", show);
window.addEventListener("load", () => {
  charts = scansimCharts($("chart-box"));
  $("item-form").addEventListener("submit", submit);
  let timer = 0;
  $("dev-q").addEventListener("input", (e) => { clearTimeout(timer); timer = setTimeout(() => { view.q = e.target.value; view.page = 0; connect(); }, 200); });
  $("dev-prev").addEventListener("click", () => { view.page = Math.max(0, view.page - 1); connect(); });
  $("dev-next").addEventListener("click", () => { view.page++; connect(); });
  $("dev-per").addEventListener("change", (e) => { view.per = +e.target.value; view.page = 0; connect(); });
  $("items-filter").addEventListener("change", (e) => { view.items = e.target.value; connect(); });
  show();
  connect();
});
