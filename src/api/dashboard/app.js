// rivr's dashboard: renders the snapshots of /events (one a second) and
// keeps each campaign's outcome counts over time for its chart. No
// library, no request beyond this origin. Text from the server (numbers,
// names, log lines) goes in with textContent, never as HTML.
"use strict";

const OUTCOMES = ["answered", "busy", "no_answer", "failed", "dnc", "unknown"];
const COUNTERS = ["contacts", "done", "remaining", "dialed", "in_progress", "waiting",
  "answered", "busy", "no_answer", "failed", "dnc", "texted"];
const SMS_STATES = ["queued", "submitted", "delivered", "failed", "expired", "unknown"];
/** Points a chart keeps: an hour at one a second. */
const MAX_POINTS = 3600;

const $ = (sel, root) => (root || document).querySelector(sel);
const series = new Map(); // campaign id -> [{t, answered, …}]

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function color(name) {
  return getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim() || "#888";
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? m + "m " + String(s % 60).padStart(2, "0") + "s" : s + "s";
}

function setCounts(dl, pairs) {
  dl.replaceChildren(...pairs.map(([k, v]) => {
    const d = el("div");
    d.append(el("dt", k.replace("_", " ")), el("dd", v));
    d.lastChild.dataset.k = k;
    return d;
  }));
}

function renderTiles(s) {
  $("#calls-count").textContent = s.calls.count;
  const by = (dir) => s.calls.by_state.filter((b) => b.direction === dir)
    .reduce((n, b) => n + b.count, 0);
  $("#calls-split").textContent = by("inbound") + " in · " + by("outbound") + " out";
  if (s.rates) {
    $("#cps").textContent = s.rates.started.toFixed(1);
    $("#cps-ended").textContent = s.rates.ended.toFixed(1) + " ended/s";
  }
  const sms = s.sms || {};
  $("#sms-pending").textContent = (sms.queued || 0) + " / " + (sms.submitted || 0);
  $("#sms-final").textContent = (sms.delivered || 0) + " delivered · " + (sms.failed || 0) + " failed";
  $("#errors-count").textContent = s.errors.length;
  $("#errors-last").textContent = s.errors.length ? s.errors[0].text : "";
}

function renderTrunks(trunks) {
  $("#no-trunks").hidden = trunks.length > 0;
  $("#trunks").replaceChildren(...trunks.map((t) => {
    const d = el("div", null, "trunk");
    const head = el("div", null, "trunk-head");
    const name = el("span", t.name);
    name.prepend(el("span", null, "dot" + (t.up ? " up" : "")));
    const use = el("span", t.channels_in_use + " / " + t.max_channels + " channels");
    use.dataset.trunk = t.name;
    head.append(name, use);
    const bar = el("div", null, "progress" + (t.channels_in_use >= t.max_channels ? " full" : ""));
    const fill = el("div", null, "bar");
    fill.style.width = Math.min(100, 100 * t.channels_in_use / Math.max(1, t.max_channels)) + "%";
    bar.append(fill);
    const info = el("div", t.kind + " · " + t.cps + " cps max" +
      (t.registered === null || t.registered === undefined ? "" : t.registered ? " · registered" : " · not registered"),
      "small muted");
    d.append(head, bar, info);
    return d;
  }));
}

function renderSms(sms) {
  setCounts($("#sms"), SMS_STATES.map((k) => [k, (sms || {})[k] || 0]));
}

function renderCalls(c) {
  $("#calls-shown").textContent = c.count > c.list.length
    ? "(first " + c.list.length + " of " + c.count + ")" : "";
  $("#calls tbody").replaceChildren(...c.list.map((x) => {
    const tr = el("tr");
    tr.append(el("td", x.direction), el("td", x.from, "col-from"), el("td", x.to),
      el("td", x.trunk || "–", "col-trunk"), el("td", x.state), el("td", duration(x.duration_ms), "num"));
    return tr;
  }));
}

function renderErrors(errors) {
  $("#no-errors").hidden = errors.length > 0;
  $("#errors").replaceChildren(...errors.map((e) => {
    const li = el("li");
    li.append(el("span", e.level, "lvl " + e.level),
      el("span", new Date(e.t_ms).toLocaleTimeString() + " ", "muted"), el("span", e.text));
    return li;
  }));
}

function campaignNode(c) {
  let node = document.querySelector('article.campaign[data-id="' + CSS.escape(c.id) + '"]');
  if (!node) {
    node = $("#campaign-tpl").content.firstElementChild.cloneNode(true);
    node.dataset.id = c.id;
    const legend = $(".legend", node);
    for (const o of OUTCOMES) {
      const item = el("span", o.replace("_", " "));
      const swatch = el("i");
      swatch.style.background = color(o);
      item.prepend(swatch);
      legend.append(item);
    }
  }
  return node;
}

function renderCampaigns(list, t) {
  $("#no-campaigns").hidden = list.length > 0;
  const nodes = list.map((c) => {
    const node = campaignNode(c);
    $(".name", node).textContent = c.name;
    const st = $(".state", node);
    st.textContent = c.state;
    st.className = "state " + c.state;
    $(".id", node).textContent = c.id;
    const pct = c.contacts ? (100 * c.done / c.contacts) : 0;
    $(".bar", node).style.width = pct + "%";
    $(".progress-text", node).textContent = c.done + " of " + c.contacts + " contacts done (" +
      pct.toFixed(0) + "%) · " + c.in_progress + " on a call now";
    setCounts($(".counters", node), COUNTERS.map((k) => [k, c[k]]));
    let pts = series.get(c.id);
    if (!pts) series.set(c.id, (pts = []));
    const last = pts[pts.length - 1];
    if (!last || last.t < t) {
      pts.push(Object.assign({ t }, ...OUTCOMES.map((o) => ({ [o]: c[o] || 0 }))));
      if (pts.length > MAX_POINTS) pts.shift();
    }
    draw($("canvas", node), pts);
    return node;
  });
  $("#campaigns").replaceChildren(...nodes);
}

/** Stacked areas of the cumulative outcomes against time. */
function draw(canvas, pts) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600;
  const h = Math.round(w * 0.36);
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 40, r: 8, t: 8, b: 20 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const total = (p) => OUTCOMES.reduce((n, o) => n + p[o], 0);
  const max = Math.max(1, ...pts.map(total));
  const t0 = pts.length ? pts[0].t : 0;
  const span = Math.max(1, pts.length ? pts[pts.length - 1].t - t0 : 1);
  const x = (p) => pad.l + pw * (p.t - t0) / span;
  const y = (v) => pad.t + ph * (1 - v / max);
  g.strokeStyle = color("line");
  g.fillStyle = color("muted");
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    g.beginPath();
    g.moveTo(pad.l, y(v) + 0.5);
    g.lineTo(w - pad.r, y(v) + 0.5);
    g.stroke();
    g.fillText(String(v), 4, y(v) + 4);
  }
  const secs = Math.round(span / 1000);
  g.fillText(pts.length > 1 ? "last " + duration(span) : "waiting for data", pad.l, h - 5);
  if (pts.length < 2 || secs < 0) return;
  let below = pts.map(() => 0);
  for (const o of OUTCOMES) {
    const above = pts.map((p, i) => below[i] + p[o]);
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(p), y(above[i])) : g.moveTo(x(p), y(above[i]))));
    for (let i = pts.length - 1; i >= 0; i--) g.lineTo(x(pts[i]), y(below[i]));
    g.closePath();
    g.fillStyle = color(o);
    g.globalAlpha = 0.8;
    g.fill();
    g.globalAlpha = 1;
    below = above;
  }
}

function render(s) {
  if (s.problem) {
    $("#updated").textContent = "rivr: " + s.problem;
    return;
  }
  renderTiles(s);
  renderTrunks(s.trunks || []);
  renderSms(s.sms);
  renderCalls(s.calls);
  renderErrors(s.errors || []);
  renderCampaigns(s.campaigns || [], s.t_ms);
  $("#updated").textContent = "updated " + new Date(s.t_ms).toLocaleTimeString() +
    " · up " + duration(s.uptime_s * 1000);
  document.body.dataset.snapshot = String(s.t_ms);
}

function connect() {
  const link = $("#link");
  const source = new EventSource("/events");
  source.addEventListener("open", () => {
    link.textContent = "live";
    link.className = "link up";
  });
  source.addEventListener("snapshot", (ev) => {
    try {
      render(JSON.parse(ev.data));
    } catch (e) {
      link.textContent = "bad snapshot: " + e;
    }
  });
  source.addEventListener("error", () => {
    link.textContent = "reconnecting…";
    link.className = "link down";
    // Closed for good (a 401 once the token is gone): back to sign-in.
    if (source.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 3000);
  });
}

document.addEventListener("DOMContentLoaded", connect);
