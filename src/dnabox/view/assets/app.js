// dnabox view: one small module, no build step, no external URL (air-gapped sites).
// Reads /api/* and follows /api/events (Server-Sent Events). Read-only.

const STATES = ["converged", "pending", "drifted", "failed", "unreachable", "locked", "unknown"];
const state = { fleet: null, run: null, svgLoaded: false, dna: null, expanded: new Set() };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function getJSON(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function legend() {
  $("legend").replaceChildren(...STATES.map((s) => el("span", { class: `state-${s}` }, el("i"), s)));
}

// The topology is the same Graphviz drawing as `dnabox inventory graph`; nodes are found by
// their id (box-NAME / site-NAME) or, failing that, by their title, and coloured by state.
async function loadTopology() {
  const query = [...state.expanded].map((s) => `expand=${encodeURIComponent(s)}`).join("&");
  const response = await fetch(`/api/topology.svg${query ? `?${query}` : ""}`);
  if (!response.ok) { $("topology").textContent = "topology unavailable"; return; }
  const text = await response.text();
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  $("topology").replaceChildren(document.importNode(svg, true));
  state.svgLoaded = true;
  paintTopology();
}

function nodeName(g) {
  if (g.id && (g.id.startsWith("box-") || g.id.startsWith("site-"))) return g.id;
  const title = g.querySelector(":scope > title");
  return title ? `box-${title.textContent.trim()}` : "";
}

// Sites and boxes by their drawing id; cut overlay links by the site pair in the edge's id
// (link-OVERLAY__A__B).
function paintTopology() {
  if (!state.svgLoaded || !state.fleet) return;
  const boxes = new Map(state.fleet.boxes.map((b) => [`box-${b.name}`, b]));
  const sites = new Map(state.fleet.sites.map((s) => [`site-${s.name}`, s]));
  for (const g of document.querySelectorAll("#topology g.node, #topology g.cluster")) {
    const key = nodeName(g);
    const item = boxes.get(key) || sites.get(key);
    if (!item) continue;
    for (const s of STATES) g.classList.remove(`state-${s}`);
    g.classList.add("live", `state-${item.state}`);
    g.dataset.state = item.state;
    if (boxes.has(key)) g.onclick = () => { location.hash = `#/box/${boxes.get(key).name}`; };
    else if (g.classList.contains("collapsed")) {
      g.onclick = () => { state.expanded.add(sites.get(key).name); loadTopology(); };
    }
  }
  const cut = new Set(state.fleet.links.filter((l) => l.loss !== null && l.loss >= 1)
    .map((l) => `${l.a}__${l.b}`));
  for (const g of document.querySelectorAll("#topology g.edge")) {
    const pair = g.id.split("__").slice(1).join("__");
    g.classList.toggle("cut", cut.has(pair));
  }
}

function renderFleet() {
  const fleet = state.fleet;
  if (!fleet) return;
  $("fleet-name").textContent = fleet.fleet;
  $("read-at").textContent = fleet.offline ? "offline: boxes are not read"
    : fleet.read_at ? `read ${new Date(fleet.read_at * 1000).toLocaleTimeString()}`
    : "reading the boxes...";
  $("locked").classList.toggle("hidden", !fleet.locked);
  const bySite = new Map();
  for (const box of fleet.boxes) {
    if (!bySite.has(box.site)) bySite.set(box.site, []);
    bySite.get(box.site).push(box);
  }
  const order = { core: 0, edge: 1, end: 2 };
  const sites = [...fleet.sites].sort((a, b) => order[a.tier] - order[b.tier] || a.name.localeCompare(b.name));
  $("sites").replaceChildren(...sites.map((site) => {
    const members = bySite.get(site.name) || [];
    const counts = Object.entries(site.states).map(([s, n]) => `${n} ${s}`).join(", ");
    const details = el("details", { class: `site state-${site.state}`, "data-site": site.name },
      el("summary", {}, el("b", {}, site.name), ` (${site.tier}, ${site.boxes} boxes: ${counts || "none"})`),
      el("div", { class: "chips" }, ...members.map((box) =>
        el("a", { class: `chip state-${box.state}`, href: `#/box/${box.name}`, "data-box": box.name,
                  "data-state": box.state, title: box.error || box.pending.join(", ") || box.state },
           el("i"), `${box.name} · ${box.state}`))));
    if (members.length <= 60) details.open = true;
    return details;
  }));
  const worstFirst = [...fleet.links].sort((x, y) => (y.loss ?? -1) - (x.loss ?? -1));
  const rows = worstFirst.map((link) => {
    const cut = link.loss !== null && link.loss >= 1;
    return el("tr", { class: cut ? "cut" : "", "data-link": `${link.a}--${link.b}` },
      el("td", {}, `${link.a} ↔ ${link.b}`),
      el("td", {}, link.latency_ms === null ? (cut ? "cut" : "–") : `${link.latency_ms.toFixed(2)} ms`),
      el("td", {}, link.loss === null ? "–" : `${Math.round(link.loss * 100)}%`));
  });
  $("links").tBodies[0].replaceChildren(...rows);
  paintTopology();
}

function renderRun() {
  const run = state.run;
  if (!run) return;
  const panel = $("run-panel");
  const sites = Object.entries(run.sites).sort();
  panel.replaceChildren(
    el("h2", {}, `Run ${run.run} · `, el("span", { id: "run-status", "data-status": run.status }, run.status)),
    ...sites.map(([site, p]) => el("div", { class: "site-progress", "data-site": site },
      el("div", {}, `${site}: ${p.done}/${p.total}`, p.running ? ` · running ${p.running}` : ""),
      el("div", { class: `bar ${p.failed ? "failed" : ""}` },
         el("div", { style: `width:${p.total ? (100 * p.done) / p.total : 0}%` })))),
    ...(run.failures.length ? [el("h2", {}, "Failures"),
      el("ul", { id: "run-failures" }, ...run.failures.map((f) => el("li", {}, `${f.unit || f.box}: ${f.message}`)))] : []));
}

// Fold a live event into the run shown (the server folds the same way for /api/runs).
function foldEvent(event) {
  if (event.kind === "run" && event.status === "started") {
    state.run = { run: event.run, status: "running", sites: {}, failures: [], units: {} };
    for (const unit of (event.data && event.data.units) || []) {
      const site = unit.site || "(fleet)";
      state.run.units[unit.id] = site;
      state.run.sites[site] = state.run.sites[site] || { total: 0, done: 0, failed: 0, running: null };
      state.run.sites[site].total += 1;
    }
  }
  const run = state.run;
  if (!run || run.run !== event.run) return;
  if (event.kind === "unit") {
    const site = run.units[event.unit] || event.site || "(fleet)";
    const p = run.sites[site] || (run.sites[site] = { total: 1, done: 0, failed: 0, running: null });
    if (event.status === "started") p.running = event.unit;
    else {
      p.done += 1;
      if (p.running === event.unit) p.running = null;
      if (event.status === "failed" || event.status === "blocked") {
        p.failed += 1;
        run.failures.push({ unit: event.unit, message: event.message || "" });
      }
    }
  } else if (event.kind === "run" && event.status !== "started") {
    run.status = event.status === "ok" ? "ok" : "failed";
  } else if (event.status === "failed" && event.box) {
    run.failures.push({ box: event.box, message: event.message || "" });
  }
  renderRun();
}

async function renderRuns() {
  const data = await getJSON("/api/runs");
  $("runs").replaceChildren(data.runs.length ? el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "run"), el("th", {}, "status"), el("th", {}, "started"),
      el("th", {}, "seconds"), el("th", {}, "failures"))),
    el("tbody", {}, ...data.runs.map((r) => el("tr", { "data-run": r.run },
      el("td", {}, r.run), el("td", {}, r.status),
      el("td", {}, new Date(r.started_at * 1000).toLocaleTimeString()),
      el("td", {}, r.finished_at ? (r.finished_at - r.started_at).toFixed(1) : "…"),
      el("td", {}, r.failures.map((f) => `${f.unit || f.box}: ${f.message}`).join("; ") || "–")))))
    : el("p", { class: "muted" }, "no run since the view started"));
}

function diffBlock(path, text) {
  const pre = el("pre", {});
  for (const line of text.split("\n")) {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "diff-add"
      : line.startsWith("-") && !line.startsWith("---") ? "diff-del" : "";
    pre.append(el("span", { class: cls }, line + "\n"));
  }
  return el("div", {}, el("h3", {}, path), pre);
}

async function renderBox(name) {
  $("box").replaceChildren(el("p", { class: "muted" }, `reading ${name}...`));
  const box = await getJSON(`/api/box/${encodeURIComponent(name)}`);
  const facts = box.facts ? Object.entries(box.facts).map(([k, v]) => `${k}: ${v}`).join(" · ") : "unreachable";
  $("box").replaceChildren(
    el("h2", {}, `${box.name} `, el("span", { class: `chip state-${box.state}`, id: "box-state", "data-state": box.state }, el("i"), box.state)),
    el("p", { class: "muted" }, `${box.tier} · site ${box.site} · ${box.address}`),
    el("p", { id: "box-facts" }, facts),
    ...(box.error ? [el("p", { class: "diff-del" }, box.error)] : []),
    el("h2", {}, "Roles"),
    el("table", { id: "box-roles" }, el("thead", {}, el("tr", {}, ...["role", "state", "stored", "desired"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...box.roles.map((r) => el("tr", { "data-role": r.role, "data-stale": String(r.stale) },
        el("td", {}, r.role), el("td", {}, r.reason), el("td", {}, (r.stored || "–").slice(0, 12)),
        el("td", {}, (r.desired || "–").slice(0, 12)))))),
    el("h2", {}, "Drift"),
    ...(Object.keys(box.drift).length ? Object.entries(box.drift).map(([p, d]) => diffBlock(p, d))
      : [el("p", { class: "muted" }, "every managed file is as desired")]),
    el("h2", {}, "Last events"),
    el("pre", { id: "box-events" }, box.events.map((e) => `${e.kind} ${e.status} ${e.unit || ""} ${e.message || ""}`).join("\n") || "none"));
}

function rate(data, key) {
  const value = (data.rates || {})[key];
  return value === undefined ? "" : ` · ${value}/s`;
}

function renderDnaData(target, data) {
  if (!data.enabled) {
    target.replaceChildren(el("p", { class: "muted" }, data.reason || "no D-N-A layer in this fleet"));
    return;
  }
  const lake = data.lake || {};
  const ponds = data.ponds || [];
  const bySite = lake.by_site || {};
  target.replaceChildren(
    el("h2", {}, "Data: end → pond → lake"),
    ...(data.error ? [el("p", { class: "diff-del" }, data.error)] : []),
    el("div", { class: "stats" },
      el("span", { class: "stat", id: "lake-samples" }, el("b", {}, lake.samples ?? "–"), "samples in the lake"),
      el("span", { class: "stat" }, el("b", {}, ponds.length), "ponds")),
    el("table", { id: "ponds" },
      el("thead", {}, el("tr", {}, ...["edge site", "dataset", "pond samples", "in the lake", "lag", "link"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...ponds.map((p) => {
        const cut = Boolean(p.cut);
        const samples = cut ? (p.samples_at_edge ?? "?") : p.samples;
        return el("tr", { class: cut ? "cut" : "", "data-pond": `${p.site}:${p.dataset}`,
                          "data-samples": String(samples), "data-cut": String(cut) },
          el("td", {}, p.site), el("td", {}, p.dataset),
          el("td", {}, `${samples}${rate(data, `pond:${p.site}:${p.dataset}`)}`),
          el("td", {}, `${bySite[p.site] ?? 0}${rate(data, `lake:${p.site}`)}`),
          el("td", {}, cut ? "waiting for the link" : String(p.lag ?? "–")),
          el("td", {}, cut ? "cut" : "up"));
      }))),
    el("h2", {}, "Models"),
    el("table", { id: "models" },
      el("thead", {}, el("tr", {}, ...["model", "version", "metric", "served at"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(data.models || []).map((m) => el("tr", { "data-model": m.name, "data-version": String(m.version) },
        el("td", {}, m.name), el("td", {}, m.version ?? "none yet"),
        el("td", {}, metricText(m.metric)),
        el("td", {}, Object.entries(m.served || {}).map(([site, v]) => `${site}: v${v ?? "?"}`).join(", ") || "–"))))),
    el("h2", {}, "Last predictions"),
    (data.predictions || []).length
      ? el("table", { id: "predictions" },
        el("thead", {}, el("tr", {}, ...["when", "edge site", "model", "version", "features", "prediction"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...data.predictions.map((p) => el("tr", { "data-site": p.site, "data-version": String(p.version) },
          el("td", {}, new Date(p.at * 1000).toLocaleTimeString()), el("td", {}, p.site), el("td", {}, p.model),
          el("td", {}, `v${p.version}`),
          el("td", {}, Object.entries(p.features || {}).map(([k, v]) => `${k} ${v}`).join(" · ")),
          el("td", {}, `${p.prediction} km/h`)))))
      : el("p", { class: "muted", id: "predictions-none" }, "no prediction answered yet"),
    el("h2", {}, "Catalogue"),
    el("pre", { id: "catalogue" }, JSON.stringify(data.catalogue || {}, null, 1)));
}

async function renderDna() {
  const target = $("dna");
  if (!state.dna) {
    try { state.dna = await getJSON("/api/dna"); } catch (error) {
      target.replaceChildren(el("p", { class: "muted" }, "the D-N-A layer is not available")); return;
    }
  }
  renderDnaData(target, state.dna);
}

function route() {
  const hash = location.hash || "#/";
  for (const page of document.querySelectorAll(".page")) page.classList.add("hidden");
  if (hash.startsWith("#/box/")) { $("page-box").classList.remove("hidden"); renderBox(decodeURIComponent(hash.slice(6))); }
  else if (hash === "#/runs") { $("page-runs").classList.remove("hidden"); renderRuns(); }
  else if (hash === "#/dna") { $("page-dna").classList.remove("hidden"); renderDna(); }
  else $("page-fleet").classList.remove("hidden");
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "badge on"; });
  source.addEventListener("error", () => { $("live").textContent = "reconnecting"; $("live").className = "badge warn"; });
  source.addEventListener("fleet", (m) => { state.fleet = JSON.parse(m.data); renderFleet(); });
  source.addEventListener("event", (m) => foldEvent(JSON.parse(m.data)));
  source.addEventListener("run", (m) => {
    const record = JSON.parse(m.data);
    if (!state.run || state.run.run === record.run) { state.run = { ...(state.run || {}), ...record, units: (state.run || {}).units || {} }; renderRun(); }
  });
  source.addEventListener("dna", (m) => { state.dna = JSON.parse(m.data); if (location.hash === "#/dna") renderDna(); });
}

$("refresh").addEventListener("click", async () => {
  $("read-at").textContent = "reading the boxes...";
  state.fleet = await getJSON("/api/refresh", { method: "POST" });
  renderFleet();
});
$("collapse-all").addEventListener("click", (e) => {
  e.preventDefault(); state.expanded.clear(); loadTopology();
});
window.addEventListener("hashchange", route);
legend();
route();
loadTopology();
connect();

// A model's held-out metric as a reader says it: "rmse 4.11 · mae 3.34 · r² 0.95 · 213 held out".
function metricText(metric) {
  if (metric === null || metric === undefined || typeof metric !== "object") return "–";
  const names = { rmse: "rmse", mae: "mae", r2: "r²" };
  const parts = Object.entries(names)
    .filter(([key]) => typeof metric[key] === "number")
    .map(([key, name]) => `${name} ${metric[key].toFixed(2)}`);
  if (typeof metric.held_out === "number") parts.push(`${metric.held_out} held out`);
  return parts.length ? parts.join(" · ") : JSON.stringify(metric);
}
