// One course: its order, its plan session by session (window, target, the visit booked, dose,
// chair time, who pays, what was given), booking its next sessions, and what the last re-plan
// changed. Times are the course center's local time; chairs go by their labels.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { COURSE_STATUS as COURSE, COVER, VISIT_STATUS, allPages as all, dayText, sessionLabel, zoned as zonedIn } from "./words.js";

const $ = (id) => document.getElementById(id);
const courseId = decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop());
const CLINICAL = new Set(["admin", "nurse"]);
const LOST = new Set(["cancelled", "no_show"]);
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
// On a plan a session is given or missed.
const VISIT = {
  ...VISIT_STATUS,
  completed: { icon: "✓", text: "Given" },
  no_show: { icon: "!", text: "Missed (no-show)" },
};
const REACTION = { none: "no reaction", mild: "mild reaction", moderate: "moderate reaction", severe: "severe reaction" };
const CHAIR_KIND = { chair: "recliner chair", bed: "bed", isolation: "isolation room" };

const state = { course: null, center: null, patient: null, chairs: new Map(), me: null };

// --- words and times -----------------------------------------------------------------------

function zoned(instant) {
  return zonedIn(instant, state.center ? state.center.timezone : "UTC");
}


function minutesText(minutes) {
  if (minutes === null || minutes === undefined) return "—";
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h ? `${h} h${m ? ` ${m} min` : ""}` : `${m} min`;
}

const grams = (g) => (g === null || g === undefined ? "—" : `${Number(g).toLocaleString("en-GB")} g`);


const chairLabel = (id) => state.chairs.get(id) || "a chair at another center";

function badge(s, extra, cls) {
  return el(
    "span",
    { class: `state${cls ? ` ${cls}` : ""}` },
    el("span", { class: "icon", "aria-hidden": "true" }, s.icon),
    ` ${s.text}`,
    extra ? el("span", { class: "why" }, `: ${extra}`) : null,
  );
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return el("p", { class: "hint" }, empty);
  return el(
    "table",
    { class: "data" },
    el("caption", { class: "visually-hidden" }, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows),
  );
}

// --- the order -----------------------------------------------------------------------------

function showFacts(course, regimen, product) {
  const c = course;
  const weekdays = c.preferred_weekdays.length ? c.preferred_weekdays.map((d) => WEEKDAYS[d]).join(", ") : "any day";
  const risks = [c.renal_risk ? "renal risk" : null, c.thrombosis_risk ? "thrombosis risk" : null].filter(Boolean);
  const facts = [
    ["Status", badge(COURSE[c.status] || { icon: "", text: c.status })],
    ["Diagnosis", regimen ? `${regimen.name.split(":")[0].trim()} (${c.diagnosis_code})` : c.diagnosis_code],
    ["Product", product ? `${product.name} (${product.hcpcs_code})` : "—"],
    ["Center", state.center ? state.center.name : "—"],
    ["Starts", dayText(c.start_date, true)],
    [
      "Loading",
      c.induction
        ? `${c.induction.total_dose_g_per_kg} g/kg over ${c.induction.days} days${c.induction.skip_closures ? " (may skip a closed day)" : ""}`
        : "None",
    ],
    [
      "Maintenance",
      c.maintenance
        ? `${c.maintenance.dose_g_per_kg} g/kg every ${c.maintenance.interval_days} days (between ${c.maintenance.window_min_days} and ${c.maintenance.window_max_days}), ${c.maintenance.cycles ? `${c.maintenance.cycles} doses` : `until ${dayText(c.maintenance.end_date)}`}`
        : "None",
    ],
    ["Books", `${weekdays} at ${c.preferred_start_time}, ${CHAIR_KIND[c.chair_kind] || c.chair_kind}`],
    [
      "Dosing",
      `${c.weight_basis === "adjusted" ? "Adjusted" : "Actual"} body weight${c.vial_tolerance_pct ? `, whole vials within ${c.vial_tolerance_pct} %` : ""}${risks.length ? `; ${risks.join(", ")}: minimum rate` : ""}`,
    ],
  ];
  $("facts").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

// --- the plan ------------------------------------------------------------------------------

function recordText(r) {
  const parts = [];
  if (r.dose_given_g !== null) parts.push(`${grams(r.dose_given_g)} given`);
  if (r.weight_kg !== null) parts.push(`weighed ${r.weight_kg} kg`);
  parts.push(REACTION[r.reaction] || r.reaction);
  if (r.tolerated_rate_mg_per_kg_min !== null) parts.push(`tolerated ${r.tolerated_rate_mg_per_kg_min} mg/kg/min`);
  return parts.join(", ");
}

function windowCell(s) {
  // A loading day's window is its one day; a maintenance session's runs over days.
  if (s.window_start === s.window_end) return [dayText(s.window_start, true), el("span", { class: "sub" }, "that day")];
  return [
    `${dayText(s.window_start)} – ${dayText(s.window_end)}`,
    el("span", { class: "sub" }, `target ${dayText(s.target_date, true)}`),
  ];
}

function statusCell(s) {
  const parts = [];
  const a = s.appointment;
  if (a) parts.push(badge(VISIT[a.status] || { icon: "", text: a.status }));
  else if (s.unbookable_reason) parts.push(badge({ icon: "⚠", text: "Cannot be booked" }, null, "bad"));
  else parts.push(badge({ icon: "…", text: "Due, not booked" }));
  if (a && s.unbookable_reason) parts.push(el("span", { class: "flag bad" }, el("span", { "aria-hidden": "true" }, "⚠ "), s.unbookable_reason));
  else if (s.unbookable_reason) parts.push(el("span", { class: "sub" }, s.unbookable_reason));
  if (s.outside_window) parts.push(el("span", { class: "flag" }, el("span", { "aria-hidden": "true" }, "⚠ "), "Outside its window (a nurse's choice)"));
  if (s.pinned) parts.push(el("span", { class: "flag" }, el("span", { "aria-hidden": "true" }, "⚑ "), "Placed by a nurse: re-plans leave it"));
  return parts;
}

function coverCell(s) {
  if (s.appointment && LOST.has(s.appointment.status)) return el("span", { class: "hint" }, "— (not given)");
  const c = COVER[s.coverage] || COVER.unknown;
  if (s.coverage === "unknown") return badge(c, s.appointment ? s.coverage_reason : "until it is booked", c.cls);
  return badge(c, s.coverage === "uncovered" ? s.coverage_reason : null, c.cls);
}

function planRow(s) {
  const a = s.appointment;
  let visit = el("span", { class: "hint" }, "Not booked");
  if (a) {
    const start = zoned(a.start);
    const end = zoned(a.end);
    visit = [start.date, el("span", { class: "sub" }, `${start.time}–${end.time}, ${chairLabel(a.chair_id)}`)];
  }
  const lost = a && LOST.has(a.status);
  return el(
    "tr",
    { class: lost ? "lost" : null, "data-session": `${s.phase}-${s.sequence}-${s.part}` },
    el(
      "th",
      { scope: "row" },
      sessionLabel(s.phase, s.sequence, s.part),
      s.dose_number ? el("span", { class: "sub" }, `dose ${s.dose_number}`) : null,
    ),
    el("td", {}, windowCell(s)),
    el("td", {}, visit),
    el("td", { class: "num" }, grams(s.dose_g)),
    el("td", { class: "num" }, minutesText(s.chair_minutes)),
    el("td", {}, coverCell(s)),
    el("td", {}, statusCell(s)),
    el("td", {}, s.record ? recordText(s.record) : el("span", { class: "hint" }, "—")),
  );
}

function showPlan(plan) {
  const rows = plan.sessions.map(planRow);
  $("plan").replaceChildren(
    table(
      "The course's sessions in order",
      ["Session", "Window", "Visit", "Dose", "Chair time", "Insurance", "Status", "Given"],
      rows,
      plan.status === "active" ? "No session due in this period." : "No session: the course is not active.",
    ),
  );
  $("splits").replaceChildren(
    ...(plan.splits || []).map((s) =>
      el(
        "p",
        { class: "notice" },
        el("span", { "aria-hidden": "true" }, "⚠ "),
        `${s.phase === "induction" ? "Loading dose" : "Maintenance dose"}: ${s.detail}`,
      ),
    ),
  );
  showReplan(plan.last_replan);
}

// --- what the last re-plan changed -----------------------------------------------------------

function placeText(p, withDose) {
  if (!p) return el("span", { class: "hint" }, "—");
  const start = zoned(p.start);
  const end = zoned(p.end);
  return [
    `${start.date}, ${start.time}–${end.time}`,
    el("span", { class: "sub" }, `${chairLabel(p.chair_id)}${withDose ? `; ${grams(p.dose_g)}, ${minutesText(p.duration_minutes)}` : ""}`),
  ];
}

function sizeText(p) {
  return p ? `${grams(p.dose_g)}, ${minutesText(p.duration_minutes)} in the chair` : "—";
}

function showReplan(last) {
  const box = $("replan");
  if (!last) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const when = zoned(last.at);
  $("replan-what").replaceChildren(
    el("span", { class: "icon", "aria-hidden": "true" }, "↻ "),
    `Re-planned ${when.date} at ${when.time}, after ${last.trigger}.`,
  );
  const rows = [];
  for (const c of last.moved) {
    rows.push(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, sessionLabel(c.phase, c.sequence, c.part)),
        el("td", {}, "Moved"),
        el("td", {}, placeText(c.from, true)),
        el("td", {}, placeText(c.to, true)),
      ),
    );
  }
  for (const c of last.resized) {
    rows.push(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, sessionLabel(c.phase, c.sequence, c.part)),
        el("td", {}, "New dose or chair time (same place)"),
        el("td", {}, sizeText(c.from)),
        el("td", {}, sizeText(c.to)),
      ),
    );
  }
  for (const c of last.added) {
    rows.push(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, sessionLabel(c.phase, c.sequence, c.part)),
        el("td", {}, "Added in place of a lost day"),
        el("td", {}, el("span", { class: "hint" }, "—")),
        el("td", {}, placeText(c.to, true)),
      ),
    );
  }
  $("replan-changes").replaceChildren(
    table("Sessions the last re-plan changed", ["Session", "Change", "Was", "Now"], rows, "It changed no session."),
  );
}

// --- booking ---------------------------------------------------------------------------------

async function loadPlan() {
  const through = $("through").value;
  const query = through ? `?${new URLSearchParams({ through })}` : "";
  const plan = await api("GET", `/api/v1/courses/${state.course.id}/plan${query}`);
  showPlan(plan);
  return plan;
}

async function book(event) {
  event.preventDefault();
  const answer = $("book-answer");
  answer.className = "answer";
  answer.textContent = "Booking…";
  const through = $("book-through").value;
  $("book-save").disabled = true;
  try {
    const result = await api("POST", `/api/v1/courses/${state.course.id}/book`, through ? { through } : undefined);
    const n = result.booked.length;
    const parts = [n ? `Booked ${n} ${n === 1 ? "session" : "sessions"}.` : "Nothing new to book in that period."];
    if (result.unbookable) {
      parts.push(
        `${sessionLabel(result.unbookable.phase, result.unbookable.sequence, result.unbookable.part)} could not be booked: ${result.unbookable.unbookable_reason}`,
      );
    }
    answer.className = result.unbookable ? "answer bad" : "answer ok";
    answer.textContent = parts.join(" ");
    if (through && (!$("through").value || $("through").value < through)) $("through").value = through;
    await loadPlan();
  } catch (error) {
    answer.className = "answer bad";
    answer.textContent = error instanceof ApiProblem ? error.body.detail || error.message : error.message;
  } finally {
    $("book-save").disabled = false;
  }
}

// --- start -------------------------------------------------------------------------------------


async function start() {
  state.me = await signedIn();
  let course;
  try {
    course = await api("GET", `/api/v1/courses/${encodeURIComponent(courseId)}`);
  } catch (error) {
    if (error instanceof ApiProblem && (error.status === 404 || error.status === 422)) {
      $("heading").textContent = "No such course";
      $("loading").textContent = "";
      return;
    }
    throw error;
  }
  state.course = course;
  const [patient, center, chairs, regimens, product] = await Promise.all([
    api("GET", `/api/v1/patients/${course.patient_id}`),
    api("GET", `/api/v1/centers/${course.center_id}`),
    all(`/api/v1/centers/${course.center_id}/chairs`),
    all("/api/v1/regimens"),
    api("GET", `/api/v1/products/${course.product_id}`),
  ]);
  state.patient = patient;
  state.center = center;
  for (const chair of chairs) state.chairs.set(chair.id, chair.label);
  const regimen = regimens.find((r) => r.diagnosis_code === course.diagnosis_code);
  const name = `${patient.family_name}, ${patient.given_name}`;
  const condition = regimen ? regimen.name.split(":")[0].trim() : course.diagnosis_code;
  $("heading").textContent = `${condition} course — ${name}`;
  $("patient-link").textContent = name;
  $("patient-link").href = `/patients/${patient.id}`;
  showFacts(course, regimen, product);
  if (CLINICAL.has(state.me.role) && course.status === "active") {
    $("book").hidden = false;
    $("book").addEventListener("submit", book);
  }
  $("through-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadPlan().catch((error) => toast(error.message));
  });
  await loadPlan();
  $("loading").textContent = "";
}

start().catch((error) => {
  $("loading").textContent = "";
  toast(error.message);
});
