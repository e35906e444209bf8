/* greenwave control centre dashboard: vanilla JavaScript + SVG, no build step, no CDN.
 * Talks to the JSON API (Bearer token from /api/auth/login, kept in sessionStorage) and
 * listens to /api/stream (server-sent events: status, alarm, command). */
"use strict";

const S = {
  token: sessionStorage.getItem("gw.token"),
  user: JSON.parse(sessionStorage.getItem("gw.user") || "null"),
  perms: JSON.parse(sessionStorage.getItem("gw.perms") || "[]"),
  net: null, snap: null, selected: null, detail: null, view: "map",
  es: null, plan: null, planValid: false, savedPlan: null, compare: new Set(),
};
const STATUS_LABEL = { adaptive: "adaptive", fixed: "fixed plan", manual: "manual hold", flash: "flash", comm_loss: "comm loss", fault: "fault" };
const $ = (sel, el = document) => el.querySelector(sel);
const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const can = (p) => S.perms.includes(p);
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");
const fmtDT = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : "");
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

// ---- API ---------------------------------------------------------------------------
async function api(path, opts = {}) {
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  let body = opts.body;
  if (body !== undefined && typeof body !== "string") { body = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, { method: opts.method || (body ? "POST" : "GET"), headers, body });
  if (r.status === 401 && !path.includes("/auth/login")) { logout(false); throw new Error("session expired: log in again"); }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const err = new Error(typeof data?.detail === "string" ? data.detail : `HTTP ${r.status}`);
    err.status = r.status; err.data = data;
    throw err;
  }
  return data;
}
function toast(msg, bad = false) {
  const t = $("#toast");
  t.textContent = msg; t.className = "show" + (bad ? " err" : "");
  clearTimeout(toast.timer); toast.timer = setTimeout(() => (t.className = ""), 3500);
}
function modal(title, html, okLabel = "OK", okClass = "primary") {
  return new Promise((resolve) => {
    $("#modal-title").textContent = title;
    $("#modal-body").innerHTML = html;
    const ok = $("#modal-ok"); ok.textContent = okLabel; ok.className = okClass;
    $("#modal").hidden = false;
    const done = (v) => { $("#modal").hidden = true; ok.onclick = null; $("#modal-cancel").onclick = null; resolve(v); };
    ok.onclick = () => done(true);
    $("#modal-cancel").onclick = () => done(false);
    const first = $("#modal-body input, #modal-body textarea"); if (first) first.focus();
  });
}

// ---- login ---------------------------------------------------------------------------
async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    const r = await api("/api/auth/login", { body: { username: $("#login-user").value, password: $("#login-pass").value } });
    S.token = r.access_token; S.user = r.user; S.perms = r.permissions;
    sessionStorage.setItem("gw.token", S.token);
    sessionStorage.setItem("gw.user", JSON.stringify(S.user));
    sessionStorage.setItem("gw.perms", JSON.stringify(S.perms));
    $("#login-pass").value = "";
    start();
  } catch (e) { $("#login-error").textContent = e.message; }
}
function logout(callServer = true) {
  if (callServer && S.token) api("/api/auth/logout", { method: "POST" }).catch(() => {});
  S.token = null; sessionStorage.clear();
  if (S.es) { S.es.close(); S.es = null; }
  $("#login").hidden = false;
}

async function start() {
  $("#login").hidden = true;
  $("#who").textContent = `${S.user.username} (${S.user.role})`;
  document.body.dataset.role = S.user.role;
  try { S.net = await api("/api/network"); } catch (e) {
    toast(`network not ready: ${e.message}`, true); setTimeout(start, 2000); return;
  }
  drawMap();
  fillIntersectionSelects();
  connectStream();
  refreshAlarms();
  if (typeof GWOPS !== "undefined") GWOPS.onStart();
  showView(location.hash.slice(1) || "map");
}

// ---- live stream ----------------------------------------------------------------------
// The token never goes in a URL: a one-use stream ticket does (POST /api/stream/ticket). The server ends
// the stream with "end" when the token is revoked or expires; a closed stream reconnects with a new ticket.
async function connectStream() {
  if (S.es) { S.es.close(); S.es = null; }
  if (!S.token) return;
  let t;
  try { t = await api("/api/stream/ticket", { method: "POST" }); }
  catch (e) { if (S.token) setTimeout(connectStream, 3000); return; }
  const es = new EventSource(`/api/stream?ticket=${encodeURIComponent(t.ticket)}`);
  S.es = es;
  es.addEventListener("end", () => { es.close(); api("/api/auth/me").then(() => { if (S.es === es) connectStream(); }).catch(() => {}); });
  es.addEventListener("status", (ev) => { S.snap = JSON.parse(ev.data); onStatus(); });
  es.addEventListener("alarm", (ev) => { const a = JSON.parse(ev.data); if (!a.acked_at && a.active) toast(`ALARM ${a.intersection}: ${a.message}`, true); refreshAlarms(); if (a.intersection === S.selected) loadDetail(); });
  es.addEventListener("command", () => { if (S.view === "commands") loadCommands(); if (S.selected) loadDetail(); });
  es.onerror = () => {
    $("#engine-pill").textContent = "reconnecting"; es.close();
    setTimeout(() => { if (S.es === es) connectStream(); }, 2000);
  };
}
function onStatus() {
  const s = S.snap; if (!s) return;
  const pill = $("#engine-pill");
  pill.textContent = `${s.engine}${s.policy ? " · " + s.policy : ""}${s.speed ? " · " + s.speed + "×" : ""}${s.model === "meso" ? " · meso" : ""}`;
  pill.className = `pill ${s.engine}`;
  const twin = s.backend && s.backend !== "modbus" ? "twin " : "";
  $("#clock").textContent = s.clock ? twin + new Date(s.clock).toLocaleTimeString([], { hour12: false }) : "--:--:--";
  const ints = Object.values(s.intersections || {});
  const online = ints.filter((x) => x.status !== "comm_loss").length;
  $("#online").textContent = ints.length ? `${online}/${ints.length} online` : "– online";
  updateMarkers();
  if (S.selected) updateLive();
  if (typeof GWOPS !== "undefined") GWOPS.onStatus();
}

// ---- map ----------------------------------------------------------------------------------
function drawMap() {
  const m = $("#map"); m.innerHTML = "";
  const [x0, y0, x1, y1] = S.net.bounds;
  const pad = 60;
  m.setAttribute("viewBox", `${x0 - pad} ${-(y1 + pad)} ${x1 - x0 + 2 * pad} ${y1 - y0 + 2 * pad}`);
  m.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const roads = svg("g", {}, m);
  for (const e of S.net.edges) {
    const pts = e.shape.map(([x, y]) => `${x},${-y}`).join(" ");
    svg("polyline", { points: pts, class: "road", "stroke-width": 3 + 2.2 * e.lanes }, roads);
  }
  const marks = svg("g", {}, m);
  for (const it of S.net.intersections) {
    const g = svg("g", { class: "marker", "data-intersection": it.id, "data-status": "unknown", transform: `translate(${it.x_m},${-it.y_m})`, tabindex: 0 }, marks);
    svg("circle", { class: "ring", r: 30, visibility: "hidden" }, g);
    svg("circle", { class: "dot st-adaptive", r: 22 }, g);
    const t = svg("text", { x: 28, y: -26 }, g); t.textContent = it.id;
    const title = svg("title", {}, g); title.textContent = it.id;
    g.addEventListener("click", () => selectIntersection(it.id));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") selectIntersection(it.id); });
  }
  $("#legend").innerHTML = Object.entries(STATUS_LABEL).map(([k, v]) => `<span><i class="st-${k}"></i>${v}</span>`).join("") +
    `<span><i style="border:3px solid var(--fault);background:none"></i>alarm</span>`;
  if (typeof GWOPS !== "undefined") GWOPS.onMap();
  S.mapBox = [x0 - pad, -(y1 + pad), x1 - x0 + 2 * pad, y1 - y0 + 2 * pad];
  if (!m.dataset.panZoom) { m.dataset.panZoom = "1"; panZoom(m); }
  crowded(m);
  if (S.net.base_layer) baseLayer(S.net.base_layer, [x0 - pad, y0 - pad, x1 + pad, y1 + pad]).catch((e) => toast("base map: " + e.message));
}

// ---- pan and zoom of the plain map (a city of 1,000 signals needs a district view); with a base
// layer Leaflet does this instead. Wheel zooms about the pointer, drag pans, double-click resets;
// only the viewBox changes, so nothing is redrawn.
// Names are drawn while each has room: up to about 12 markers across the view (150 signals or fewer, or a city zoomed in).
function crowded(m) {
  const n = S.net?.intersections.length || 0, w = Number(m.getAttribute("viewBox").split(" ")[2]);
  m.classList.toggle("crowded", Boolean(S.mapBox) && n > 150 && Math.sqrt(n) * (w / S.mapBox[2]) > 12);
}
function panZoom(m) {
  const box = () => m.getAttribute("viewBox").split(" ").map(Number);
  const at = (ev) => new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.getScreenCTM().inverse());
  m.addEventListener("wheel", (ev) => {
    if (S.baseMap || !S.mapBox) return;
    ev.preventDefault();
    const [x, y, w, h] = box(), p = at(ev);
    const k = Math.min(1.5 * S.mapBox[2], Math.max(S.mapBox[2] / 80, w * (ev.deltaY < 0 ? 0.8 : 1.25))) / w;
    m.setAttribute("viewBox", `${p.x - (p.x - x) * k} ${p.y - (p.y - y) * k} ${w * k} ${h * k}`);
    crowded(m);
  }, { passive: false });
  let drag = null;
  m.addEventListener("pointerdown", (ev) => {
    if (S.baseMap || ev.button !== 0 || ev.target.closest(".marker")) return;
    drag = { p: at(ev), moved: false };
  });
  m.addEventListener("pointermove", (ev) => {
    if (!drag || !(ev.buttons & 1)) { drag = null; return; }
    const [x, y, w, h] = box(), p = at(ev), dx = p.x - drag.p.x, dy = p.y - drag.p.y;
    if (!drag.moved && Math.hypot(dx, dy) * (m.clientWidth / w) < 3) return;
    drag.moved = true;
    m.setAttribute("viewBox", `${x - dx} ${y - dy} ${w} ${h}`);
  });
  m.addEventListener("pointerup", () => { drag = null; });
  m.addEventListener("dblclick", (ev) => {
    if (!S.baseMap && S.mapBox && !ev.target.closest(".marker")) { m.setAttribute("viewBox", S.mapBox.join(" ")); crowded(m); }
  });
}

// ---- optional base layer: locally served tiles under the network (vendored Leaflet, loaded only when configured) ----
function loadOnce(tag, attrs) {
  return new Promise((ok, fail) => {
    const key = attrs.src || attrs.href;
    if (document.querySelector(`[data-vendor="${key}"]`)) return ok();
    const el = Object.assign(document.createElement(tag), attrs);
    el.dataset.vendor = key; el.onload = () => ok(); el.onerror = () => fail(new Error("could not load " + key));
    document.head.appendChild(el);
  });
}
// Local metres (x east, y north, origin at base_layer.origin) to WGS84. Spherical Web Mercator is
// conformal with scale 1 / cos(lat) (Snyder, Map Projections: A Working Manual, 1987, ch. 7), so
// metres near the origin map to Mercator metres by that one factor and the network's SVG, laid on
// the tiles by Leaflet (linear in Mercator), keeps its shape; the error over a 20-km city is < 0.1 %.
function metresToLatLng(origin, x, y) {
  const R = 6378137, lat0 = (origin[0] * Math.PI) / 180, k = 1 / Math.cos(lat0);
  const my = R * Math.log(Math.tan(Math.PI / 4 + lat0 / 2)) + y * k;
  const lat = (2 * Math.atan(Math.exp(my / R)) - Math.PI / 2) * (180 / Math.PI);
  return [lat, origin[1] + ((x * k) / R) * (180 / Math.PI)];
}
async function baseLayer(bl, [x0, y0, x1, y1]) {
  await loadOnce("link", { rel: "stylesheet", href: "/static/vendor/leaflet/leaflet.css" });
  await loadOnce("script", { src: "/static/vendor/leaflet/leaflet.js" });
  const bounds = L.latLngBounds(metresToLatLng(bl.origin, x0, y0), metresToLatLng(bl.origin, x1, y1));
  const m = $("#map");
  m.setAttribute("preserveAspectRatio", "none"); // the overlay's box already has the network's aspect
  if (S.baseMap) { S.baseOverlay.setBounds(bounds); return; }
  const host = document.createElement("div");
  host.id = "basemap"; host.dataset.testid = "basemap";
  $(".map-wrap").prepend(host); $(".map-wrap").classList.add("has-basemap");
  S.baseMap = L.map(host, { zoomSnap: 0.25, minZoom: bl.min_zoom, maxZoom: bl.max_zoom + 2, attributionControl: Boolean(bl.attribution) });
  L.tileLayer(bl.url, { minZoom: bl.min_zoom, maxZoom: bl.max_zoom + 2, minNativeZoom: bl.min_zoom, maxNativeZoom: bl.max_zoom, attribution: bl.attribution || "" }).addTo(S.baseMap);
  S.baseOverlay = L.svgOverlay(m, bounds, { interactive: true }).addTo(S.baseMap);
  S.baseMap.fitBounds(bounds);
}
function updateMarkers() {
  const live = S.snap?.intersections || {};
  for (const g of $$(".marker")) {
    const id = g.dataset.intersection, x = live[id];
    if (!x) continue;
    g.dataset.status = x.status;
    g.dataset.alarms = x.alarms;
    $(".dot", g).setAttribute("class", `dot st-${x.status}`);
    $(".ring", g).setAttribute("visibility", x.alarms > 0 ? "visible" : "hidden");
    $("title", g).textContent = `${id}: ${STATUS_LABEL[x.status] || x.status}${x.stage ? " · stage " + x.stage : ""}${x.alarms ? " · " + x.alarms + " alarm(s)" : ""}`;
    g.classList.toggle("selected", id === S.selected);
  }
}

// ---- intersection panel -------------------------------------------------------------------------
async function selectIntersection(id) {
  S.selected = id;
  updateMarkers();
  await loadDetail();
}
async function loadDetail() {
  if (!S.selected) return;
  const id = S.selected;
  try { S.detail = await api(`/api/intersections/${encodeURIComponent(id)}`); } catch (e) { toast(e.message, true); return; }
  if (id !== S.selected) return;
  renderPanel();
}
function renderPanel() {
  const d = S.detail, p = $("#panel");
  const stages = d.model.stages || [];
  const activePlan = d.active_plan ? `v${d.active_plan.version} (#${d.active_plan.id}) ${esc(d.active_plan.name)}` : "none";
  p.innerHTML = `
    <div class="panel-head"><h2 data-testid="panel-title">${esc(d.id)}</h2><span class="status-pill" id="p-status"></span>
      <span class="spacer"></span><button id="p-close" class="link">close</button></div>
    <dl class="kv">
      <dt>Control</dt><dd id="p-control"></dd>
      <dt>Stage</dt><dd><b id="p-stage" data-testid="stage"></b> for <span id="p-stage-time"></span> s</dd>
      <dt>Supervisor</dt><dd id="p-mode"></dd>
      <dt>Queue</dt><dd><span id="p-queue"></span> veh</dd>
      <dt>Standing mode</dt><dd>${esc(d.standing_mode)} · active plan ${activePlan}</dd>
      <dt>Detectors on</dt><dd id="p-dets"></dd>
    </dl>
    <h3>Signal groups</h3>
    <div class="groups" data-testid="signals">${d.model.groups.map((g, k) =>
      `<div class="grp"><span class="lamp" data-group="${k}"></span><span>${esc(g.label)}</span><span class="muted small">min ${g.min_green_s}s · Y ${g.yellow_s}s</span></div>`).join("")}</div>
    <h3>Stage timeline <span class="muted small">(last 2 min; rows: groups, then detector activity per group)</span></h3>
    <svg class="timeline" id="p-timeline"></svg>
    <div class="cmd-box" id="p-alarms"></div>
    <div class="cmd-box">
      <h3>Command</h3>
      <select id="c-kind">
        <option value="adaptive">adaptive</option>
        <option value="fixed_plan">fixed plan (active plan)</option>
        <option value="hold">manual stage hold</option>
        <option value="flash">flash request</option>
      </select>
      <select id="c-stage" hidden>${stages.map((s) => `<option>${esc(s.id)}</option>`).join("")}</select>
      <label>for <input id="c-min" type="number" min="1" max="1440" value="15" style="width:5em"> min</label>
      <input id="c-reason" placeholder="reason (required)" size="22" maxlength="2000">
      <button id="c-send" class="primary" ${can("command") ? "" : "disabled title='your role cannot command'"}>Send</button>
      <div id="p-cmds" style="width:100%"></div>
    </div>
    <div class="cmd-box">
      <h3>Field (technician)</h3>
      <button id="f-link" ${can("field") ? "" : "disabled title='technician or admin only'"}></button>
      <span class="muted small">Cuts or restores the emulated controller's link (digital twin).</span>
    </div>`;
  $("#p-close").onclick = () => { S.selected = null; $("#panel").innerHTML = '<p class="muted">Select an intersection on the map.</p>'; updateMarkers(); };
  $("#c-kind").onchange = () => { $("#c-stage").hidden = $("#c-kind").value !== "hold"; };
  $("#c-send").onclick = sendCommand;
  $("#f-link").onclick = toggleLink;
  $("#p-alarms").innerHTML = `<h3>Alarms</h3>` + (d.alarms.length ? alarmRowsHtml(d.alarms, true) : '<span class="muted">none</span>');
  bindAckButtons($("#p-alarms"));
  $("#p-cmds").innerHTML = d.commands.length ? `<table class="grid"><tbody>${d.commands.map((c) =>
    `<tr><td>#${c.id} <b>${esc(c.kind)}</b>${c.stage ? " " + esc(c.stage) : ""}</td><td>${esc(c.reason)}</td><td>${esc(c.created_by)}</td>
     <td>until ${fmtTime(c.expires_at)}</td><td><button class="c-cancel" data-id="${c.id}" ${can("command") ? "" : "disabled"}>cancel</button></td></tr>`).join("")}</tbody></table>` : "";
  $$(".c-cancel", p).forEach((b) => (b.onclick = () => cancelCommand(b.dataset.id)));
  updateLive();
  loadTimeline();
}
function updateLive() {
  const d = S.detail; if (!d || d.id !== S.selected || !$("#p-status")) return;
  const x = S.snap?.intersections?.[d.id]; if (!x) return;
  const st = $("#p-status"); st.textContent = STATUS_LABEL[x.status] || x.status; st.className = `status-pill st-${x.status}`;
  st.dataset.status = x.status;
  const c = x.control;
  $("#p-control").textContent = `${c.kind}${c.stage ? " " + c.stage : ""}${c.plan_version ? " plan v" + c.plan_version : ""} (${c.source}${c.expires_at ? " until " + fmtTime(c.expires_at) : ""})`;
  $("#p-stage").textContent = x.stage ?? "—";
  $("#p-stage-time").textContent = x.stage_time_s;
  $("#p-mode").textContent = x.mode + (x.link_down ? ` · link cut (${x.comm_age_s} s)` : "");
  $("#p-queue").textContent = x.queue_veh;
  $("#p-dets").textContent = `${(x.detectors.match(/1/g) || []).length} of ${x.detectors.length}`;
  $$(".lamp", $("#panel")).forEach((l) => {
    const ch = x.signals[+l.dataset.group] || "R";
    l.className = `lamp ${ch}${x.status === "comm_loss" ? " stale" : ""}`; l.dataset.state = ch;
  });
  $("#f-link").textContent = x.link_down ? "Restore controller link" : "Cut controller link";
  $("#f-link").dataset.down = x.link_down ? "1" : "0";
}
async function loadTimeline() {
  if (!S.selected || S.view !== "map") return;
  const id = S.selected;
  try {
    const tl = await api(`/api/intersections/${encodeURIComponent(id)}/timeline?seconds=120`);
    if (id === S.selected) drawTimeline(tl);
  } catch { /* next round */ }
}
const STATE_COLOR = { G: "#35c46a", Y: "#f2c200", R: "#8a2b27", F: "#f0a500" };
function drawTimeline(tl) {
  const el = $("#p-timeline"); if (!el) return;
  el.innerHTML = "";
  const W = el.clientWidth || 480, H = el.clientHeight || 170;
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const ng = tl.groups.length, n = tl.t.length;
  if (!n) return;
  const left = 8, right = W - 40, t1 = tl.t[n - 1], t0 = t1 - 120;
  const x = (t) => left + ((t - t0) / 120) * (right - left);
  const groupOfDet = tl.detector_ids.map((d) => tl.groups.indexOf(d.split("@")[1]));
  const rows = ng * 2, rh = (H - 20) / rows;
  const xEnd = (k) => (k + 1 < n ? x(tl.t[k + 1]) : right);
  const detOn = (k, g) => groupOfDet.some((gd, d) => gd === g && tl.detectors[k][d] === "1");
  for (let g = 0; g < ng; g++) {
    // One rectangle per run of equal states (and per run of detector presence).
    for (let k = 0; k < n; ) {
      let j = k; while (j + 1 < n && tl.signals[j + 1][g] === tl.signals[k][g]) j++;
      svg("rect", { x: x(tl.t[k]), y: 4 + g * rh, width: Math.max(1, xEnd(j) - x(tl.t[k])), height: rh - 2, fill: STATE_COLOR[tl.signals[k][g]] || "#333" }, el);
      k = j + 1;
    }
    for (let k = 0; k < n; ) {
      const on = detOn(k, g);
      let j = k; while (j + 1 < n && detOn(j + 1, g) === on) j++;
      if (on) svg("rect", { x: x(tl.t[k]), y: 4 + (ng + g) * rh + rh * 0.25, width: Math.max(1, xEnd(j) - x(tl.t[k])), height: rh * 0.5, fill: "#4aa3ff" }, el);
      k = j + 1;
    }
  }
  for (let g = 0; g < ng; g++) {
    const t = svg("text", { x: right + 4, y: 4 + g * rh + rh * 0.7, class: "axis-label" }, el); t.textContent = `G${g + 1}`;
    const u = svg("text", { x: right + 4, y: 4 + (ng + g) * rh + rh * 0.7, class: "axis-label" }, el); u.textContent = `D${g + 1}`;
  }
  for (let s = 0; s <= 120; s += 30) {
    const t = svg("text", { x: x(t0 + s) - 10, y: H - 4, class: "axis-label" }, el); t.textContent = `${s - 120}s`;
  }
  // stage changes
  let prev = null;
  for (let k = 0; k < n; k++) {
    if (tl.stage[k] !== prev && tl.stage[k]) {
      const t = svg("text", { x: x(tl.t[k]) + 2, y: H - 14, class: "axis-label" }, el); t.textContent = tl.stage[k];
      svg("line", { x1: x(tl.t[k]), x2: x(tl.t[k]), y1: 2, y2: H - 24, stroke: "#ffffff30" }, el);
    }
    prev = tl.stage[k];
  }
}
async function sendCommand() {
  const kind = $("#c-kind").value, reason = $("#c-reason").value.trim();
  const minutes = Number($("#c-min").value);
  if (!reason) { toast("give a reason for the command", true); $("#c-reason").focus(); return; }
  const body = { intersections: [S.selected], kind, duration_s: Math.round(minutes * 60), reason };
  if (kind === "hold") body.stage = $("#c-stage").value;
  if (kind === "flash") {
    const ok = await modal("Confirm flash request",
      `<p>Put <b>${esc(S.selected)}</b> into <b>flash</b> for ${minutes} min?</p><p class="muted small">The safety supervisor first serves yellow and all-red. The request is audited and expires by itself.</p>`,
      "Confirm flash", "danger");
    if (!ok) return;
    body.confirm = true;
  }
  try {
    const r = await api("/api/commands", { body });
    toast(`command #${r[0].id} ${kind} sent to ${S.selected}`);
    $("#c-reason").value = "";
    loadDetail();
  } catch (e) { toast(problemText(e), true); }
}
async function cancelCommand(id) {
  try { await api(`/api/commands/${id}/cancel`, { method: "POST" }); toast(`command #${id} cancelled`); loadDetail(); if (S.view === "commands") loadCommands(); }
  catch (e) { toast(e.message, true); }
}
async function toggleLink() {
  const down = $("#f-link").dataset.down !== "1";
  try {
    await api(`/api/intersections/${encodeURIComponent(S.selected)}/link`, { body: { down, reason: down ? "comm-loss drill" : "link restored" } });
    toast(down ? `link to ${S.selected} cut` : `link to ${S.selected} restored`);
  } catch (e) { toast(e.message, true); }
}
function problemText(e) {
  const probs = e.data?.problems;
  if (probs) return probs.map((p) => `${p.field}: ${p.message}`).join("; ");
  if (Array.isArray(e.data?.detail)) return e.data.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ");
  return e.message;
}

// ---- alarms ------------------------------------------------------------------------------------
function alarmRowsHtml(alarms, compact = false) {
  return `<table class="grid"><tbody>${alarms.map((a) => `
    <tr class="sev-${a.severity} ${a.acked_at ? "" : "unacked"}" data-alarm-id="${a.id}" data-code="${esc(a.code)}" data-acked="${a.acked_at ? 1 : 0}">
      <td>${["", "CRIT", "HIGH", "MED"][a.severity] || a.severity}${a.escalated_at ? '<br><span class="small" title="escalated: not acknowledged in time">▲ escalated</span>' : ""}</td>
      ${compact ? "" : `<td><a href="#map" class="goto" data-id="${esc(a.intersection)}">${esc(a.intersection)}</a></td>`}
      <td>${esc(a.code)} <span class="muted small">${esc(a.rsmp)}</span><br><span class="small">${esc(a.message)}</span></td>
      <td>${fmtTime(a.raised_at)}</td>
      ${compact ? "" : `<td>${a.cleared_at ? fmtTime(a.cleared_at) : '<b>active</b>'}</td>`}
      <td class="ack-cell">${a.acked_at ? `${esc(a.acked_by)} ${fmtTime(a.acked_at)}${a.ack_note ? `<br><span class="small muted">${esc(a.ack_note)}</span>` : ""}` : ""}</td>
      <td>${a.acked_at ? "" : `<button class="ack" data-id="${a.id}" ${can("ack_alarm") ? "" : "disabled"}>Acknowledge</button>`}
        ${a.acked_at ? "" : a.shelved_until && new Date(a.shelved_until) > new Date() ? `<button class="unshelve" data-id="${a.id}" ${can("ack_alarm") ? "" : "disabled"}>Unshelve</button><br><span class="small muted">shelved until ${fmtTime(a.shelved_until)} by ${esc(a.shelved_by)}</span>`
          : `<button class="shelve" data-id="${a.id}" ${can("ack_alarm") ? "" : "disabled"}>Shelve</button>`}</td>
    </tr>`).join("")}</tbody></table>`;
}
function bindAckButtons(root) {
  $$("button.ack", root).forEach((b) => (b.onclick = () => ackAlarm(b.dataset.id)));
  $$("button.shelve", root).forEach((b) => (b.onclick = () => shelveAlarm(b.dataset.id)));
  $$("button.unshelve", root).forEach((b) => (b.onclick = () => api(`/api/alarms/${b.dataset.id}/unshelve`, { method: "POST" }).then(refreshAlarms, (e) => toast(e.message, true))));
  $$("a.goto", root).forEach((a) => (a.onclick = (ev) => { ev.preventDefault(); showView("map"); selectIntersection(a.dataset.id); }));
}
async function ackAlarm(id) {
  const ok = await modal(`Acknowledge alarm #${id}`, `<label>Note<br><input id="ack-note" size="44" maxlength="2000" placeholder="what you did / why"></label>`, "Acknowledge");
  if (!ok) return;
  try {
    await api(`/api/alarms/${id}/ack`, { body: { note: $("#ack-note")?.value || "" } });
    toast(`alarm #${id} acknowledged`);
    refreshAlarms(); if (S.selected) loadDetail();
  } catch (e) { toast(e.message, true); }
}
async function shelveAlarm(id) {
  const ok = await modal(`Shelve alarm #${id}`, `<p class="small muted">Off the open list for a while; it comes back by itself when the shelf expires.</p>
    <label>Minutes <input id="shelve-min" type="number" min="1" max="10080" value="60" style="width:6em"></label>
    <label>Why<br><input id="shelve-note" size="44" maxlength="2000" placeholder="e.g. detector known broken, crew booked"></label>`, "Shelve");
  if (!ok) return;
  try {
    await api(`/api/alarms/${id}/shelve`, { body: { minutes: Number($("#shelve-min").value), note: $("#shelve-note").value } });
    toast(`alarm #${id} shelved`); refreshAlarms(); if (S.selected) loadDetail();
  } catch (e) { toast(problemText(e), true); }
}
async function refreshAlarms() {
  if (!S.token) return;
  try {
    const open = await api("/api/alarms?state=open");
    const unacked = open.counts.unacked;
    const b = $("#alarm-counter");
    b.textContent = `${open.counts.total} alarm${open.counts.total === 1 ? "" : "s"}${unacked ? ` (${unacked} new)` : ""}`;
    b.classList.toggle("has", unacked > 0);
    $("#alarm-badge").textContent = unacked || "";
    if (S.view === "alarms") {
      const state = $("#alarm-filter").value;
      const r = state === "open" ? open : await api(`/api/alarms?state=${state}`);
      $("#alarm-counts").textContent = `${r.counts.total} shown · ${r.counts.unacked} not acknowledged · ${r.counts.active} active${r.counts.escalated ? ` · ${r.counts.escalated} escalated` : ""}`;
      const tb = $("#alarm-table tbody");
      tb.innerHTML = r.alarms.length ? alarmRowsHtml(r.alarms).replace(/^<table class="grid"><tbody>|<\/tbody><\/table>$/g, "") : '<tr><td colspan="7" class="muted">no alarms</td></tr>';
      bindAckButtons(tb);
    }
  } catch { /* shown elsewhere */ }
}

// ---- plans ----------------------------------------------------------------------------------------
function fillIntersectionSelects() {
  const opts = S.net.intersections.map((i) => `<option>${esc(i.id)}</option>`).join("");
  $("#plan-inter").innerHTML = opts;
  $("#ev-inter").innerHTML = `<option value="">all</option>` + opts;
}
function planInter() { return $("#plan-inter").value; }
async function planModel() {
  if (!S.planModel || S.planModel.id !== planInter()) S.planModel = await api(`/api/intersections/${encodeURIComponent(planInter())}`);
  return S.planModel;
}
async function planFromTemplate() {
  setPlan(await api(`/api/intersections/${encodeURIComponent(planInter())}/plan-template`));
}
async function planLoadActive() {
  const d = await planModel();
  if (!d.active_plan) { toast(`${d.id} has no active plan yet: starting from the template`); return planFromTemplate(); }
  setPlan(d.active_plan.plan);
}
async function setPlan(p) {
  if (p.intersection && p.intersection !== planInter()) return; // a late answer for another intersection
  const d = await planModel();
  if (d.id !== planInter()) return;
  S.plan = JSON.parse(JSON.stringify(p));
  $("#plan-name").value = p.name || "";
  $("#plan-cycle").value = p.cycle_s;
  $("#plan-offset").value = p.offset_s || 0;
  const tb = $("#plan-stages tbody");
  $("#plan-stages").dataset.intersection = d.id;
  const stageOpts = (sel) => d.model.stages.map((s) => `<option ${s.id === sel ? "selected" : ""}>${esc(s.id)}</option>`).join("");
  const groupsOf = (sid) => (d.model.stages.find((s) => s.id === sid)?.groups || []).map((g) => d.model.groups.find((x) => x.id === g)?.label || g).join(", ");
  tb.innerHTML = p.stages.map((s, k) => `<tr data-k="${k}">
      <td>${k}</td><td><select class="ps-stage" data-field="stages[${k}].stage">${stageOpts(s.stage)}</select></td>
      <td class="small muted ps-groups">${esc(groupsOf(s.stage))}</td>
      <td><input class="ps-green" type="number" step="0.1" min="0" value="${s.green_s}" data-field="stages[${k}].green_s" style="width:6em"></td>
      <td><input class="ps-ig" type="number" step="0.1" min="0" value="${s.intergreen_s}" data-field="stages[${k}].intergreen_s" style="width:6em"></td>
      <td><button class="ps-del" data-k="${k}">remove</button></td></tr>`).join("");
  $$(".ps-del", tb).forEach((b) => (b.onclick = () => { const q = readPlan(); q.stages.splice(+b.dataset.k, 1); setPlan(q); }));
  $$("input, select", tb).forEach((el) => (el.oninput = planChanged));
  $$(".ps-stage", tb).forEach((el) => (el.onchange = () => { el.closest("tr").querySelector(".ps-groups").textContent = groupsOf(el.value); planChanged(); }));
  planChanged();
}
function readPlan() {
  const stages = $$("#plan-stages tbody tr").map((tr) => ({
    stage: $(".ps-stage", tr).value, green_s: Number($(".ps-green", tr).value), intergreen_s: Number($(".ps-ig", tr).value),
  }));
  if ($("#plan-cycle-auto").checked) $("#plan-cycle").value = Math.round(stages.reduce((a, s) => a + s.green_s + s.intergreen_s, 0) * 1000) / 1000;
  return { intersection: planInter(), name: $("#plan-name").value, cycle_s: Number($("#plan-cycle").value), offset_s: Number($("#plan-offset").value), stages };
}
function planChanged() {
  readPlan();
  S.planValid = false; $("#plan-save").disabled = true;
  $("#plan-problems").innerHTML = '<span class="muted small">changed: validate before saving</span>';
  $$(".bad").forEach((el) => el.classList.remove("bad"));
}
async function planValidate() {
  const p = readPlan();
  $$(".bad").forEach((el) => el.classList.remove("bad"));
  try {
    const r = await api("/api/plans/validate", { body: p });
    S.planValid = r.valid;
    $("#plan-save").disabled = !r.valid || !can("plan");
    if (r.valid) {
      $("#plan-problems").innerHTML = `<p class="ok" data-valid="1">✔ check_plan: no problems (cycle ${p.cycle_s} s). ${can("plan") ? "Save it as a new version." : "Your role cannot save plans."}</p>`;
    } else {
      showProblems(r.problems);
    }
  } catch (e) {
    if (e.status === 422 && Array.isArray(e.data?.detail)) {
      showProblems(e.data.detail.map((x) => ({ field: x.loc.slice(1).join("."), message: x.msg })));
    } else toast(e.message, true);
  }
}
function showProblems(problems) {
  $("#plan-problems").innerHTML = `<p class="error" data-valid="0">check_plan refused the plan (${problems.length} problem${problems.length === 1 ? "" : "s"}):</p><ul>${problems.map((p) => `<li><code>${esc(p.field)}</code>: ${esc(p.message)}</li>`).join("")}</ul>`;
  for (const p of problems) {
    const el = $(`[data-field="${CSS.escape(p.field)}"]`) || $(`[data-field^="${CSS.escape(p.field)}"]`);
    if (el) el.classList.add("bad");
  }
}
async function planSave() {
  if (!S.planValid) return;
  try {
    const r = await api("/api/plans", { body: { plan: readPlan(), comment: $("#plan-comment").value } });
    S.savedPlan = r;
    toast(`saved ${r.intersection} plan version ${r.version} (#${r.id})`);
    $("#plan-save").disabled = true;
    $("#plan-activate-box").hidden = false;
    $("#plan-saved-label").textContent = `${r.intersection} v${r.version} (#${r.id})`;
    $("#plan-targets").innerHTML = S.net.intersections.map((i) => `<label><input type="checkbox" value="${esc(i.id)}" ${i.id === r.intersection ? "checked" : ""}> ${esc(i.id)}</label>`).join("");
    $("#plan-activate-result").textContent = "";
    loadVersions();
  } catch (e) {
    if (e.data?.problems) showProblems(e.data.problems); else toast(e.message, true);
  }
}
async function planActivate() {
  const r = S.savedPlan; if (!r) return;
  const targets = $$("#plan-targets input:checked").map((i) => i.value);
  if (!targets.length) { toast("select at least one intersection", true); return; }
  try {
    const body = { intersections: targets, comment: $("#plan-activate-comment").value };
    if ($("#plan-emergency")?.checked) body.emergency = true; // admin only; the server refuses anyone else
    const out = await api(`/api/plans/${r.id}/activate`, { body });
    if (typeof GWOPS !== "undefined" && GWOPS.onActivation(out, $("#plan-activate-result"))) return;
    $("#plan-activate-result").textContent = "activated on " + out.activated.map((a) => `${a.intersection} (v${a.version})`).join(", ");
    toast("plan activated");
    S.planModel = null; loadVersions();
  } catch (e) {
    $("#plan-activate-result").textContent = problemText(e);
    toast("activation refused", true);
  }
}
async function loadVersions() {
  const iid = planInter();
  const rows = await api(`/api/plans?intersection=${encodeURIComponent(iid)}`);
  S.compare.clear(); $("#plan-compare").disabled = true; $("#plan-diff").innerHTML = "";
  $("#plan-versions tbody").innerHTML = rows.length ? rows.map((v) => `<tr data-plan-id="${v.id}">
      <td><input type="checkbox" class="pv-pick" value="${v.id}"></td><td>v${v.version}${v.active ? ' <b class="ok">active</b>' : ""}</td><td>#${v.id}</td>
      <td>${esc(v.created_by)}</td><td>${fmtDT(v.created_at)}</td><td>${esc(v.comment)}</td><td>${v.plan.cycle_s} s</td>
      <td><button class="pv-load" data-id="${v.id}">edit copy</button></td></tr>`).join("") : '<tr><td colspan="8" class="muted">no versions yet</td></tr>';
  $$(".pv-pick").forEach((c) => (c.onchange = () => { c.checked ? S.compare.add(+c.value) : S.compare.delete(+c.value); $("#plan-compare").disabled = S.compare.size !== 2; }));
  $$(".pv-load").forEach((b) => (b.onclick = () => setPlan(rows.find((v) => v.id === +b.dataset.id).plan)));
  S.versions = rows;
  loadSchedule();
}
async function planCompare() {
  const [a, b] = [...S.compare].sort((x, y) => x - y);
  const r = await api(`/api/plans/compare?a=${a}&b=${b}`);
  $("#plan-diff").innerHTML = `<h3>#${a} → #${b}</h3>` + (r.diff.length ? `<table class="grid"><thead><tr><th>Field</th><th>Old</th><th>New</th></tr></thead><tbody>${r.diff.map((d) =>
    `<tr><td><code>${esc(d.field)}</code></td><td>${esc(JSON.stringify(d.old))}</td><td>${esc(JSON.stringify(d.new))}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">identical</p>');
}
async function loadSchedule() {
  const s = await api(`/api/intersections/${encodeURIComponent(planInter())}/schedule`);
  renderSchedule(s.entries);
}
function renderSchedule(entries) {
  const opts = (sel) => `<option value="">adaptive</option>` + (S.versions || []).map((v) => `<option value="${v.id}" ${v.id === sel ? "selected" : ""}>plan v${v.version} (#${v.id})</option>`).join("");
  $("#sched-table tbody").innerHTML = entries.map((e) => `<tr><td><input type="time" class="sc-start" value="${esc(e.start)}"></td><td><select class="sc-plan">${opts(e.plan_id)}</select></td><td><button class="sc-del">remove</button></td></tr>`).join("");
  $$(".sc-del").forEach((b) => (b.onclick = () => { b.closest("tr").remove(); }));
}
function readSchedule() {
  return $$("#sched-table tbody tr").map((tr) => ({ start: $(".sc-start", tr).value, plan_id: $(".sc-plan", tr).value ? Number($(".sc-plan", tr).value) : null }));
}
async function saveSchedule() {
  try {
    const out = await api(`/api/intersections/${encodeURIComponent(planInter())}/schedule`, { method: "PUT", body: { entries: readSchedule(), comment: "dashboard" } });
    if (typeof GWOPS !== "undefined" && GWOPS.onActivation(out, $("#sched-result"))) return;
    $("#sched-result").textContent = "saved"; toast("schedule saved");
  } catch (e) { $("#sched-result").textContent = problemText(e); }
}

// ---- commands view -------------------------------------------------------------------------------------
async function loadCommands() {
  const active = $("#cmd-active-only").checked;
  const rows = await api(`/api/commands${active ? "?active=true" : ""}`);
  $("#cmd-table tbody").innerHTML = rows.length ? rows.map((c) => `<tr><td>#${c.id}</td><td>${esc(c.intersection)}</td>
    <td><b>${esc(c.kind)}</b>${c.stage ? " " + esc(c.stage) : ""}${c.plan_id ? " plan #" + c.plan_id : ""}</td><td>${esc(c.reason)}</td>
    <td>${esc(c.created_by)} ${fmtTime(c.created_at)}</td><td>${fmtDT(c.expires_at)}</td><td>${esc(c.status)}${c.ended_by ? " by " + esc(c.ended_by) : ""}</td>
    <td>${c.status === "active" ? `<button class="c-cancel" data-id="${c.id}" ${can("command") ? "" : "disabled"}>cancel</button>` : ""}</td></tr>`).join("")
    : '<tr><td colspan="8" class="muted">no commands</td></tr>';
  $$("#cmd-table .c-cancel").forEach((b) => (b.onclick = () => cancelCommand(b.dataset.id)));
}

// ---- KPIs ------------------------------------------------------------------------------------------------
function lineChart(el, xs, series, opts = {}) {
  el.innerHTML = "";
  const W = el.clientWidth || 600, H = el.clientHeight || 200, L = 46, R = 10, T = 10, B = 22;
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && !Number.isNaN(v));
  if (!xs.length || !all.length) { const t = svg("text", { x: W / 2 - 60, y: H / 2, class: "axis-label" }, el); t.textContent = "collecting data…"; return; }
  const ymax = Math.max(1, ...all) * 1.1, x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R), Y = (y) => H - B - (y / ymax) * (H - T - B);
  svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, el);
  svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, el);
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4, t = svg("text", { x: 2, y: Y(v) + 4, class: "axis-label" }, el); t.textContent = v >= 100 ? Math.round(v) : v.toFixed(1);
  }
  const labels = opts.labels || xs.map(String);
  for (const k of [0, Math.floor(xs.length / 2), xs.length - 1]) { const t = svg("text", { x: X(xs[k]) - 20, y: H - 6, class: "axis-label" }, el); t.textContent = labels[k]; }
  for (const s of series) {
    const pts = xs.map((x, k) => (s.values[k] === null || Number.isNaN(s.values[k]) ? null : `${X(x)},${Y(s.values[k])}`)).filter(Boolean).join(" ");
    svg("polyline", { points: pts, fill: "none", stroke: s.color, "stroke-width": 2 }, el);
  }
}
async function loadKpis() {
  const k = await api("/api/kpis");
  const labels = k.network.clock.map((c) => fmtTime(c));
  if (typeof GWOPS !== "undefined" && $("#kpi-range") && $("#kpi-range").value !== "live") await GWOPS.kpiHistory();
  else {
    lineChart($("#chart-queue"), k.network.t, [{ values: k.network.queue_veh, color: "#f2c200" }], { labels });
    lineChart($("#chart-flow"), k.network.t, [{ values: k.network.flow_veh_h, color: "#4aa3ff" }], { labels });
  }
  const live = S.snap?.intersections || {};
  const f = (v, u = "") => (v === null || v === undefined ? "–" : `${v}${u}`);
  $("#kpi-table tbody").innerHTML = Object.entries(k.intersections).map(([id, x]) => `<tr data-id="${esc(id)}" style="cursor:pointer">
    <td>${esc(id)}</td><td><span class="status-pill st-${live[id]?.status || "adaptive"}">${esc(STATUS_LABEL[live[id]?.status] || "")}</span></td>
    <td>${f(x.mean_queue_veh)}</td><td>${f(x.max_queue_veh)}</td><td>${f(x.flow_veh_h)}</td><td>${f(x.aog_pct, " %")}</td><td>${f(x.central_control_pct, " %")}</td><td>${f(live[id]?.queue_veh)}</td></tr>`).join("");
  $$("#kpi-table tbody tr").forEach((tr) => (tr.onclick = () => kpiSeries(tr.dataset.id)));
  if (S.kpiInter) kpiSeries(S.kpiInter);
}
async function kpiSeries(id) {
  S.kpiInter = id;
  const s = await api(`/api/intersections/${encodeURIComponent(id)}/kpis`);
  $("#kpi-inter-caption").textContent = `${id}: mean queue (yellow), max queue (red), arrivals on green % (green)`;
  lineChart($("#chart-inter"), s.t, [{ values: s.queue_veh, color: "#f2c200" }, { values: s.max_queue_veh, color: "#d9423b" }, { values: s.aog_pct, color: "#35c46a" }], { labels: s.clock.map(fmtTime) });
}

// ---- corridor time-space ---------------------------------------------------------------------------------------
async function loadCorridor() {
  const c = S.net.corridor, el = $("#tsd");
  if (!c) { $("#corridor-label").textContent = "no corridor in this network"; return; }
  const win = Number($("#corridor-window").value);
  $("#corridor-label").textContent = `${c.intersections.join(" → ")} · ${c.length_m} m · ${Math.round(c.speed_m_s * 3.6)} km/h`;
  const tls = await Promise.all(c.intersections.map((id) => api(`/api/intersections/${encodeURIComponent(id)}/timeline?seconds=${win}`)));
  el.innerHTML = "";
  const W = el.clientWidth || 900, H = el.clientHeight || 520, L = 60, R = 20, T = 20, B = 30;
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const tEnd = Math.max(...tls.map((t) => (t.t.length ? t.t[t.t.length - 1] : 0))), t0 = tEnd - win;
  const dmax = c.length_m || Math.max(...c.distance_m) + 100;
  const X = (t) => L + ((t - t0) / win) * (W - L - R), Y = (d) => H - B - (d / dmax) * (H - T - B);
  svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, el);
  svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, el);
  for (let s = 0; s <= win; s += 60) { const t = svg("text", { x: X(t0 + s) - 12, y: H - 10, class: "axis-label" }, el); t.textContent = `${s - win}s`; }
  const greens0 = [];
  c.intersections.forEach((id, k) => {
    const tl = tls[k], d = c.distance_m[k], gi = Math.max(0, tl.groups.indexOf(c.through_group[k]));
    const lab = svg("text", { x: 4, y: Y(d) + 4, class: "axis-label" }, el); lab.textContent = `${id} ${Math.round(d)}m`;
    const m = tl.t.length, xe = (j) => (j + 1 < m ? X(tl.t[j + 1]) : X(tEnd + 1));
    for (let j = 0; j < m; ) {
      const ch = tl.signals[j][gi];
      let e = j; while (e + 1 < m && tl.signals[e + 1][gi] === ch) e++;
      const xa = Math.max(L, X(tl.t[j]));
      if (xe(e) > L) svg("rect", { x: xa, y: Y(d) - 5, width: Math.max(1, xe(e) - xa), height: 10, fill: ({ G: "#35c46a", Y: "#f2c200", R: "#d9423b" })[ch] || "#666" }, el);
      if (k === 0 && ch === "G" && j > 0 && X(tl.t[j]) >= L) greens0.push(tl.t[j]);
      j = e + 1;
    }
  });
  const d0 = c.distance_m[0], dN = c.distance_m[c.distance_m.length - 1];
  const clip = svg("clipPath", { id: "tsd-clip" }, svg("defs", {}, el));
  svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B }, clip);
  for (const tg of greens0) {
    const t2 = tg + (dN - d0) / c.speed_m_s;
    svg("line", { x1: X(tg), y1: Y(d0), x2: X(t2), y2: Y(dN), stroke: "#9fe3b5", "stroke-dasharray": "5 4", "stroke-width": 1.5, "clip-path": "url(#tsd-clip)" }, el);
  }
}

// ---- events, audit ------------------------------------------------------------------------------------------------
function eventsQuery(fmt) {
  const p = new URLSearchParams();
  if ($("#ev-inter").value) p.set("intersection", $("#ev-inter").value);
  if ($("#ev-codes").value.trim()) p.set("codes", $("#ev-codes").value.replace(/\s/g, ""));
  const end = S.snap?.clock ? new Date(S.snap.clock) : new Date();
  p.set("end", new Date(end.getTime() + 1000).toISOString());
  p.set("start", new Date(end.getTime() - Number($("#ev-minutes").value) * 60000).toISOString());
  p.set("limit", fmt === "csv" ? "200000" : "100"); p.set("format", fmt);
  if (fmt === "json") {
    // A page of 100, newest first; the window stays where the first page put it while paging.
    if (S.evWindow && S.evPage > 0) { p.set("start", S.evWindow.start); p.set("end", S.evWindow.end); }
    p.set("order", "desc"); p.set("offset", String((S.evPage || 0) * 100));
  }
  return `/api/events?${p}`;
}
async function loadEvents() {
  try {
    const r = await api(eventsQuery("json"));
    S.evWindow = { start: r.start, end: r.end };
    const page = S.evPage || 0, pages = Math.max(1, Math.ceil(r.total / 100));
    $("#ev-page").textContent = `page ${page + 1} of ${pages} (${r.total} events)`;
    $("#ev-prev").disabled = page === 0; $("#ev-next").disabled = r.next_offset === null;
    $("#ev-table tbody").innerHTML = r.events.length ? r.events.map((e) => `<tr><td class="mono">${esc(e[0])}</td><td>${esc(e[1])}</td><td>${e[2]}</td><td>${e[3]}</td></tr>`).join("")
      : '<tr><td colspan="4" class="muted">no events in this window (events are written every few seconds)</td></tr>';
  } catch (e) { toast(e.message, true); }
}
async function downloadCsv() {
  const r = await fetch(eventsQuery("csv"), { headers: { Authorization: `Bearer ${S.token}` } });
  const blob = await r.blob(), a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = "greenwave-events.csv"; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}
async function loadAudit() {
  const act = $("#audit-action").value.trim();
  const rows = await api(`/api/audit?limit=300${act ? "&action=" + encodeURIComponent(act) : ""}`);
  $("#audit-table tbody").innerHTML = rows.map((e) => `<tr data-action="${esc(e.action)}" data-target="${esc(e.target)}"><td>${fmtDT(e.at)}</td><td>${esc(e.username)}</td>
    <td><b>${esc(e.action)}</b></td><td>${esc(e.target)}</td><td class="mono small">${esc(JSON.stringify(e.detail))}</td></tr>`).join("");
}

// Accounts (admin): disable/enable, role, password reset; each is audited by the server.
const ROLES = ["viewer", "operator", "technician", "engineer", "admin"];
async function loadUsers() {
  if (!can("users")) return;
  const rows = await api("/api/users");
  $("#users-table tbody").innerHTML = rows.map((u) => `<tr data-user="${esc(u.username)}"><td>${esc(u.username)}</td>
    <td><select class="u-role" aria-label="role of ${esc(u.username)}">${ROLES.map((r) => `<option${r === u.role ? " selected" : ""}>${r}</option>`).join("")}</select></td>
    <td>${u.active ? "yes" : "<b>disabled</b>"}</td><td>${fmtDT(u.created_at)}</td><td>${esc(u.created_by)}</td>
    <td><button class="u-active">${u.active ? "Disable" : "Enable"}</button> <button class="u-reset">Reset password</button></td></tr>`).join("");
  $$("#users-table tbody tr").forEach((tr) => {
    const name = tr.dataset.user, active = !tr.querySelector(".u-active").textContent.startsWith("Enable");
    const act = (body, what) => api(`/api/users/${encodeURIComponent(name)}`, { method: "PATCH", body })
      .then(() => { toast(`${name}: ${what}`); loadUsers(); }).catch((e) => { toast(problemText(e), true); loadUsers(); });
    tr.querySelector(".u-role").onchange = (ev) => act({ role: ev.target.value }, `role ${ev.target.value}`);
    tr.querySelector(".u-active").onclick = async () => {
      if (active && !(await modal(`Disable ${name}?`, "<p>The account can no longer log in and its open sessions end.</p>", "Disable", "danger"))) return;
      act({ active: !active }, active ? "disabled" : "enabled");
    };
    tr.querySelector(".u-reset").onclick = async () => {
      if (!(await modal(`New password for ${name}`, '<input id="u-newpass" type="password" autocomplete="new-password" placeholder="12+ characters, not a common one">'))) return;
      api(`/api/users/${encodeURIComponent(name)}/password`, { body: { password: $("#u-newpass").value } })
        .then(() => toast(`${name}: password reset, sessions ended`)).catch((e) => toast(problemText(e), true));
    };
  });
}
// One's own password (any role): the other sessions end, this one stays.
async function changeOwnPassword() {
  const ok = await modal("Change your password", '<input id="pw-current" type="password" autocomplete="current-password" placeholder="current password"> '
    + '<input id="pw-new" type="password" autocomplete="new-password" placeholder="new password (12+ characters)">');
  if (!ok) return;
  api("/api/auth/password", { body: { current_password: $("#pw-current").value, new_password: $("#pw-new").value } })
    .then(() => toast("password changed; your other sessions have ended")).catch((e) => toast(problemText(e), true));
}
async function createUser(ev) {
  ev.preventDefault();
  try {
    const u = await api("/api/users", { body: { username: $("#nu-name").value, password: $("#nu-pass").value, role: $("#nu-role").value } });
    $("#nu-result").textContent = `created ${u.role} ${u.username}`; $("#nu-pass").value = ""; loadUsers();
  } catch (e) { $("#nu-result").textContent = problemText(e); }
}

// ---- views and timers ---------------------------------------------------------------------------------------------
function showView(v) {
  if (!$(`#view-${v}`)) v = "map";
  S.view = v;
  $$(".view").forEach((el) => el.classList.toggle("active", el.id === `view-${v}`));
  $$("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === v));
  if (location.hash !== `#${v}`) history.replaceState(null, "", `#${v}`);
  refreshView();
}
function refreshView() {
  const v = S.view;
  const run = { alarms: refreshAlarms, commands: loadCommands, kpis: loadKpis, corridor: loadCorridor, audit: loadAudit, events: loadEvents, users: loadUsers,
    plans: () => (S.plan && S.plan.intersection === planInter() ? loadVersions() : planLoadActive().then(loadVersions)), map: loadTimeline }[v]
    || (typeof GWOPS !== "undefined" ? GWOPS.views[v] : undefined);
  if (run) Promise.resolve(run()).catch((e) => toast(e.message, true));
}

function init() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").onclick = () => logout(true);
  $$("#tabs button").forEach((b) => (b.onclick = () => showView(b.dataset.view)));
  $("#alarm-counter").onclick = () => showView("alarms");
  $("#alarm-filter").onchange = refreshAlarms;
  $("#plan-inter").onchange = () => { S.planModel = null; S.plan = null; $("#plan-activate-box").hidden = true; planLoadActive().then(loadVersions); };
  $("#plan-template").onclick = () => planFromTemplate();
  $("#plan-load-active").onclick = () => planLoadActive();
  $("#plan-add-stage").onclick = async () => { const d = await planModel(); const q = readPlan(); q.stages.push({ stage: d.model.stages[0].id, green_s: 20, intergreen_s: 3 }); setPlan(q); };
  ["#plan-name", "#plan-cycle", "#plan-offset"].forEach((s) => ($(s).oninput = planChanged));
  $("#plan-cycle-auto").onchange = planChanged;
  $("#plan-validate").onclick = planValidate;
  $("#plan-save").onclick = planSave;
  $("#plan-activate").onclick = planActivate;
  $("#plan-compare").onclick = planCompare;
  $("#sched-add").onclick = () => renderSchedule([...readSchedule(), { start: "07:00", plan_id: null }]);
  $("#sched-save").onclick = saveSchedule;
  $("#cmd-active-only").onchange = loadCommands;
  $("#corridor-window").onchange = loadCorridor;
  $("#ev-load").onclick = () => { S.evPage = 0; loadEvents(); };
  $("#ev-prev").onclick = () => { S.evPage = Math.max(0, (S.evPage || 0) - 1); loadEvents(); };
  $("#ev-next").onclick = () => { S.evPage = (S.evPage || 0) + 1; loadEvents(); };
  $("#ev-csv").onclick = downloadCsv;
  $("#audit-load").onclick = loadAudit;
  $("#user-form").addEventListener("submit", createUser);
  $("#change-password").onclick = changeOwnPassword;
  window.addEventListener("hashchange", () => showView(location.hash.slice(1)));
  setInterval(() => { if (!S.token) return; if (S.view === "map") loadTimeline(); }, 2000);
  setInterval(() => { if (!S.token) return; if (["kpis", "corridor", "commands"].includes(S.view)) refreshView(); refreshAlarms(); }, 10000);
  fetch("/healthz").then((r) => r.json()).then((h) => { $("#login-hint").textContent = `engine: ${h.engine}${h.demo ? " · demo mode (the demo users are printed by greenwave serve)" : ""}`; }).catch(() => {});
  if (S.token && S.user) start(); else $("#login").hidden = false;
}
document.addEventListener("DOMContentLoaded", init);
