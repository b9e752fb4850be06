// The pharmacy screen: a center's preparation queue for a day (the doses in start order, the
// vials and lots to pull, and the steps each dose takes: a nurse clears the patient, the
// pharmacy prepares and dispenses, the nurse records it administered), the center's stock by
// lot (receive, out of the fridge, quarantine, release, recall, and who received a lot) and
// what is on order (place an order, receive it as a lot, cancel it), and the next four weeks'
// demand with what is on order, its shortfalls and the reorder list. Three tabs (the
// WAI-ARIA tabs pattern). The pharmacy, nurses and admins: the API refuses anyone else, and
// what a role may not do is not offered; the API's refusal of a step is shown as it says it.

import { api, ApiProblem, el, keyboardTabs, signedIn, toast } from "./api.js";
import { addDays, allPages, dayText, DOSE_STATUS, LOT_STATUS, STORAGE, todayAt, zoned } from "./words.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["admin", "pharmacy", "nurse"];
const SECTIONS = ["queue", "stock", "demand"];
// Who takes each step (the policy table's rows for the step routes), and its words.
const STEPS = {
  clear: { roles: ["admin", "nurse"], label: "Clear", done: "cleared" },
  prepare: { roles: ["admin", "pharmacy"], label: "Prepare", done: "prepared" },
  dispense: { roles: ["admin", "pharmacy"], label: "Dispense", done: "dispensed to the chair" },
  administer: { roles: ["admin", "nurse"], label: "Administer", done: "recorded as administered" },
};
const STOCK_KEEPERS = ["admin", "pharmacy"]; // receive and change lots, place and change orders
const PATIENT_READERS = ["admin", "nurse"]; // may open a patient's record

const params = new URLSearchParams(window.location.search);
const state = {
  me: null,
  centers: [],
  center: null,
  date: params.get("date"),
  products: new Map(),
  chairs: new Map(), // labels, where the role may read them
  lots: [],
  lotsById: new Map(),
  orders: [], // the center's open orders, the soonest expected first
  ordersById: new Map(),
  doses: new Map(),
  shown: new Set(),
};

// --- dates ---------------------------------------------------------------------------------

function addMonths(isoDate, months) {
  const [y, m, d] = isoDate.split("-").map(Number);
  const last = new Date(Date.UTC(y, m - 1 + months + 1, 0)).getUTCDate(); // the month's last day
  return new Date(Date.UTC(y, m - 1 + months, Math.min(d, last))).toISOString().slice(0, 10);
}

const zone = () => state.center.timezone;
const clock = (instant) => (instant ? zoned(instant, zone()).time : null);
const grams = (g) => `${Number(g).toLocaleString("en-GB", { maximumFractionDigits: 2 })} g`;
const productName = (id) => state.products.get(id)?.name || "Unknown drug";

// A field the API names in a refusal ("expires_on: ..."), as the form's label calls it.
const FIELDS = {
  expires_on: "Expiry",
  expected_on: "Expected on",
  vial_size_g: "Vial size",
  lot_number: "Lot number",
  vials: "Vials",
  note: "Note",
  location: "Location",
};
const fieldText = (name) => FIELDS[name] || String(name).replaceAll("_", " ");

function problemText(error) {
  if (error instanceof ApiProblem) {
    if (Array.isArray(error.body.errors) && error.body.errors.length) {
      return error.body.errors.map((e) => `${fieldText(e.loc.at(-1))}: ${e.msg}`).join("; ");
    }
    let text = error.body.detail || error.body.title || `HTTP ${error.status}`;
    text = text.replace(/^([a-z_]+): /, (whole, name) => (FIELDS[name] ? `${FIELDS[name]}: ` : whole));
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return error.message;
}

function say(id, message, tone = "ok") {
  const box = $(id);
  box.className = `answer ${tone}`;
  box.textContent = message;
}

function stateText(known, fallback) {
  const shown = known || { icon: "?", text: fallback };
  return [el("span", { class: "icon", "aria-hidden": "true" }, shown.icon), ` ${shown.text}`];
}

// --- tabs ----------------------------------------------------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function choose(tab, { focus = false } = {}) {
  for (const each of tabs) {
    const on = each === tab;
    each.setAttribute("aria-selected", String(on));
    each.tabIndex = on ? 0 : -1;
    $(each.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  const section = tab.dataset.section;
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${section}`);
  if (!state.shown.has(section)) {
    state.shown.add(section);
    load(section);
  }
}

function load(section) {
  const loaders = { queue: loadQueue, stock: loadStock, demand: loadDemand };
  const where = { queue: "queue-problem", stock: "stock-answer", demand: "demand-answer" }[section];
  return loaders[section]().catch((error) => {
    if (section === "queue") showQueueProblem(`Could not load the queue: ${problemText(error)}`);
    else say(where, `Could not load: ${problemText(error)}`, "bad");
  });
}

keyboardTabs(tabs, choose);

// --- the center and the day ----------------------------------------------------------------

function remember() {
  const query = new URLSearchParams({ center: state.center.id, date: state.date });
  history.replaceState(null, "", `/pharmacy?${query}${window.location.hash}`);
  localStorage.setItem("chairside.center", state.center.id);
  $("date").value = state.date;
}

async function loadCenters() {
  const page = await api("GET", "/api/v1/centers?limit=200");
  state.centers = page.items;
  $("center").replaceChildren(...state.centers.map((c) => el("option", { value: c.id }, c.name)));
  const wanted = params.get("center") || localStorage.getItem("chairside.center");
  state.center = state.centers.find((c) => c.id === wanted) || state.centers[0] || null;
  if (state.center) $("center").value = state.center.id;
  if (!state.date && state.center) state.date = todayAt(state.center.timezone);
}

// Chair labels, for the roles that may read them (the pharmacy may not: the queue then
// names the chair by its place in the day instead).
async function loadChairs() {
  state.chairs = new Map();
  try {
    const chairs = await allPages(`/api/v1/centers/${state.center.id}/chairs`);
    state.chairs = new Map(chairs.map((c) => [c.id, c.label]));
  } catch (error) {
    if (!(error instanceof ApiProblem && error.status === 403)) throw error;
    state.chairs = null;
  }
}

// The center's lots, read once per load: the queue names the lots it pulls from them.
async function loadLots() {
  state.lots = await allPages(`/api/v1/inventory/lots?center_id=${state.center.id}`);
  state.lotsById = new Map(state.lots.map((l) => [l.id, l]));
}

async function centerChanged() {
  state.shown.clear();
  remember();
  await Promise.all([loadChairs(), loadLots()]);
  const open = tabs.find((t) => t.getAttribute("aria-selected") === "true");
  state.shown.add(open.dataset.section);
  await load(open.dataset.section);
}

// --- the preparation queue -----------------------------------------------------------------

function showQueueProblem(text) {
  $("queue-problem").textContent = text;
  $("queue-problem").hidden = !text;
}

async function loadQueue() {
  remember();
  $("queue-heading").textContent = `Doses to prepare on ${dayText(state.date, true)}`;
  const day = await api("GET", `/api/v1/centers/${state.center.id}/preparation?date=${encodeURIComponent(state.date)}`);
  state.doses = new Map(day.items.map((d) => [d.appointment_id, d]));
  showQueueProblem("");
  $("queue-table").classList.toggle("no-chairs", !state.chairs);
  $("queue").replaceChildren(...day.items.map(doseRow));
  counted();
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}`;
}

function counted() {
  const doses = [...state.doses.values()];
  const short = doses.filter((d) => d.short_g > 0 && !["dispensed", "administered"].includes(d.status)).length;
  const ready = doses.filter((d) => ["dispensed", "administered"].includes(d.status)).length;
  $("queue-empty").hidden = doses.length > 0;
  $("queue-table").parentElement.hidden = doses.length === 0;
  const noun = doses.length === 1 ? "dose" : "doses";
  const parts = [`${doses.length} ${noun}`, `${ready} at the chair or given`];
  if (short) parts.push(`${short} short of stock`);
  $("queue-count").textContent = `${parts.join(", ")}.`;
}

function vialsCell(dose) {
  const lines = dose.vials.map((v) => {
    const lot = v.lot_id ? state.lotsById.get(v.lot_id) : null;
    const where = lot
      ? [
          "lot ",
          el("span", { class: "lot-number" }, lot.lot_number),
          el("span", { class: "sub" }, `expires ${dayText(lot.expires_on)}${lot.location ? ` · ${lot.location}` : ""}`),
        ]
      : v.lot_id
        ? ["a lot not listed here"]
        : [el("span", { class: "muted" }, "no lot")];
    return el("li", {}, el("strong", {}, `${v.count} × ${grams(v.vial_size_g)}`), " ", where);
  });
  const short =
    dose.short_g > 0
      ? el(
          "p",
          { class: "short-flag" },
          el("span", { class: "icon", "aria-hidden": "true" }, "▲"),
          ` Short ${grams(dose.short_g)}: the stock cannot cover this dose`,
        )
      : null;
  return el("td", { class: "vials" }, lines.length ? el("ul", {}, lines) : null, short);
}

function stepsFor(dose) {
  const steps = [];
  if (dose.status === "planned") steps.push("clear", "prepare");
  if (dose.status === "cleared") steps.push("prepare");
  if (dose.status === "prepared") {
    if (!dose.cleared_at) steps.push("clear");
    steps.push("dispense");
  }
  if (dose.status === "dispensed") steps.push("administer");
  return steps.filter((s) => STEPS[s].roles.includes(state.me.role));
}

function waitingFor(dose) {
  // What the row waits on when this role has nothing to do.
  if (dose.status === "administered") return "Given";
  const pharmacy = state.me.role === "pharmacy";
  if (pharmacy && dose.status === "dispensed") return "At the chair";
  if (!pharmacy && ["planned", "cleared", "prepared"].includes(dose.status)) return "With the pharmacy";
  return "—";
}

function doseRow(dose) {
  const status = DOSE_STATUS[dose.status];
  const short = dose.short_g > 0 && !["dispensed", "administered"].includes(dose.status);
  const who = dose.patient_name;
  const buttons = stepsFor(dose).map((step) =>
    el(
      "button",
      { type: "button", "data-step": step, class: step === "dispense" || step === "prepare" ? "primary" : null },
      STEPS[step].label,
      el("span", { class: "visually-hidden" }, ` ${who}'s dose`),
    ),
  );
  const chair = state.chairs ? state.chairs.get(dose.chair_id) || "—" : null;
  const wait = dose.drug_wait_minutes === null || dose.drug_wait_minutes === undefined ? "—" : `${dose.drug_wait_minutes} min`;
  const stepTimes = [
    ["cleared", dose.cleared_at],
    ["prepared", dose.prepared_at],
    ["dispensed", dose.dispensed_at],
    ["administered", dose.administered_at],
  ]
    .filter(([, at]) => at)
    .map(([word, at]) => `${word} ${clock(at)}`)
    .join(" · ");
  return el(
    "tr",
    { "data-dose": dose.appointment_id, class: short ? "short" : null },
    el("td", { class: "start" }, el("time", { datetime: dose.start }, clock(dose.start))),
    el("td", { class: "chair" }, chair ?? "—"), // hidden when the role may not read chairs
    el(
      "th",
      { scope: "row", class: "patient", tabindex: "-1" },
      el("span", { class: "name" }, who),
      el("span", { class: "sub" }, `MRN ${dose.mrn}`),
    ),
    el("td", { class: "drug" }, dose.product_name, el("span", { class: "sub dose" }, grams(dose.dose_g))),
    vialsCell(dose),
    el(
      "td",
      { class: "prepare-by" },
      dose.prepare_by
        ? el("time", { datetime: dose.prepare_by }, clock(dose.prepare_by))
        : el("span", { class: "muted" }, "After clearance"),
    ),
    el(
      "td",
      { class: `status dose-${dose.status}` },
      el("span", { class: "state" }, stateText(status, dose.status)),
      stepTimes ? el("span", { class: "sub" }, stepTimes) : null,
    ),
    el("td", { class: "wait" }, wait),
    el(
      "td",
      { class: "steps" },
      buttons.length ? el("div", { class: "buttons" }, buttons) : el("span", { class: "muted" }, waitingFor(dose)),
    ),
  );
}

$("queue").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-step]");
  if (!button) return;
  const row = button.closest("tr");
  const dose = state.doses.get(row.dataset.dose);
  const step = button.dataset.step;
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    const updated = await api("POST", `/api/v1/appointments/${dose.appointment_id}/preparation/${step}`);
    showQueueProblem("");
    replaceDose(updated, row);
    toast(`${dose.patient_name}'s dose: ${STEPS[step].done}.`);
  } catch (error) {
    button.removeAttribute("aria-disabled");
    const text = `Could not ${STEPS[step].label.toLowerCase()} ${dose.patient_name}'s dose: ${problemText(error)}`;
    showQueueProblem(text);
    // The dose as it now stands (someone may have taken the step meanwhile).
    if (error instanceof ApiProblem && error.status === 409) {
      try {
        const day = await api("GET", `/api/v1/centers/${state.center.id}/preparation?date=${encodeURIComponent(state.date)}`);
        const now = day.items.find((d) => d.appointment_id === dose.appointment_id);
        if (now) replaceDose(now, row, step);
      } catch {
        // the message says enough
      }
    }
  }
});

// A dose redrawn where it was; the focus stays in its row: on its next step, else its name.
function replaceDose(dose, old, keep = null) {
  state.doses.set(dose.appointment_id, dose);
  const focused = old.contains(document.activeElement);
  const fresh = doseRow(dose);
  old.replaceWith(fresh);
  counted();
  if (!focused) return;
  const target = (keep && fresh.querySelector(`[data-step="${keep}"]`)) || fresh.querySelector("button[data-step]") || fresh.querySelector("th");
  target.focus();
}

function moveDay(isoDate) {
  state.date = isoDate;
  loadQueue().catch((error) => showQueueProblem(`Could not load the queue: ${problemText(error)}`));
}

$("prev").addEventListener("click", () => moveDay(addDays(state.date, -1)));
$("next").addEventListener("click", () => moveDay(addDays(state.date, 1)));
$("today").addEventListener("click", () => moveDay(todayAt(zone())));
$("refresh").addEventListener("click", () => moveDay(state.date));
$("date").addEventListener("change", () => {
  if ($("date").value) moveDay($("date").value);
});

// --- stock ---------------------------------------------------------------------------------

const keepsStock = () => STOCK_KEEPERS.includes(state.me.role);

async function loadStock(fresh = null) {
  await Promise.all([loadLots(), loadOrders()]);
  showLots(fresh);
  showOrders();
}

// The stock changed: the queue's lots to pull and the demand are read again when next shown.
function stockChanged() {
  state.shown.delete("queue");
  state.shown.delete("demand");
}

function showLots(fresh = null) {
  $("lots").replaceChildren(...state.lots.map((lot) => lotRow(lot, lot.id === fresh)));
  $("lots-empty").hidden = state.lots.length > 0;
  $("lots-table").parentElement.hidden = state.lots.length === 0;
}

function lotButton(lot, action, text, extra = {}) {
  return el(
    "button",
    { type: "button", "data-lot-action": action, ...extra },
    text,
    el("span", { class: "visually-hidden" }, ` lot ${lot.lot_number}`),
  );
}

function lotRow(lot, fresh) {
  const product = state.products.get(lot.product_id);
  const today = todayAt(zone());
  const expired = lot.expires_on < today;
  const status = LOT_STATUS[lot.status];
  const actions = [];
  if (keepsStock() && lot.status !== "recalled") {
    if (lot.storage === "refrigerated" && product?.room_temperature_months) {
      actions.push(lotButton(lot, "room", "To room temperature…"));
    }
    if (lot.status === "available") actions.push(lotButton(lot, "quarantine", "Quarantine…"));
    if (lot.status === "quarantined") actions.push(lotButton(lot, "release", "Release…"));
    actions.push(lotButton(lot, "recall", "Recall…", { class: "danger-quiet" }));
  }
  actions.push(lotButton(lot, "given", "Who received it"));
  const storage = [STORAGE[lot.storage] || lot.storage];
  if (lot.room_temperature_since) {
    storage.push(el("span", { class: "sub" }, `since ${dayText(isoLocal(lot.room_temperature_since))}`));
  } else if (lot.storage === "refrigerated" && product && !product.room_temperature_months) {
    storage.push(el("span", { class: "sub" }, "must stay refrigerated"));
  }
  return el(
    "tr",
    { "data-lot": lot.id, class: [fresh ? "fresh" : "", lot.status !== "available" ? "held" : ""].join(" ").trim() || null },
    el("th", { scope: "row", class: "lot", tabindex: "-1" }, el("span", { class: "lot-number" }, lot.lot_number)),
    el("td", {}, product ? product.name : "Unknown drug"),
    el("td", { class: "num" }, grams(lot.vial_size_g)),
    el("td", { class: "num" }, `${lot.vials_on_hand} of ${lot.vials_received}`, lot.vials_on_hand === 0 ? el("span", { class: "sub" }, "used up") : null),
    el(
      "td",
      { class: `expires${expired ? " expired" : ""}` },
      el("time", { datetime: lot.expires_on }, dayText(lot.expires_on)),
      expired ? el("span", { class: "sub" }, el("span", { "aria-hidden": "true" }, "✕"), " expired") : null,
    ),
    el("td", { class: "storage" }, storage),
    el("td", { class: `lot-status lot-${lot.status}` }, el("span", { class: "state" }, stateText(status, lot.status))),
    el("td", {}, lot.location || el("span", { class: "muted" }, "—")),
    el("td", { class: "actions" }, el("div", { class: "buttons" }, actions)),
  );
}

// The local date (YYYY-MM-DD) of an instant at the center.
function isoLocal(instant) {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone: zone(),
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(new Date(instant));
}

function replaceLot(lot) {
  const i = state.lots.findIndex((l) => l.id === lot.id);
  if (i >= 0) state.lots[i] = lot;
  state.lotsById.set(lot.id, lot);
  const old = document.querySelector(`tr[data-lot="${lot.id}"]`);
  const fresh = lotRow(lot, true);
  if (old) old.replaceWith(fresh);
  return fresh;
}

$("lots").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-lot-action]");
  if (!button) return;
  const lot = state.lotsById.get(button.closest("tr").dataset.lot);
  const action = button.dataset.lotAction;
  if (action === "given") return showGiven(lot, button);
  return confirmChange(lot, action, button);
});

const CHANGES = {
  room: {
    title: "Move to room temperature?",
    yes: "Move to room temperature",
    body: { storage: "room_temperature" },
    text(lot, product) {
      const shortened = addMonths(todayAt(zone()), product.room_temperature_months);
      const expiry = shortened < lot.expires_on ? shortened : lot.expires_on;
      return `The whole lot ${lot.lot_number} (${product.name}, ${lot.vials_on_hand} vials) comes out of the fridge. Its expiry shortens from ${dayText(lot.expires_on)} to ${dayText(expiry)} (${product.room_temperature_months} months at room temperature at most), and there is no way back: a vial never returns to the fridge.`;
    },
    done: (lot) => `Lot ${lot.lot_number} is at room temperature: it now expires ${dayText(lot.expires_on)}.`,
  },
  quarantine: {
    title: "Quarantine this lot?",
    yes: "Quarantine",
    body: { status: "quarantined" },
    text: (lot) => `No vial of lot ${lot.lot_number} will be planned or drawn until it is released. Doses counting on it will look for other lots, or show as short.`,
    done: (lot) => `Lot ${lot.lot_number} is quarantined.`,
  },
  release: {
    title: "Release this lot?",
    yes: "Release",
    body: { status: "available" },
    text: (lot) => `Lot ${lot.lot_number} becomes available again for doses from today.`,
    done: (lot) => `Lot ${lot.lot_number} is available again.`,
  },
  recall: {
    title: "Recall this lot?",
    yes: "Recall",
    danger: true,
    body: { status: "recalled" },
    text: (lot) => `Lot ${lot.lot_number} will never be used again: a recall is final. Next you see who received it, so their nurses can be told.`,
    done: (lot) => `Lot ${lot.lot_number} is recalled.`,
  },
};

function confirmChange(lot, action, button) {
  const change = CHANGES[action];
  const dialog = $("confirm-dialog");
  const product = state.products.get(lot.product_id);
  $("confirm-title").textContent = change.title;
  $("confirm-text").textContent = change.text(lot, product);
  $("confirm-yes").textContent = change.yes;
  $("confirm-yes").className = change.danger ? "danger" : "primary";
  $("confirm-no").textContent = "Cancel";
  say("confirm-answer", "");
  let changed = null;
  dialog.onsubmit = async (event) => {
    event.preventDefault();
    try {
      changed = await api("PATCH", `/api/v1/inventory/lots/${lot.id}`, change.body, { "If-Match": `"${lot.version}"` });
      dialog.close();
    } catch (error) {
      if (error instanceof ApiProblem && error.status === 412) {
        await loadStock();
        say("confirm-answer", "Someone else changed this lot meanwhile; the list is reloaded. Look again, then try again.", "bad");
        return;
      }
      say("confirm-answer", problemText(error), "bad");
    }
  };
  dialog.onclose = () => {
    if (!changed) {
      button.focus();
      return;
    }
    const row = replaceLot(changed);
    stockChanged();
    say("stock-answer", change.done(changed));
    if (action === "recall") {
      showGiven(changed, row.querySelector('[data-lot-action="given"]'), true);
      return;
    }
    (row.querySelector(`[data-lot-action="${action}"]`) || row.querySelector("th")).focus();
  };
  dialog.showModal();
  $("confirm-yes").focus();
}

// Who received a lot: the visits it reached, for a recall. Names where the role may read
// patient records; the pharmacy sees the record and visit instead.
async function showGiven(lot, button, recalled = false) {
  const dialog = $("given-dialog");
  const product = state.products.get(lot.product_id);
  $("given-title").textContent = recalled ? `Lot ${lot.lot_number} recalled: who received it` : `Who received lot ${lot.lot_number}`;
  $("given-what").textContent = `${product ? product.name : "Unknown drug"}, ${grams(lot.vial_size_g)} vials; ${lot.vials_received - lot.vials_on_hand} of ${lot.vials_received} used. In the order they were recorded.`;
  say("given-answer", "Loading…", "muted");
  $("given").replaceChildren();
  $("given-empty").hidden = true;
  dialog.onclose = () => button?.focus();
  dialog.showModal();
  try {
    const given = await allPages(`/api/v1/inventory/lots/${lot.id}/administrations`);
    const canOpen = PATIENT_READERS.includes(state.me.role);
    $("given").replaceChildren(
      ...given.map((g) => {
        const visit = zoned(g.start, zone());
        const who = canOpen ? el("a", { href: `/patients/${g.patient_id}` }, g.patient_name) : el("span", {}, g.patient_name);
        return el(
          "tr",
          {},
          el("th", { scope: "row" }, who, el("span", { class: "sub" }, `MRN ${g.mrn}`)),
          el("td", {}, el("time", { datetime: g.start }, `${visit.date} ${visit.time}`)),
          el("td", { class: "num" }, String(g.vials)),
          el("td", {}, el("time", { datetime: g.recorded_at }, `${zoned(g.recorded_at, zone()).date} ${zoned(g.recorded_at, zone()).time}`)),
        );
      }),
    );
    $("given-empty").hidden = given.length > 0;
    $("given-table").parentElement.hidden = given.length === 0;
    const people = new Set(given.map((g) => g.patient_id)).size;
    say(
      "given-answer",
      given.length ? `${people} ${people === 1 ? "patient" : "patients"} received this lot.` : "",
    );
  } catch (error) {
    say("given-answer", `Could not load who received it: ${problemText(error)}`, "bad");
  }
}

// A product's vial sizes as a select's options.
function fillSizes(select, product) {
  const sizes = product ? product.vial_sizes_g : [];
  select.replaceChildren(...sizes.map((s) => el("option", { value: String(s) }, grams(s))));
}

// Room temperature only for a product that may leave the fridge, and the help says so.
function fillStorage(select, help, product) {
  const room = select.querySelector('[value="room_temperature"]');
  room.disabled = !product?.room_temperature_months;
  if (room.disabled) select.value = "refrigerated";
  help.textContent = product?.room_temperature_months
    ? `Received at room temperature, its expiry is at most ${product.room_temperature_months} months from today.`
    : "This drug must stay refrigerated.";
}

// Receiving a lot: the vial sizes are the chosen product's.
function fillLotProduct() {
  const product = state.products.get($("r-product").value);
  fillSizes($("r-size"), product);
  fillStorage($("r-storage"), $("r-storage-help"), product);
}

$("r-product").addEventListener("change", fillLotProduct);

$("receive").addEventListener("click", () => {
  const dialog = $("receive-dialog");
  const active = [...state.products.values()].filter((p) => p.active);
  $("receive-form").reset();
  $("r-product").replaceChildren(...active.map((p) => el("option", { value: p.id }, p.name)));
  fillLotProduct();
  say("receive-answer", "");
  dialog.onclose = () => $("receive").focus();
  dialog.showModal();
  $("r-product").focus();
});

$("receive-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    center_id: state.center.id,
    product_id: $("r-product").value,
    lot_number: $("r-lot").value.trim(),
    vial_size_g: Number($("r-size").value),
    vials: Number($("r-vials").value),
    expires_on: $("r-expires").value,
    storage: $("r-storage").value,
  };
  if ($("r-location").value.trim()) body.location = $("r-location").value.trim();
  const missing = [
    ["r-lot", body.lot_number, "the lot number"],
    ["r-vials", $("r-vials").value, "how many vials"],
    ["r-expires", body.expires_on, "the expiry"],
  ].filter(([, value]) => !value);
  if (missing.length) {
    say("receive-answer", `Give ${missing.map(([, , what]) => what).join(", ")}.`, "bad");
    $(missing[0][0]).focus();
    return;
  }
  try {
    const lot = await api("POST", "/api/v1/inventory/lots", body);
    const dialog = $("receive-dialog");
    dialog.onclose = null;
    dialog.close();
    await loadStock(lot.id);
    stockChanged();
    say("stock-answer", `Received lot ${lot.lot_number}: ${lot.vials_on_hand} × ${grams(lot.vial_size_g)} ${productName(lot.product_id)}, expiring ${dayText(lot.expires_on)}.`);
    document.querySelector(`tr[data-lot="${lot.id}"] th`)?.focus();
  } catch (error) {
    say("receive-answer", `Not received: ${problemText(error)}`, "bad");
  }
});

// --- stock on order ------------------------------------------------------------------------

async function loadOrders() {
  state.orders = await allPages(`/api/v1/inventory/orders?center_id=${state.center.id}&status=ordered`);
  state.ordersById = new Map(state.orders.map((o) => [o.id, o]));
}

// An order changed: the demand counts it (or no longer does) when next shown.
function ordersChanged() {
  state.shown.delete("demand");
}

const orderText = (order) => `${order.vials} × ${grams(order.vial_size_g)} ${productName(order.product_id)}`;
const isLate = (order) => order.status === "ordered" && order.expected_on < todayAt(zone());

function showOrders(fresh = null) {
  $("orders").replaceChildren(...state.orders.map((order) => orderRow(order, order.id === fresh)));
  $("orders-empty").hidden = state.orders.length > 0;
  $("orders-table").parentElement.hidden = state.orders.length === 0;
}

function orderButton(order, action, text, extra = {}) {
  return el(
    "button",
    { type: "button", "data-order-action": action, ...extra },
    text,
    el("span", { class: "visually-hidden" }, ` the order of ${orderText(order)} expected ${dayText(order.expected_on)}`),
  );
}

function orderRow(order, fresh) {
  const late = isLate(order);
  const cells = [
    el("th", { scope: "row", class: "drug", tabindex: "-1" }, productName(order.product_id)),
    el("td", { class: "num" }, grams(order.vial_size_g)),
    el("td", { class: "num" }, String(order.vials)),
    el(
      "td",
      { class: `expected${late ? " late" : ""}` },
      el("time", { datetime: order.expected_on }, dayText(order.expected_on, true)),
      late
        ? el("span", { class: "late-flag" }, el("span", { class: "icon", "aria-hidden": "true" }, "▲"), " Late, not counted in the forecast")
        : null,
    ),
    el("td", { class: "note" }, order.note || el("span", { class: "muted" }, "—")),
  ];
  if (keepsStock()) {
    cells.push(
      el(
        "td",
        { class: "actions" },
        el("div", { class: "buttons" }, [
          orderButton(order, "receive", "Receive…", { class: "primary" }),
          orderButton(order, "cancel", "Cancel…", { class: "danger-quiet" }),
        ]),
      ),
    );
  }
  const classes = [fresh ? "fresh" : "", late ? "late" : ""].join(" ").trim() || null;
  return el("tr", { "data-order": order.id, class: classes }, cells);
}

$("orders").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-order-action]");
  if (!button) return;
  const order = state.ordersById.get(button.closest("tr").dataset.order);
  if (button.dataset.orderAction === "receive") return receiveOrder(order, button);
  return cancelOrder(order, button);
});

// Placing an order: the vial sizes are the chosen product's; the day is today or later.
$("o-product").addEventListener("change", () => fillSizes($("o-size"), state.products.get($("o-product").value)));

$("place").addEventListener("click", () => {
  const dialog = $("place-dialog");
  const active = [...state.products.values()].filter((p) => p.active);
  $("place-form").reset();
  $("o-product").replaceChildren(...active.map((p) => el("option", { value: p.id }, p.name)));
  fillSizes($("o-size"), state.products.get($("o-product").value));
  $("o-expected").min = todayAt(zone());
  say("place-answer", "");
  dialog.onclose = () => $("place").focus();
  dialog.showModal();
  $("o-product").focus();
});

$("place-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    center_id: state.center.id,
    product_id: $("o-product").value,
    vial_size_g: Number($("o-size").value),
    vials: Number($("o-vials").value),
    expected_on: $("o-expected").value,
  };
  if ($("o-note").value.trim()) body.note = $("o-note").value.trim();
  const missing = [
    ["o-vials", $("o-vials").value, "how many vials"],
    ["o-expected", body.expected_on, "the day it is expected"],
  ].filter(([, value]) => !value);
  if (missing.length) {
    say("place-answer", `Give ${missing.map(([, , what]) => what).join(", ")}.`, "bad");
    $(missing[0][0]).focus();
    return;
  }
  try {
    const order = await api("POST", "/api/v1/inventory/orders", body);
    const dialog = $("place-dialog");
    dialog.onclose = null;
    dialog.close();
    await loadOrders();
    showOrders(order.id);
    ordersChanged();
    say("orders-answer", `Ordered ${orderText(order)}, expected ${dayText(order.expected_on, true)}: it counts in the demand from that day.`);
    document.querySelector(`tr[data-order="${order.id}"] th`)?.focus();
  } catch (error) {
    say("place-answer", `Not ordered: ${problemText(error)}`, "bad");
  }
});

// Receiving an order: the lot it arrived as goes into the stock; the vials default to the
// order's.
function receiveOrder(order, button) {
  const dialog = $("arrived-dialog");
  const product = state.products.get(order.product_id);
  $("arrived-form").reset();
  $("arrived-title").textContent = `Receive ${orderText(order)}`;
  $("arrived-what").textContent = `Ordered for ${dayText(order.expected_on, true)}${order.note ? ` (${order.note})` : ""}. The lot goes into the stock at ${state.center.name}.`;
  $("a-vials").value = String(order.vials);
  fillStorage($("a-storage"), $("a-storage-help"), product);
  say("arrived-answer", "");
  let received = null;
  dialog.onsubmit = async (event) => {
    event.preventDefault();
    const body = {
      lot_number: $("a-lot").value.trim(),
      expires_on: $("a-expires").value,
      storage: $("a-storage").value,
      vials: Number($("a-vials").value),
    };
    if ($("a-location").value.trim()) body.location = $("a-location").value.trim();
    const missing = [
      ["a-lot", body.lot_number, "the lot number"],
      ["a-vials", $("a-vials").value, "how many vials"],
      ["a-expires", body.expires_on, "the expiry"],
    ].filter(([, value]) => !value);
    if (missing.length) {
      say("arrived-answer", `Give ${missing.map(([, , what]) => what).join(", ")}.`, "bad");
      $(missing[0][0]).focus();
      return;
    }
    try {
      received = await api("POST", `/api/v1/inventory/orders/${order.id}/receive`, body);
      dialog.close();
    } catch (error) {
      say("arrived-answer", `Not received: ${problemText(error)}`, "bad");
      if (error instanceof ApiProblem && error.status === 409 && /order that is/.test(error.body.detail || "")) {
        loadStock().catch(() => {}); // received or cancelled meanwhile: the list as it now stands
      }
    }
  };
  dialog.onclose = async () => {
    if (!received) {
      if (button.isConnected) button.focus();
      return;
    }
    const lot = received.lot;
    await loadStock(lot.id);
    stockChanged();
    say(
      "stock-answer",
      `Received the order as lot ${lot.lot_number}: ${lot.vials_on_hand} × ${grams(lot.vial_size_g)} ${productName(lot.product_id)}, expiring ${dayText(lot.expires_on)}.`,
    );
    say("orders-answer", "");
    document.querySelector(`tr[data-lot="${lot.id}"] th`)?.focus();
  };
  dialog.showModal();
  $("a-lot").focus();
}

function cancelOrder(order, button) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = "Cancel this order?";
  $("confirm-text").textContent = `The order of ${orderText(order)} expected ${dayText(order.expected_on, true)} is cancelled for good: it no longer counts in the demand, and a shortfall it covered shows again.`;
  $("confirm-yes").textContent = "Cancel the order";
  $("confirm-yes").className = "danger";
  $("confirm-no").textContent = "Keep it";
  say("confirm-answer", "");
  let cancelled = null;
  dialog.onsubmit = async (event) => {
    event.preventDefault();
    try {
      cancelled = await api("POST", `/api/v1/inventory/orders/${order.id}/cancel`);
      dialog.close();
    } catch (error) {
      say("confirm-answer", `Not cancelled: ${problemText(error)}`, "bad");
    }
  };
  dialog.onclose = async () => {
    if (!cancelled) {
      if (button.isConnected) button.focus();
      return;
    }
    await loadOrders();
    showOrders();
    ordersChanged();
    say("orders-answer", `Cancelled the order of ${orderText(cancelled)} expected ${dayText(cancelled.expected_on, true)}.`);
    $("orders-heading").tabIndex = -1;
    $("orders-heading").focus();
  };
  dialog.showModal();
  $("confirm-yes").focus();
}

// --- demand --------------------------------------------------------------------------------

const vialText = (vials) => (vials.length ? vials.map((v) => `${v.count} × ${grams(v.vial_size_g)}`).join(" + ") : "—");

async function loadDemand() {
  const from = todayAt(zone());
  const to = addDays(from, 27);
  const query = new URLSearchParams({ from, to, group: "week" });
  const demand = await api("GET", `/api/v1/centers/${state.center.id}/drug-demand?${query}`);
  $("demand-range").textContent = `Booked course sessions from ${dayText(from, true)} to ${dayText(to, true)}, week by week, against the lots usable then (first expiry first out).`;
  $("reorder").href = `/api/v1/centers/${state.center.id}/reorder.csv?${new URLSearchParams({ from, to })}`;
  $("shortfalls").replaceChildren(
    ...(demand.short.length
      ? demand.short.map((s) =>
          el(
            "li",
            { class: "short-flag" },
            el("span", { class: "icon", "aria-hidden": "true" }, "▲"),
            ` ${productName(s.product_id)} runs short from ${dayText(s.first_short_on, true)}: ${vialText(s.shortfall_vials)} to order.`,
          ),
        )
      : [
          el(
            "li",
            { class: "enough" },
            el("span", { class: "icon", "aria-hidden": "true" }, "✓"),
            demand.items.some((line) => line.on_order_vials.length)
              ? " The stock and what is on order cover every booked dose in these 4 weeks."
              : " The stock covers every booked dose in these 4 weeks.",
          ),
        ]),
  );
  $("demand").replaceChildren(
    ...demand.items.map((line) => {
      const short = line.shortfall_vials.length > 0;
      return el(
        "tr",
        { class: short ? "short" : null },
        el("th", { scope: "row" }, el("time", { datetime: line.date }, dayText(line.date, true))),
        el("td", {}, productName(line.product_id)),
        el("td", { class: "num" }, String(line.sessions)),
        el("td", { class: "num" }, grams(line.grams)),
        el("td", {}, vialText(line.vials)),
        el("td", {}, vialText(line.on_hand_vials)),
        el("td", { class: line.on_order_vials.length ? "on-order" : "muted" }, vialText(line.on_order_vials)),
        el(
          "td",
          { class: short ? "short-flag" : "muted" },
          short ? [el("span", { class: "icon", "aria-hidden": "true" }, "▲"), ` ${vialText(line.shortfall_vials)}`] : "None",
        ),
      );
    }),
  );
  $("demand-empty").hidden = demand.items.length > 0;
  $("demand-table").parentElement.hidden = demand.items.length === 0;
  say("demand-answer", "");
}

// --- start ---------------------------------------------------------------------------------

for (const close of document.querySelectorAll("[data-close]")) {
  close.addEventListener("click", () => close.closest("dialog").close());
}

$("center").addEventListener("change", () => {
  state.center = state.centers.find((c) => c.id === $("center").value);
  centerChanged().catch((error) => toast(problemText(error)));
});

async function start() {
  state.me = await signedIn();
  $("loading").hidden = true;
  if (!ROLES.includes(state.me.role)) {
    $("refused").hidden = false;
    return;
  }
  for (const link of document.querySelectorAll('nav a[href="/pharmacy"]')) link.setAttribute("aria-current", "page");
  for (const node of document.querySelectorAll("[data-pharmacy]")) node.hidden = !keepsStock();
  await loadCenters();
  if (!state.center) {
    $("heading").textContent = "Pharmacy: no center yet";
    return;
  }
  const products = await allPages("/api/v1/products");
  state.products = new Map(products.map((p) => [p.id, p]));
  await Promise.all([loadChairs(), loadLots()]);
  $("pharmacy").hidden = false;
  const asked = window.location.hash.slice(1);
  choose(tabs.find((t) => t.dataset.section === (SECTIONS.includes(asked) ? asked : "queue")));
}

start().catch((error) => {
  $("loading").hidden = false;
  $("loading").textContent = `Could not load the pharmacy screen: ${problemText(error)}`;
});
