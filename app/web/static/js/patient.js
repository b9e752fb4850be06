// One patient: who they are, their courses, their visits ahead and behind (in the local time of
// the center each is at), and the insurance authorizations that pay for them, with what is
// used, booked and left. Everything through the API.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { AUTH_STATUS as AUTH, COURSE_STATUS as COURSE, COVER, VISIT_STATUS as VISIT, allPages as all, dayText, sessionLabel, zoned } from "./words.js";

const $ = (id) => document.getElementById(id);
const patientId = decodeURIComponent(window.location.pathname.split("/").filter(Boolean).pop());
const CLINICAL = new Set(["admin", "nurse"]);
const LOST = new Set(["cancelled", "no_show"]);
const DONE = new Set(["completed", ...LOST]);
const SEX = { female: "Female", male: "Male", other: "Other", unknown: "Unknown" };
const UNITS = { visits: "visits", billing_units: "billing units" };

// --- reading -----------------------------------------------------------------------------


// --- words and times -----------------------------------------------------------------------



function age(isoDate) {
  const born = new Date(`${isoDate}T12:00:00Z`);
  const now = new Date();
  let years = now.getUTCFullYear() - born.getUTCFullYear();
  if (
    now.getUTCMonth() < born.getUTCMonth() ||
    (now.getUTCMonth() === born.getUTCMonth() && now.getUTCDate() < born.getUTCDate())
  ) {
    years -= 1;
  }
  return years;
}


const grams = (g) => (g === null || g === undefined ? "" : `${Number(g).toLocaleString("en-GB")} g`);

function shortName(regimens, code) {
  const regimen = regimens.get(code);
  return regimen ? regimen.name.split(":")[0].trim() : code;
}

function courseFigures(c) {
  const parts = [];
  if (c.induction) parts.push(`${c.induction.total_dose_g_per_kg} g/kg over ${c.induction.days} days`);
  if (c.maintenance) {
    const m = c.maintenance;
    const many = m.cycles ? `, ${m.cycles} doses` : m.end_date ? ` until ${dayText(m.end_date)}` : "";
    parts.push(`${m.dose_g_per_kg} g/kg every ${m.interval_days} days${many}`);
  }
  return parts.join(", then ");
}

function badge(state, extra) {
  return el(
    "span",
    { class: "state" },
    el("span", { class: "icon", "aria-hidden": "true" }, state.icon),
    ` ${state.text}`,
    extra ? el("span", { class: "why" }, ` (${extra})`) : null,
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

// --- the screen ----------------------------------------------------------------------------

function showFacts(p) {
  const facts = [
    ["MRN", p.mrn],
    ["Born", `${dayText(p.birth_date)} (${age(p.birth_date)} years)`],
    ["Sex", SEX[p.sex] || p.sex],
    ["Weight", p.weight_kg ? `${p.weight_kg} kg` : "Not recorded"],
    ["Height", p.height_cm ? `${p.height_cm} cm` : "Not recorded"],
  ];
  $("facts").replaceChildren(...facts.flatMap(([k, v]) => [el("div", {}, el("dt", {}, k), el("dd", {}, v))]));
}

function nextSession(plan) {
  return (plan.sessions || []).find((s) => !(s.appointment && DONE.has(s.appointment.status)));
}

function showCourses(courses, plans, ctx) {
  const rows = courses.map((c) => {
    const plan = plans.get(c.id);
    const next = plan ? nextSession(plan) : null;
    const given = plan ? plan.sessions.filter((s) => s.appointment && s.appointment.status === "completed").length : 0;
    let phase = "—";
    let detail = `${given} given`;
    if (next) {
      phase = next.phase === "induction" ? "Loading" : "Maintenance";
      const when = next.appointment
        ? `, ${zoned(next.appointment.start, ctx.centers.get(c.center_id)?.timezone || "UTC").date}`
        : " (not booked)";
      detail = `next: ${sessionLabel(next.phase, next.sequence, next.part)}${when} · ${detail}`;
    } else if (c.status === "active") {
      phase = "Nothing due in the next 12 weeks";
    }
    const name = `${shortName(ctx.regimens, c.diagnosis_code)} (${c.diagnosis_code}) from ${dayText(c.start_date)}`;
    return el(
      "tr",
      {},
      el(
        "th",
        { scope: "row" },
        el("a", { href: `/courses/${c.id}` }, name),
        el("span", { class: "sub" }, courseFigures(c)),
      ),
      el("td", {}, ctx.products.get(c.product_id)?.name || "—"),
      el("td", {}, phase, el("span", { class: "sub" }, detail)),
      el("td", {}, badge(COURSE[c.status] || { icon: "", text: c.status })),
      el("td", {}, ctx.centers.get(c.center_id)?.name || "—"),
    );
  });
  $("courses").replaceChildren(
    table("Courses", ["Course", "Product", "Phase", "Status", "Center"], rows, "No course yet."),
  );
}

function visitRow(a, ctx) {
  const center = ctx.centers.get(a.center_id);
  const tz = center ? center.timezone : "UTC";
  const start = zoned(a.start, tz);
  const end = zoned(a.end, tz);
  const session = ctx.sessions.get(a.id);
  const course = session ? ctx.courseById.get(session.courseId) : null;
  const product = course ? ctx.products.get(course.product_id)?.name : null;
  const dose = session ? session.entry.dose_g ?? session.entry.appointment?.dose_g : null;
  const cover = a.coverage ? COVER[a.coverage.state] : null;
  return el(
    "tr",
    { class: LOST.has(a.status) ? "lost" : null },
    el("th", { scope: "row" }, start.date, el("span", { class: "sub" }, `${start.time}–${end.time}`)),
    el("td", {}, ctx.chairs.get(a.chair_id) || "Chair", el("span", { class: "sub" }, center?.name || "")),
    el("td", {}, product ? `${product}${dose ? `, ${grams(dose)}` : ""}` : "—"),
    el(
      "td",
      {},
      session
        ? el("a", { href: `/courses/${session.courseId}` }, sessionLabel(session.entry.phase, session.entry.sequence, session.entry.part))
        : "Single visit",
    ),
    el("td", {}, badge(VISIT[a.status] || { icon: "", text: a.status })),
    el(
      "td",
      {},
      cover ? badge(cover, a.coverage.state === "uncovered" ? a.coverage.reason : null) : el("span", { class: "hint" }, "—"),
    ),
  );
}

function showVisits(appointments, ctx) {
  const now = Date.now();
  // Upcoming: still to happen (booked, here, infusing) and not over. A visit given, cancelled
  // or missed is past whatever its date says.
  const ahead = (a) => ["booked", "checked_in", "in_progress"].includes(a.status) && Date.parse(a.end) >= now;
  const upcoming = appointments.filter(ahead).sort((x, y) => x.start.localeCompare(y.start));
  const past = appointments.filter((a) => !ahead(a)).sort((x, y) => y.start.localeCompare(x.start));
  const headers = ["When", "Chair", "Drug and dose", "Session", "Status", "Insurance"];
  $("upcoming").replaceChildren(
    table("Upcoming visits", headers, upcoming.map((a) => visitRow(a, ctx)), "No visit booked."),
  );
  $("past").replaceChildren(table("Past visits, latest first", headers, past.map((a) => visitRow(a, ctx)), "No past visit."));
}

function showAuthorizations(auths, usage, ctx) {
  const rows = auths.map((a) => {
    const u = usage.get(a.id);
    const payer = ctx.payers.get(a.payer_id)?.name || "Payer";
    const unitName = UNITS[a.units_type] || a.units_type;
    const name = `${payer}${a.auth_number ? ` · ${a.auth_number}` : ""}`;
    const figures = u
      ? [
          el("span", { class: "units" }, `${u.units_used} used · ${u.units_scheduled} booked · ${u.units_remaining} left`),
          el("span", { class: "sub" }, `of ${u.units_approved} ${unitName} approved`),
        ]
      : ["—"];
    const product = [...ctx.products.values()].find((p) => p.hcpcs_code === a.service_code);
    return el(
      "tr",
      {},
      el(
        "th",
        { scope: "row" },
        ctx.billing ? el("a", { href: `/billing/authorizations/${a.id}` }, name) : name,
      ),
      el("td", {}, a.service_code, product ? el("span", { class: "sub" }, product.name) : null),
      el("td", {}, AUTH[a.status] || a.status),
      el("td", {}, `${dayText(a.valid_from)} – ${dayText(a.valid_to)}`),
      el("td", {}, figures),
      el(
        "td",
        {},
        u && u.renew_by ? dayText(u.renew_by) : "—",
        u && u.projected_exhaustion_date
          ? el("span", { class: "sub" }, `runs out ${dayText(u.projected_exhaustion_date)}`)
          : null,
      ),
    );
  });
  $("authorizations").replaceChildren(
    table(
      "Insurance authorizations",
      ["Payer and number", "Service", "Status", "Valid", "Units", "Renew by"],
      rows,
      "No authorization on file.",
    ),
  );
}

async function start() {
  const me = await signedIn();
  let patient;
  try {
    patient = await api("GET", `/api/v1/patients/${encodeURIComponent(patientId)}`);
  } catch (error) {
    if (error instanceof ApiProblem && (error.status === 404 || error.status === 422)) {
      $("heading").textContent = "No such patient";
      $("loading").textContent = "";
      return;
    }
    throw error;
  }
  $("heading").textContent = `${patient.family_name}, ${patient.given_name}`;
  showFacts(patient);
  if (CLINICAL.has(me.role)) {
    const link = $("new-course");
    link.href = `/courses/new?${new URLSearchParams({ patient: patient.id })}`;
    link.hidden = false;
  }
  const [courses, appointments, auths, centers, products, regimens, payers] = await Promise.all([
    all(`/api/v1/courses?patient_id=${patient.id}`),
    all(`/api/v1/appointments?patient_id=${patient.id}`),
    all(`/api/v1/authorizations?patient_id=${patient.id}`),
    all("/api/v1/centers"),
    all("/api/v1/products"),
    all("/api/v1/regimens"),
    all("/api/v1/payers"),
  ]);
  const ctx = {
    centers: new Map(centers.map((c) => [c.id, c])),
    products: new Map(products.map((p) => [p.id, p])),
    regimens: new Map(regimens.map((r) => [r.diagnosis_code, r])),
    payers: new Map(payers.map((p) => [p.id, p])),
    courseById: new Map(courses.map((c) => [c.id, c])),
    chairs: new Map(),
    sessions: new Map(), // appointment id -> {courseId, entry}
    billing: me.role === "admin" || me.role === "billing",
  };
  const wanted = new Set([...appointments.map((a) => a.center_id), ...courses.map((c) => c.center_id)]);
  const [plans, chairLists, usages] = await Promise.all([
    Promise.all(courses.map((c) => api("GET", `/api/v1/courses/${c.id}/plan`).then((p) => [c.id, p]))),
    Promise.all([...wanted].map((id) => all(`/api/v1/centers/${id}/chairs`))),
    Promise.all(auths.map((a) => api("GET", `/api/v1/authorizations/${a.id}/usage`).then((u) => [a.id, u]))),
  ]);
  for (const chairs of chairLists) for (const chair of chairs) ctx.chairs.set(chair.id, chair.label);
  const planMap = new Map(plans);
  for (const [courseId, plan] of planMap) {
    for (const entry of plan.sessions) {
      if (entry.appointment) ctx.sessions.set(entry.appointment.id, { courseId, entry });
    }
  }
  showCourses(courses, planMap, ctx);
  showVisits(appointments, ctx);
  showAuthorizations(auths, new Map(usages), ctx);
  $("loading").textContent = "";
}

start().catch((error) => {
  $("loading").textContent = "";
  toast(error.message);
});
