// nkdefections-explore: the page's behaviour. Plain JavaScript, no build step, no network but the local server.
// Every change of a control sends the whole form to /api/update; the newest answer is drawn (older
// ones are dropped), and window.nkExplorer records the latency from the change to the drawn numbers.
"use strict";

const nkExplorer = (window.nkExplorer = { latencies: [], renderedSeq: 0, sentSeq: 0, idle: false, last: null });
let INIT = null;
let inflight = false;
let dirty = false;
let changeT = null;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
// round half to even, as Python's format() does, so the page shows the CLI's and the README's digits
const roundEven = (v) => {
  const r = Math.round(v);
  return (Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0;
};
const fmt = (v) => (v === null || v === undefined ? "–" : roundEven(v).toLocaleString("en-US"));
const signed = (v) => (v > 0 ? "+" : "") + fmt(v);
const prob = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null) e.append(c);
  return e;
}

function td(text, value, cls) {
  const c = el("td", { text, class: cls || null });
  if (value !== undefined && value !== null) c.dataset.value = String(value);
  return c;
}

// ---------------------------------------------------------------- controls
function specNode(driver, index, spec) {
  const type = spec.type || "hold";
  const id = `${driver}.${index}`;
  const select = el("select", { "aria-label": `${driver} path ${index + 1} type`, dataset: { role: "type" } });
  for (const t of INIT.spec_types) select.append(el("option", { value: t, text: t, selected: t === type }));
  const remove = el("button", { type: "button", text: "remove", dataset: { role: "remove" } });
  const fields = el("div", { class: "fields" });
  const node = el("div", { class: "spec", dataset: { driver, index: String(index) } },
    el("div", { class: "row" }, select, remove), fields, el("div", { class: "error", dataset: { errorFor: id } }));
  for (const key of [...INIT.type_fields[type], ...INIT.common_fields]) {
    if (key === "values") {
      const grid = el("div", { class: "values" });
      for (const y of INIT.years) {
        const v = (spec.values || {})[String(y)];
        grid.append(el("label", { text: String(y) },
          el("input", { size: 4, value: v === undefined ? "" : v, dataset: { key: "values", year: String(y) },
            "aria-label": `${driver} value ${y}`, id: `${id}.values.${y}` })));
      }
      fields.append(el("div", { style: "grid-column: 1 / -1" }, el("label", { text: INIT.labels.values }), grid,
        el("div", { class: "error", dataset: { errorFor: `${id}.values` } })));
      continue;
    }
    const inputId = `${id}.${key}`;
    const input = key === "correlated"
      ? el("input", { type: "checkbox", id: inputId, checked: spec[key] === true, dataset: { key } })
      : el("input", { id: inputId, value: spec[key] === undefined ? "" : spec[key], dataset: { key }, size: 6 });
    fields.append(el("div", {}, el("label", { for: inputId, text: INIT.labels[key] || key }), input,
      el("div", { class: "error", dataset: { errorFor: inputId } })));
  }
  select.addEventListener("change", () => {
    const current = readSpec(node);
    current.type = select.value;
    node.replaceWith(specNode(driver, index, current));
    changed();
  });
  remove.addEventListener("click", () => {
    const specs = readDriver(driver).filter((_, i) => i !== index);
    renderDriver(driver, specs);
    changed();
  });
  return node;
}

function readSpec(node) {
  const spec = { type: $("select[data-role=type]", node).value };
  for (const input of $$("input[data-key]", node)) {
    const key = input.dataset.key;
    if (key === "values") {
      spec.values = spec.values || {};
      if (input.value.trim() !== "") spec.values[input.dataset.year] = input.value;
    } else if (key === "correlated") {
      if (input.checked) spec.correlated = true;
    } else {
      spec[key] = input.value;
    }
  }
  return spec;
}

function readDriver(driver) {
  return $$(`#driver-${driver} .spec`).map(readSpec);
}

function renderDriver(driver, specs) {
  const box = $(`#driver-${driver} .specs`);
  box.replaceChildren(...specs.map((s, i) => specNode(driver, i, s)));
}

function buildDrivers() {
  const root = $("#drivers");
  for (const d of INIT.drivers) {
    const [lo, hi] = INIT.observed_range[d];
    const add = el("button", { type: "button", text: "+ add a path spec" });
    const legend = el("legend", { text: d });
    const note = el("p", { class: "muted", text:
      `${INIT.units[d]}; observed ${lo}–${hi}, last ${INIT.last_observed[d]}. No spec: held at the last value.` });
    const fs = el("fieldset", { id: `driver-${d}` }, legend, note, el("div", { class: "specs" }), add,
      el("div", { class: "error", dataset: { errorFor: d } }));
    add.addEventListener("click", () => {
      renderDriver(d, [...readDriver(d), { type: "step" }]);
      changed();
    });
    root.append(fs);
  }
}

function setForm(form) {
  $("#name").value = form.name || "";
  $("#description").value = form.description || "";
  $("#reasoning").value = form.reasoning || "";
  for (const d of INIT.drivers) renderDriver(d, (form.drivers || {})[d] || []);
}

function readForm() {
  const drivers = {};
  for (const d of INIT.drivers) drivers[d] = readDriver(d);
  return {
    scenario: { name: $("#name").value, description: $("#description").value, reasoning: $("#reasoning").value, drivers },
    baseline: $("#baseline").value,
    threshold: { year: $("#threshold-year").value, arrivals: $("#threshold-arrivals").value },
  };
}

function fillSelect(select, names, chosen) {
  select.replaceChildren(...names.map((n) => el("option", { value: n, text: n, selected: n === chosen })));
}

// ---------------------------------------------------------------- updates
function changed() {
  if (changeT === null) changeT = performance.now();
  dirty = true;
  nkExplorer.idle = false;
  if (!inflight) send();
}

async function send() {
  dirty = false;
  inflight = true;
  const seq = ++nkExplorer.sentSeq;
  const t0 = changeT;
  let res;
  try {
    const r = await fetch("/api/update", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...readForm(), seq }) });
    res = await r.json();
  } catch (err) {
    res = { ok: false, errors: [{ field: "scenario", message: `the explorer server did not answer (${err})` }] };
  }
  inflight = false;
  if (dirty) return send(); // a newer change is waiting: draw that one, not this
  render(res); // the numbers and flags first ...
  const ms = performance.now() - t0;
  const entry = { seq, ms, chart_ms: null, compute_ms: res.compute_ms ?? null,
    compute_cpu_ms: res.compute_cpu_ms ?? null, ok: res.ok };
  changeT = null;
  nkExplorer.latencies.push(entry);
  nkExplorer.renderedSeq = seq;
  nkExplorer.last = res;
  document.body.dataset.renderedSeq = String(seq);
  $("#status").textContent = res.ok
    ? `numbers updated in ${Math.round(ms)} ms (forecast and tables ${Math.round(res.compute_ms)} ms on the server)`
    : "not updated: fix the marked input (the numbers shown are for the last valid state)";
  if (res.ok) {
    // ... then the chart (Plotly redraws its SVG: the slower part in the browser)
    await Plotly.react("chart", res.figure.data, res.figure.layout, { responsive: true, displaylogo: false });
    entry.chart_ms = performance.now() - t0;
    $("#status").textContent += `, chart in ${Math.round(entry.chart_ms)} ms`;
  }
  nkExplorer.idle = !inflight && !dirty;
}

function clearErrors() {
  for (const e of $$("[data-error-for]")) e.textContent = "";
  for (const i of $$(".invalid")) i.classList.remove("invalid");
}

function showErrors(errors) {
  for (const { field, message } of errors) {
    let key = field;
    let target = $(`[data-error-for="${CSS.escape(key)}"]`);
    while (!target && key.includes(".")) {
      key = key.slice(0, key.lastIndexOf("."));
      target = $(`[data-error-for="${CSS.escape(key)}"]`);
    }
    target = target || $('[data-error-for="scenario"]');
    target.textContent = target.textContent ? `${target.textContent}\n${message}` : message;
    const input = document.getElementById(field);
    if (input) input.classList.add("invalid");
  }
}

function render(res) {
  clearErrors();
  if (!res.ok) {
    showErrors(res.errors);
    $("#results").classList.add("stale");
    return;
  }
  $("#results").classList.remove("stale");
  renderComparison(res);
  renderAttribution(res);
  const e = res.exceedance;
  const at = e.year.startsWith("cumulative") ? `in total ${e.year.slice(11)}` : `in ${e.year}`;
  $("#exceedance").replaceChildren(`P(arrivals > ${fmt(e.threshold)} ${at}): ${res.scenario} `,
    el("b", { id: "exc-scenario", text: prob(e.scenario), dataset: { value: String(e.scenario) } }),
    `, ${res.baseline} `, el("span", { id: "exc-baseline", text: prob(e.baseline), dataset: { value: String(e.baseline) } }));
  const flags = res.extrapolation.map((x) => el("li", { class: "flag", text:
    `${x.driver}: the path (${x.path_min.toFixed(2)} to ${x.path_max.toFixed(2)}) leaves the observed range ` +
    `${x.observed_min}–${x.observed_max} in ${span(x.path_years)}; it reaches arrivals in ${span(x.arrival_years)}. ` +
    "The model has no data there." }));
  $("#extrapolation").replaceChildren(...(flags.length ? flags : [el("li", { text: "none: every path stays inside its observed range" })]));
  $("#reproduce").textContent = res.reproduce;
}

function span(years) {
  if (!years.length) return "no year";
  return years.length === 1 ? String(years[0]) : `${years[0]}–${years[years.length - 1]}`;
}

function renderComparison(res) {
  const bySex = res.rows.length > 0 && res.rows[0].female_median !== undefined;  // a by-sex fit
  const sexHead = bySex ? ["women (80%)", "men (80%)", "female share"] : [];
  const head = el("tr", {}, ...["year", `${res.scenario} median`, "80% interval", ...sexHead, `${res.baseline} median`,
    "difference (median)", "90% interval", `P(${res.scenario} > ${res.baseline})`, "extrapolated"].map((h) => el("th", { text: h })));
  $("#comparison thead").replaceChildren(head);
  const rows = res.rows.map((r) => {
    const cum = r.year.startsWith("cumulative");
    return el("tr", { class: cum ? "cumulative" : null, dataset: { year: r.year } },
      td(r.year),
      td(fmt(r.median), r.median, "median"),
      td(`${fmt(r.lower_80)}–${fmt(r.upper_80)}`, null, "interval80"),
      ...(bySex ? [
        td(`${fmt(r.female_median)} (${fmt(r.female_lower_80)}–${fmt(r.female_upper_80)})`, r.female_median, "female"),
        td(`${fmt(r.male_median)} (${fmt(r.male_lower_80)}–${fmt(r.male_upper_80)})`, r.male_median, "male"),
        td(`${Math.round(100 * r.female_share_median)}%`, r.female_share_median, "female-share")] : []),
      td(fmt(r.baseline_median), r.baseline_median, "baseline-median"),
      td(signed(r.median_difference), r.median_difference, "difference"),
      td(`${signed(r.difference_lower_90)} to ${signed(r.difference_upper_90)}`, null, "interval90"),
      td(prob(r.prob_greater), r.prob_greater, "prob-greater"),
      td(r.extrapolated ? r.extrapolated_drivers : "", null, r.extrapolated ? "flag" : null));
  });
  $("#comparison tbody").replaceChildren(...rows);
  const cum = res.rows[res.rows.length - 1];
  $("#headline").replaceChildren(`${cum.year}: `, el("b", { text: fmt(cum.median) }),
    ` arrivals (80%: ${fmt(cum.lower_80)}–${fmt(cum.upper_80)}) against ${fmt(cum.baseline_median)} for ${res.baseline}; ` +
    `difference ${signed(cum.median_difference)} (90%: ${signed(cum.difference_lower_90)} to ${signed(cum.difference_upper_90)}), ` +
    `P(more than ${res.baseline}) = ${prob(cum.prob_greater)}`);
}

function renderAttribution(res) {
  $("#attribution thead").replaceChildren(el("tr", {}, ...["driver", "median (expected arrivals)", "90% interval", "mean"]
    .map((h) => el("th", { text: h }))));
  $("#attribution tbody").replaceChildren(...res.attribution.map((a) => el("tr", { dataset: { driver: a.driver } },
    td(a.driver), td(signed(a.median), a.median, "median"), td(`${signed(a.lower_90)} to ${signed(a.upper_90)}`),
    td(signed(a.mean), a.mean, "mean"))));
}

// ---------------------------------------------------------------- save and export
async function save(overwrite) {
  const r = await fetch("/api/save", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...readForm(), overwrite }) });
  const res = await r.json();
  $("#overwrite").hidden = !res.exists;
  if (res.errors) {
    clearErrors();
    showErrors(res.errors);
    $("#save-status").textContent = "not saved: fix the marked input";
  } else {
    $("#save-status").textContent = res.ok ? `${res.message}. Reproduce: ${res.command}` : res.message;
  }
  document.body.dataset.saved = res.ok ? res.path : "";
  if (res.ok) {
    const r2 = await (await fetch("/api/init")).json();
    fillSelect($("#start"), r2.scenarios, $("#start").value);
    fillSelect($("#baseline"), r2.scenarios, $("#baseline").value);
  }
}

async function exportCsv() {
  const r = await fetch("/api/export.csv", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(readForm()) });
  if (r.headers.get("Content-Type").startsWith("application/json")) {
    const res = await r.json();
    clearErrors();
    showErrors(res.errors);
    return;
  }
  const name = (r.headers.get("Content-Disposition").match(/filename="([^"]+)"/) || [])[1] || "comparison.csv";
  const a = el("a", { href: URL.createObjectURL(await r.blob()), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function exportChart(format) {
  const name = `${$("#name").value || "scenario"}-chart`;
  Plotly.downloadImage("chart", { format, width: 1280, height: 760, filename: name });
}

// ---------------------------------------------------------------- start
async function main() {
  INIT = await (await fetch("/api/init")).json();
  const i = INIT.info;
  $("#info").textContent = `fit ${i.fit_id} (${i.fit_source}; ${i.draws}, ${i.window}, gate ` +
    `${i.gate_passed === null ? "unknown" : i.gate_passed ? "passed" : "FAILED"}) · forecast ${i.horizon}, seed ${i.seed} · ` +
    `saving to ${INIT.save_dir}`;
  fillSelect($("#start"), INIT.scenarios, INIT.scenarios.includes("status_quo") ? "status_quo" : INIT.scenarios[0]);
  fillSelect($("#baseline"), INIT.scenarios, INIT.baseline);
  fillSelect($("#threshold-year"), INIT.threshold_years, INIT.threshold.year);
  $("#threshold-arrivals").value = INIT.threshold.arrivals;
  buildDrivers();
  setForm(INIT.start);
  const controls = $("#controls");
  controls.addEventListener("input", (ev) => { if (ev.target.matches("input, textarea")) changed(); });
  controls.addEventListener("change", (ev) => { if (ev.target.matches("select:not(#start), input[type=checkbox]")) changed(); });
  $("#load").addEventListener("click", async () => {
    const res = await (await fetch(`/api/scenario?name=${encodeURIComponent($("#start").value)}`)).json();
    if (!res.ok) { clearErrors(); showErrors(res.errors); return; }
    setForm(res.form);
    changed();
  });
  $("#save").addEventListener("click", () => save(false));
  $("#overwrite").addEventListener("click", () => save(true));
  $("#export-csv").addEventListener("click", exportCsv);
  $("#export-png").addEventListener("click", () => exportChart("png"));
  $("#export-svg").addEventListener("click", () => exportChart("svg"));
  changed();
}

main();
