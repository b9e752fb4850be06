// Ordering a new course for a patient (/courses/new?patient=<id>). A regimen (the API's, by
// diagnosis) fills in the usual order; the nurse changes what the prescriber ordered
// differently. The order goes to POST /api/v1/courses; a refusal shows its problem detail by
// the form, and the course screen opens once it is ordered.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { allPages as all, todayAt } from "./words.js";

const $ = (id) => document.getElementById(id);
const patientId = new URLSearchParams(window.location.search).get("patient");
const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
// What the demo courses (app/demo.py) order beyond the regimen: an acute GBS course is often
// given in a bed. Everything else stays as the nurse sets it.
const EXTRAS = { "G61.0": { chair_kind: "bed" } };
// Labels of the fields a validation problem may name, as the form calls them.
const FIELDS = {
  diagnosis_code: ["diagnosis", "Diagnosis"],
  product_id: ["product", "Product"],
  center_id: ["center", "Center"],
  start_date: ["start-date", "Start date"],
  weight_basis: ["weight-basis", "Dose by"],
  "induction.total_dose_g_per_kg": ["ind-dose", "Loading total dose"],
  "induction.days": ["ind-days", "Loading days"],
  "maintenance.dose_g_per_kg": ["mnt-dose", "Maintenance dose"],
  "maintenance.interval_days": ["mnt-interval", "Every (days)"],
  "maintenance.window_min_days": ["mnt-min", "Earliest"],
  "maintenance.window_max_days": ["mnt-max", "Latest"],
  "maintenance.cycles": ["mnt-cycles", "Number of doses"],
  "maintenance.end_date": ["mnt-end", "Until"],
  preferred_start_time: ["start-time", "Preferred start"],
  vial_tolerance_pct: ["vials", "Vial rounding"],
  dose_override_reason: ["override", "Reason for the dose"],
  weight_kg: ["weight", "Weight"],
};

let patient = null;
let regimens = [];
let centers = [];
let products = [];
let idempotencyKey = null;


function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const number = (id) => ($(id).value === "" ? null : Number($(id).value));
const grams = (g) => `${(Math.round(g * 10) / 10).toLocaleString("en-GB")} g`;

// --- presets -------------------------------------------------------------------------------

function regimenLabel(r) {
  return `${r.name} (${r.diagnosis_code})`;
}

function showPresets() {
  const list = $("preset-list");
  const byName = [...regimens].sort((a, b) => a.name.localeCompare(b.name));
  const choices = byName.map((r) =>
    el(
      "label",
      { class: "choice" },
      el("input", {
        type: "radio",
        name: "preset",
        value: r.diagnosis_code,
        onchange: () => applyPreset(r),
      }),
      ` ${regimenLabel(r)}`,
    ),
  );
  choices.push(
    el(
      "label",
      { class: "choice" },
      el("input", { type: "radio", name: "preset", value: "", onchange: () => applyPreset(null) }),
      " Another order: enter it by hand",
    ),
  );
  list.replaceChildren(...choices);
}

function applyPreset(r) {
  clearProblem();
  if (!r) {
    $("diagnosis").value = "";
    $("diagnosis").focus();
    figures();
    return;
  }
  $("diagnosis").value = r.diagnosis_code;
  const ind = r.induction;
  $("has-induction").checked = Boolean(ind);
  $("ind-dose").value = ind ? ind.total_dose_g_per_kg : "";
  $("ind-days").value = ind ? ind.days : "";
  $("ind-skip").checked = Boolean(ind && ind.skip_closures);
  const m = r.maintenance;
  $("has-maintenance").checked = Boolean(m);
  $("mnt-dose").value = m ? m.dose_g_per_kg : "";
  $("mnt-interval").value = m ? m.interval_days : "";
  $("mnt-min").value = m ? m.window_min_days : "";
  $("mnt-max").value = m ? m.window_max_days : "";
  $("mnt-cycles").value = m && m.cycles ? m.cycles : "";
  $("mnt-end").value = m && m.end_date ? m.end_date : "";
  const extras = EXTRAS[r.diagnosis_code] || {};
  $("chair-kind").value = extras.chair_kind || "chair";
  phases();
  figures();
}

// --- what the order comes to -----------------------------------------------------------------

function phases() {
  const ind = $("has-induction").checked;
  for (const id of ["ind-dose", "ind-days", "ind-skip"]) $(id).disabled = !ind;
  const mnt = $("has-maintenance").checked;
  for (const id of ["mnt-dose", "mnt-interval", "mnt-min", "mnt-max", "mnt-cycles", "mnt-end"]) {
    $(id).disabled = !mnt;
  }
}

function figures() {
  // The grams at the weight on the form; by adjusted weight the order works them out itself
  // (ideal weight from height and sex, plus 0.4 of the excess).
  const adjusted = $("weight-basis").value === "adjusted";
  const weight = adjusted ? null : number("weight");
  const at = (perKg) => (weight ? `At ${weight} kg: ${grams(perKg * weight)}` : `${perKg} g/kg of adjusted weight`);
  const ind = $("ind-figures");
  const total = number("ind-dose");
  const days = number("ind-days");
  if ($("has-induction").checked && total && days) {
    const daily = weight ? `, ${grams((total * weight) / days)} a day` : "";
    ind.textContent = `${at(total)} in all${daily} over ${days} ${days === 1 ? "day" : "days"}.`;
  } else {
    ind.textContent = $("has-induction").checked ? "" : "No loading dose.";
  }
  const mnt = $("mnt-figures");
  const dose = number("mnt-dose");
  const every = number("mnt-interval");
  if ($("has-maintenance").checked && dose && every) {
    const earliest = number("mnt-min");
    const latest = number("mnt-max");
    const span = earliest && latest ? `, between ${earliest} and ${latest} days after the one before` : "";
    const cycles = number("mnt-cycles");
    const many = $("mnt-end").value ? `, until ${$("mnt-end").value}` : cycles ? `, ${cycles} doses` : "";
    mnt.textContent = `${at(dose)} every ${every} days${span}${many}.`;
  } else {
    mnt.textContent = $("has-maintenance").checked ? "" : "No maintenance.";
  }
}

// --- problems --------------------------------------------------------------------------------

function clearProblem() {
  const box = $("problem");
  box.hidden = true;
  box.replaceChildren();
  for (const field of document.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

function showProblem(error) {
  const box = $("problem");
  box.hidden = false;
  const items = [];
  if (error instanceof ApiProblem && Array.isArray(error.body.errors) && error.body.errors.length) {
    for (const e of error.body.errors) {
      const path = (e.loc || []).filter((p) => p !== "body").join(".");
      const known = FIELDS[path];
      if (known) $(known[0]).setAttribute("aria-invalid", "true");
      items.push(known ? `${known[1]}: ${e.msg}` : path ? `${path}: ${e.msg}` : e.msg);
    }
  }
  const title = error instanceof ApiProblem ? error.body.title || "The order was not accepted" : "The order was not sent";
  box.replaceChildren(
    el("p", { class: "title" }, el("span", { "aria-hidden": "true" }, "✕ "), title),
    items.length ? el("ul", {}, items.map((t) => el("li", {}, t))) : el("p", {}, error.message),
  );
  box.focus();
}

function problemHere(message, fieldId) {
  $(fieldId).setAttribute("aria-invalid", "true");
  showProblem(new Error(message));
}

// --- ordering ----------------------------------------------------------------------------------

function orderBody() {
  const body = {
    patient_id: patient.id,
    center_id: $("center").value,
    product_id: $("product").value,
    diagnosis_code: $("diagnosis").value.trim().toUpperCase(),
    start_date: $("start-date").value,
    preferred_weekdays: [...document.querySelectorAll("#weekdays input:checked")].map((i) => Number(i.value)),
    preferred_start_time: $("start-time").value,
    chair_kind: $("chair-kind").value,
    weight_basis: $("weight-basis").value,
    renal_risk: $("renal").checked,
    thrombosis_risk: $("thrombosis").checked,
    induction: null,
    maintenance: null,
  };
  if ($("has-induction").checked) {
    body.induction = {
      total_dose_g_per_kg: number("ind-dose"),
      days: number("ind-days"),
      skip_closures: $("ind-skip").checked,
    };
  }
  if ($("has-maintenance").checked) {
    body.maintenance = {
      dose_g_per_kg: number("mnt-dose"),
      interval_days: number("mnt-interval"),
      window_min_days: number("mnt-min"),
      window_max_days: number("mnt-max"),
    };
    if ($("mnt-end").value) body.maintenance.end_date = $("mnt-end").value;
    else body.maintenance.cycles = number("mnt-cycles");
  }
  if (number("vials") !== null) body.vial_tolerance_pct = number("vials");
  const reason = $("override").value.trim();
  if (reason) body.dose_override_reason = reason;
  return body;
}

async function saveWeight() {
  const weight = number("weight");
  if (weight === null || weight === Number(patient.weight_kg)) return;
  // The record changes first: the order doses by the patient's weight on file.
  patient = await api(
    "PATCH",
    `/api/v1/patients/${patient.id}`,
    { weight_kg: weight },
    { "If-Match": `"${patient.version}"` },
  );
  toast(`Weight on the record is now ${weight} kg`);
}

async function submit(event) {
  event.preventDefault();
  clearProblem();
  if (!$("diagnosis").value.trim()) return problemHere("Choose a regimen, or give the diagnosis.", "diagnosis");
  if (!$("start-date").value) return problemHere("Give the start date.", "start-date");
  if (!$("has-induction").checked && !$("has-maintenance").checked) {
    return problemHere("A course needs a loading dose, maintenance, or both.", "has-induction");
  }
  const button = $("submit");
  button.disabled = true;
  try {
    await saveWeight();
    const body = orderBody();
    const key = JSON.stringify(body);
    if (!idempotencyKey || idempotencyKey.body !== key) idempotencyKey = { body: key, value: newKey() };
    const course = await api("POST", "/api/v1/courses", body, { "Idempotency-Key": idempotencyKey.value });
    window.location.assign(`/courses/${course.id}`);
  } catch (error) {
    showProblem(error);
  } finally {
    button.disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------------

async function start() {
  const me = await signedIn();
  if (!patientId) {
    $("loading").textContent = "";
    $("no-patient").hidden = false;
    $("heading").textContent = "New course";
    return;
  }
  try {
    patient = await api("GET", `/api/v1/patients/${encodeURIComponent(patientId)}`);
  } catch (error) {
    if (error instanceof ApiProblem && (error.status === 404 || error.status === 422)) {
      $("loading").textContent = "";
      $("no-patient").hidden = false;
      return;
    }
    throw error;
  }
  const name = `${patient.family_name}, ${patient.given_name}`;
  $("heading").textContent = `New course for ${name}`;
  $("patient-link").textContent = name;
  $("patient-link").href = `/patients/${patient.id}`;
  $("cancel").href = `/patients/${patient.id}`;
  if (me.role !== "admin" && me.role !== "nurse") {
    $("loading").textContent = "Only nurses and admins order courses.";
    return;
  }
  [regimens, centers, products] = await Promise.all([
    all("/api/v1/regimens"),
    all("/api/v1/centers"),
    all("/api/v1/products"),
  ]);
  showPresets();
  $("product").replaceChildren(
    ...products
      .filter((p) => p.active)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => el("option", { value: p.id }, `${p.name} (${p.hcpcs_code})`)),
  );
  const usual = products.find((p) => p.active && p.hcpcs_code === "J1561");
  if (usual) $("product").value = usual.id;
  $("center").replaceChildren(...centers.map((c) => el("option", { value: c.id }, c.name)));
  const remembered = localStorage.getItem("chairside.center");
  const center = centers.find((c) => c.id === remembered) || centers[0];
  if (center) {
    $("center").value = center.id;
    $("start-date").value = todayAt(center.timezone);
  }
  $("weekdays").replaceChildren(
    ...WEEKDAYS.map((day, i) =>
      el("label", { class: "check day" }, el("input", { type: "checkbox", value: String(i) }), ` ${day.slice(0, 3)}`),
    ),
  );
  if (patient.weight_kg) $("weight").value = patient.weight_kg;
  for (const id of ["has-induction", "has-maintenance"]) {
    $(id).addEventListener("change", () => {
      phases();
      figures();
    });
  }
  $("order").addEventListener("input", figures);
  $("order").addEventListener("submit", submit);
  phases();
  figures();
  $("loading").textContent = "";
  $("order").hidden = false;
}

start().catch((error) => {
  $("loading").textContent = "";
  toast(error.message);
});
