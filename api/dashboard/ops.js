/* greenwave control centre: the operator's additions (#17), loaded after app.js and using its helpers
 * (S, api, $, $$, svg, esc, can, toast, fmtTime, fmtDT, modal, problemText, showView).
 * - the map: roads coloured live by queue (share of the road's storage), detector occupancy or degree of saturation;
 * - the intersection panel: actual cycle, splits and offset against the running plan, coordination status;
 * - approvals (two-person rule): what waits for a second engineer, approve or reject;
 * - signal performance measures from the stored events: Purdue coordination diagram, split monitor,
 *   arrivals on green, split failure (interactive SVG, same numbers as `greenwave report`).
 * No library, no CDN: plain SVG, so 1,024 intersections and 4,000 roads stay one attribute write per change. */
"use strict";

const GWOPS = (() => {
  const ROAD_COLORS = ["#2f9e5b", "#f2c200", "#ff8a3d", "#e23b3b"];
  const O = { mode: "queue", levels: null, approvalsSeen: false };

  // ---- map: roads coloured live --------------------------------------------------------------------------
  function levelsFor(mode, roads) {
    if (mode === "occupancy") return roads.occupancy.map((v) => (v === null ? -1 : v < 0.15 ? 0 : v < 0.3 ? 1 : v < 0.5 ? 2 : 3));
    if (mode === "saturation") return roads.saturation.map((v) => (v === null ? -1 : v < 0.6 ? 0 : v < 0.8 ? 1 : v < 0.95 ? 2 : 3));
    return roads.level;
  }
  function colourRoads() {
    const roads = S.snap?.roads; if (!roads || !S.net) return;
    const els = O.roadEls || (O.roadEls = $$("#map polyline.road"));
    const lv = levelsFor(O.mode, roads), prev = O.levels || [];
    for (let k = 0; k < els.length && k < lv.length; k++) {
      if (prev[k] === lv[k]) continue; // only what changed: one attribute write per road and tick at most
      const el = els[k];
      el.dataset.level = lv[k];
      el.style.stroke = lv[k] < 0 ? "" : ROAD_COLORS[lv[k]];
    }
    O.levels = lv;
  }
  function roadTitle(k) {
    const r = S.snap?.roads; if (!r) return "";
    const e = S.net.edges[k], f = (v, d = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
    return `${e.id}: queue ${f(r.queue_veh[k], 1)} of ${f(S.net.road_storage_veh?.[k])} veh · occupancy ${f(r.occupancy[k] * 100)} % · x ${f(r.saturation[k], 2)}`;
  }
  function setupMap() {
    O.roadEls = $$("#map polyline.road");
    O.levels = null;
    O.roadEls.forEach((el, k) => {
      el.dataset.road = k; el.dataset.edge = S.net.edges[k].id;
      el.addEventListener("mouseenter", () => { el.setAttribute("title", roadTitle(k)); $("#road-info").textContent = roadTitle(k); });
    });
    const legend = $("#legend");
    if (legend && !$("#road-mode")) {
      const box = document.createElement("div");
      box.className = "road-legend";
      box.innerHTML = `<label>Roads by <select id="road-mode"><option value="queue">queue (share of storage)</option>
        <option value="occupancy">detector occupancy</option><option value="saturation">degree of saturation</option></select></label>
        ${ROAD_COLORS.map((c, k) => `<span><i style="background:${c};border-radius:0"></i>${["low", "", "", "high"][k]}</span>`).join("")}
        <div id="road-info" class="small muted"></div>`;
      legend.appendChild(box);
      $("#road-mode").onchange = () => { O.mode = $("#road-mode").value; O.levels = null; colourRoads(); };
    }
    colourRoads();
  }

  // ---- intersection panel: timing against the plan ------------------------------------------------------
  function timingBox() {
    const x = S.snap?.intersections?.[S.selected]; const p = $("#panel");
    if (!x || !p || !$("#p-status", p)) return;
    let box = $("#p-timing", p);
    if (!box) {
      box = document.createElement("div"); box.id = "p-timing"; box.className = "cmd-box";
      const anchor = $(".groups", p); anchor.parentNode.insertBefore(box, anchor.previousElementSibling);
    }
    const t = x.timing || {}, plan = t.plan;
    const f = (v, u = " s") => (v === null || v === undefined ? "–" : `${v}${u}`);
    const stages = Object.keys({ ...(plan?.splits_s || {}), ...(t.splits_s || {}) });
    box.dataset.coordination = t.coordination || "free";
    box.innerHTML = `<h3>Timing <span class="coord coord-${esc(t.coordination)}" id="p-coord">${esc(t.coordination || "free")}</span></h3>
      <table class="grid small"><thead><tr><th></th><th>Cycle</th><th>Offset</th>${stages.map((s) => `<th>${esc(s)}</th>`).join("")}</tr></thead><tbody>
      <tr><td>actual</td><td id="p-cycle">${f(t.cycle_s)}</td><td>${f(t.offset_s)}</td>${stages.map((s) => `<td>${f(t.splits_s?.[s])}</td>`).join("")}</tr>
      <tr><td>plan</td><td>${plan ? f(plan.cycle_s) : "adaptive"}</td><td>${plan ? f(plan.offset_s) : "–"}</td>${stages.map((s) => `<td>${plan ? f(plan.splits_s[s]) : "–"}</td>`).join("")}</tr>
      </tbody></table>${plan && t.offset_error_s !== null && t.offset_error_s !== undefined ? `<span class="small muted">offset error ${t.offset_error_s} s (coordinated within ±5 s)</span>` : ""}`;
  }

  // ---- approvals ----------------------------------------------------------------------------------------------
  async function loadApprovals() {
    const state = $("#appr-filter").value;
    const rows = await api(`/api/approvals?status=${state}`);
    $("#appr-table tbody").innerHTML = rows.length ? rows.map((a) => `<tr data-approval-id="${a.id}" data-status="${esc(a.status)}">
      <td>#${a.id}</td><td>${esc(a.kind)}${a.plan_id ? ` plan #${a.plan_id}` : ""}</td><td>${esc(a.intersections.join(", "))}</td>
      <td>${a.entries ? esc(a.entries.map((e) => `${e.start} ${e.plan_id ? "#" + e.plan_id : "adaptive"}`).join("; ")) : ""}</td>
      <td>${esc(a.comment)}</td><td>${esc(a.proposed_by)} ${fmtDT(a.proposed_at)}</td>
      <td>${esc(a.status)}${a.decided_by ? ` by ${esc(a.decided_by)}` : ""}${a.decision_note ? `<br><span class="small muted">${esc(a.decision_note)}</span>` : ""}</td>
      <td>${a.status === "pending" ? `<button class="appr-ok primary" data-id="${a.id}" ${can("plan") && a.proposed_by.toLowerCase() !== S.user.username.toLowerCase() ? "" : "disabled title='a second engineer approves'"}>Approve</button>
        <button class="appr-no" data-id="${a.id}" ${can("plan") ? "" : "disabled"}>${a.proposed_by.toLowerCase() === S.user.username.toLowerCase() ? "Withdraw" : "Reject"}</button>` : ""}</td></tr>`).join("")
      : '<tr><td colspan="8" class="muted">nothing waiting</td></tr>';
    $$("#appr-table .appr-ok").forEach((b) => (b.onclick = () => decide(b.dataset.id, true)));
    $$("#appr-table .appr-no").forEach((b) => (b.onclick = () => decide(b.dataset.id, false)));
    if (state === "pending") setBadge(rows.length);
  }
  function setBadge(n) { const b = $("#appr-badge"); if (b) b.textContent = n || ""; }
  async function refreshBadge() { try { setBadge((await api("/api/approvals?status=pending")).length); } catch { /* next time */ } }
  async function decide(id, approve) {
    const ok = await modal(approve ? `Approve #${id}` : `Reject #${id}`,
      `<p>${approve ? "The plan goes live on its intersections now (checked again first)." : "Nothing goes live."}</p><label>Note<br><input id="appr-note" size="44" maxlength="2000"></label>`,
      approve ? "Approve" : "Reject", approve ? "primary" : "danger");
    if (!ok) return;
    try {
      const r = await api(`/api/approvals/${id}/${approve ? "approve" : "reject"}`, { body: { note: $("#appr-note")?.value || "" } });
      const a = r.approval || r;
      $("#appr-result").textContent = approve ? `approved #${id}: ` + (r.activated ? "activated on " + r.activated.map((x) => `${x.intersection} (v${x.version})`).join(", ") : `schedule of ${r.intersection} set`) : `#${id} ${a.status}`;
      toast($("#appr-result").textContent);
    } catch (e) { $("#appr-result").textContent = problemText(e); toast(problemText(e), true); }
    loadApprovals();
  }
  function onActivation(out, el) {
    // The plan editor's answer: live at once (rule off, or an admin's emergency), or waiting for a second engineer.
    if (out.pending) {
      el.textContent = `waiting for approval #${out.pending.id} (a second engineer approves in Approvals)`;
      el.dataset.pending = out.pending.id; toast(`activation #${out.pending.id} waits for a second engineer`); refreshBadge();
      return true;
    }
    return false;
  }

  // ---- measures (ATSPM) from stored events -----------------------------------------------------------------
  const TERM_COLOR = { gap_out: "#35c46a", max_out: "#e23b3b", force_off: "#4aa3ff", unknown: "#d4a017" };
  function axes(el, W, H, L, B, T, R, x0, x1, y0, y1, xfmt, ylabel) {
    const X = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R), Y = (y) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
    svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, el);
    svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, el);
    for (let k = 0; k <= 4; k++) {
      const v = y0 + ((y1 - y0) * k) / 4; const t = svg("text", { x: 4, y: Y(v) + 4, class: "axis-label" }, el); t.textContent = Math.round(v);
      const u = x0 + ((x1 - x0) * k) / 4; const s = svg("text", { x: X(u) - 20, y: H - 6, class: "axis-label" }, el); s.textContent = xfmt(u);
    }
    const yl = svg("text", { x: 4, y: T - 2, class: "axis-label" }, el); yl.textContent = ylabel;
    return [X, Y];
  }
  function tip(el, html) { const t = $("#m-tip"); t.innerHTML = html; t.hidden = false; el.addEventListener("mouseleave", () => (t.hidden = true), { once: true }); }
  function drawPcd(el, pcd, origin) {
    el.innerHTML = "";
    const W = el.clientWidth || 800, H = el.clientHeight || 280, L = 40, R = 10, T = 14, B = 22;
    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const c = pcd.cycles, p = pcd.points;
    if (!c.start_s.length) { const t = svg("text", { x: W / 2 - 80, y: H / 2, class: "axis-label" }, el); t.textContent = "no complete cycle in this window"; return; }
    const x0 = c.start_s[0], x1 = c.end_s[c.end_s.length - 1];
    const ymax = Math.max(...c.end_s.map((e, k) => e - c.start_s[k]), 10);
    const clock = (s) => fmtTime(new Date(new Date(origin).getTime() + s * 1000).toISOString());
    const [X, Y] = axes(el, W, H, L, B, T, R, x0, x1, 0, ymax, clock, "s in cycle");
    // Change lines of each cycle (ATSPM: green = begin green, yellow = begin yellow, red = end of the cycle).
    const line = (key, color) => svg("polyline", { points: c.start_s.map((s, k) => `${X(s)},${Y(c[key][k] - s)}`).join(" "), fill: "none", stroke: color, "stroke-width": 1.5, class: `pcd-${key}` }, el);
    line("green_s", "#35c46a"); line("yellow_s", "#f2c200");
    svg("polyline", { points: c.start_s.map((s, k) => `${X(s)},${Y(c.end_s[k] - s)}`).join(" "), fill: "none", stroke: "#e23b3b", "stroke-width": 1 }, el);
    const kinds = ["red", "green", "yellow"];
    p.t_s.forEach((t, k) => {
      const dot = svg("circle", { cx: X(t), cy: Y(p.y_s[k]), r: 2.6, class: "pcd-dot", fill: "#e8eef5", "data-kind": p.kind[k] }, el);
      dot.addEventListener("mouseenter", () => tip(dot, `arrival ${clock(t)} · ${p.y_s[k].toFixed(1)} s into the cycle · on ${kinds[p.kind[k]] || p.kind[k]}`));
    });
  }
  function drawSplits(el, mon, origin) {
    el.innerHTML = "";
    const W = el.clientWidth || 800, H = el.clientHeight || 220, L = 40, R = 10, T = 14, B = 22;
    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const phases = Object.entries(mon).filter(([, m]) => m.cycles.green_s.length);
    if (!phases.length) return;
    const xs = phases.flatMap(([, m]) => m.cycles.green_s), ys = phases.flatMap(([, m]) => m.cycles.split_s);
    const clock = (s) => fmtTime(new Date(new Date(origin).getTime() + s * 1000).toISOString());
    const [X, Y] = axes(el, W, H, L, B, T, R, Math.min(...xs), Math.max(...xs), 0, Math.max(...ys, 10) * 1.1, clock, "split s");
    for (const [ph, m] of phases) {
      m.cycles.green_s.forEach((t, k) => {
        const term = m.cycles.termination[k];
        const d = svg("circle", { cx: X(t), cy: Y(m.cycles.split_s[k]), r: 3, fill: TERM_COLOR[term] || "#999", class: "split-dot", "data-phase": ph }, el);
        d.addEventListener("mouseenter", () => tip(d, `phase ${ph} · ${clock(t)} · split ${m.cycles.split_s[k].toFixed(1)} s · ${term}`));
      });
    }
  }
  async function loadMeasures() {
    const id = $("#m-inter").value || S.net.intersections[0].id;
    const minutes = Number($("#m-window").value);
    const end = S.snap?.clock ? new Date(new Date(S.snap.clock).getTime() + 1000) : new Date();
    const q = new URLSearchParams({ start: new Date(end.getTime() - minutes * 60000).toISOString(), end: end.toISOString(), bin_s: "300" });
    $("#m-status").textContent = "loading…";
    const m = await api(`/api/intersections/${encodeURIComponent(id)}/measures?${q}`);
    $("#m-status").textContent = `${m.events || 0} stored events`;
    const pcds = m.measures.pcd || {};
    const sel = $("#m-phase"), keys = Object.keys(pcds);
    const keep = keys.includes(sel.value) ? sel.value : keys[0];
    sel.innerHTML = keys.map((k) => `<option value="${esc(k)}" ${k === keep ? "selected" : ""}>${esc(k)} ${esc(m.phase_names?.[k.split("-")[0]] || "")}</option>`).join("");
    const pcdEl = $("#m-pcd");
    pcdEl.dataset.intersection = id;
    if (keep) {
      drawPcd(pcdEl, pcds[keep], m.origin);
      const s = pcds[keep].summary;
      $("#m-aog").innerHTML = `<b>${s.aog_pct === null ? "–" : s.aog_pct.toFixed(0)} %</b> arrivals on green · green time ${s.gt_pct === null ? "–" : s.gt_pct.toFixed(0)} % · platoon ratio ${s.platoon_ratio === null ? "–" : s.platoon_ratio.toFixed(2)} · ${s.arrivals} arrivals in ${s.cycles} cycles · delay ${s.delay_per_vehicle_s === null ? "–" : s.delay_per_vehicle_s.toFixed(1)} s/veh`;
    } else { pcdEl.innerHTML = ""; $("#m-aog").textContent = m.skipped.pcd || m.skipped.all || "no PCD"; }
    drawSplits($("#m-splits"), m.measures.split_monitor || {}, m.origin);
    const sf = m.measures.split_failure;
    $("#m-sf").innerHTML = sf ? `<table class="grid small"><thead><tr><th>Phase</th><th>Cycles</th><th>Split failures</th></tr></thead><tbody>${Object.entries(sf).map(([ph, v]) =>
      `<tr><td>${esc(ph)}</td><td>${v.summary.cycles}</td><td>${v.summary.failures ?? v.summary.split_failures ?? "–"}</td></tr>`).join("")}</tbody></table>`
      : `<span class="muted small">split failure: ${esc(m.skipped.split_failure || "no data")}</span>`;
  }

  // ---- KPI history (stored 30-s samples, paged) ------------------------------------------------------------------
  async function kpiHistory() {
    const hours = Number($("#kpi-range").value);
    const end = S.snap?.clock ? new Date(new Date(S.snap.clock).getTime() + 1000) : new Date();
    const base = { start: new Date(end.getTime() - hours * 3600e3).toISOString(), end: end.toISOString(), limit: "5000" };
    const samples = [];
    for (let after = 0, pages = 0; after !== null && pages < 20; pages++) {
      const r = await api(`/api/history/kpis?${new URLSearchParams({ ...base, after_id: String(after) })}`);
      samples.push(...r.samples); after = r.next_after_id;
    }
    const t = samples.map((x) => new Date(x.at).getTime() / 1000);
    const labels = samples.map((x) => (hours > 24 ? fmtDT(x.at) : fmtTime(x.at)));
    lineChart($("#chart-queue"), t, [{ values: samples.map((x) => x.queue_veh), color: "#f2c200" }], { labels });
    lineChart($("#chart-flow"), t, [{ values: samples.map((x) => x.flow_veh_h), color: "#4aa3ff" }], { labels });
    $("#chart-queue").dataset.samples = samples.length;
    $("#kpi-range-note").textContent = `${samples.length} stored samples (30 s each)`;
  }

  // ---- hooks from app.js ----------------------------------------------------------------------------------------
  function onStatus() { colourRoads(); if (S.selected) timingBox(); }
  function onMap() { setupMap(); }
  function onStart() {
    const opts = S.net.intersections.map((i) => `<option>${esc(i.id)}</option>`).join("");
    if ($("#m-inter")) $("#m-inter").innerHTML = opts;
    refreshBadge();
    if (S.es && !S.es.gwops) { S.es.gwops = true; S.es.addEventListener("approval", () => { refreshBadge(); if (S.view === "approvals") loadApprovals(); }); }
  }
  function init() {
    if ($("#appr-filter")) $("#appr-filter").onchange = loadApprovals;
    if ($("#m-load")) $("#m-load").onclick = () => loadMeasures().catch((e) => toast(e.message, true));
    if ($("#m-phase")) $("#m-phase").onchange = () => loadMeasures().catch((e) => toast(e.message, true));
    if ($("#kpi-range")) $("#kpi-range").onchange = () => { $("#kpi-range-note").textContent = ""; loadKpis().catch((e) => toast(e.message, true)); };
  }
  document.addEventListener("DOMContentLoaded", init);
  return { onStatus, onMap, onStart, onActivation, kpiHistory, views: { approvals: loadApprovals, measures: loadMeasures } };
})();
