// One authorization: its number, payer, patient, product and valid period; units approved,
// used, booked and left; when to renew it and when its units run out; a burn-down of the
// units left over the period (an SVG drawn here, with the same figures in a table); and its
// live alerts, with the work queue's actions. For a payer that takes requests electronically
// (Da Vinci PAS), "Submit to payer" on a draft, where a pended request stands, and every
// exchange with the payer. Billing and admin users only.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { AUTH_STATUS, zoned } from "./words.js";
import {
  AlertRows,
  alertHead,
  BILLING_ROLES,
  daysBetween,
  problemText,
  shortDate,
} from "./billing.js";

const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";

const authorizationId = decodeURIComponent(window.location.pathname.split("/").pop());

// --- reading it -----------------------------------------------------------------------------

async function product(auth, usage) {
  try {
    const courseId = usage.course_id || auth.course_id;
    if (courseId) {
      const course = await api("GET", `/api/v1/courses/${courseId}`);
      return await api("GET", `/api/v1/products/${course.product_id}`);
    }
    const all = await api("GET", "/api/v1/products?limit=500");
    return all.items.find((p) => p.hcpcs_code === auth.service_code && p.active) || null;
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 404) return null;
    throw error;
  }
}

function unitsName(auth, drug, count = 2) {
  if (auth.units_type === "visits") return count === 1 ? "visit" : "visits";
  const unit = count === 1 ? "billing unit" : "billing units";
  return drug ? `${unit} (${drug.billing_unit_mg} mg)` : unit;
}

// --- the facts ------------------------------------------------------------------------------

// A description list; `grouped` wraps each term and its value in a div (a tile).
function facts(list, rows, grouped = false) {
  const pairs = rows.filter(Boolean).map(([term, ...value]) => [el("dt", {}, term), el("dd", {}, ...value)]);
  list.replaceChildren(...(grouped ? pairs.map((pair) => el("div", {}, ...pair)) : pairs.flat()));
}

// "in 12 days", "today", "3 days ago", from the center's today.
function relative(today, date) {
  const days = daysBetween(today, date);
  const plural = (n) => (n === 1 ? "1 day" : `${n} days`);
  const text = days === 0 ? "today" : days > 0 ? `in ${plural(days)}` : `${plural(-days)} ago`;
  return el("span", { class: `sub days${days < 0 ? " overdue" : ""}` }, text);
}

function showFacts(auth, usage, payer, patient, drug) {
  const number = auth.auth_number || "without a number";
  $("heading").textContent = `Authorization ${number}`;
  document.title = `Authorization ${number} · Chairside`;
  const period = daysBetween(auth.valid_from, auth.valid_to) + 1;
  facts($("facts"), [
    ["Status", AUTH_STATUS[auth.status] || auth.status],
    [
      "Patient",
      el("a", { href: `/patients/${patient.id}` }, `${patient.family_name}, ${patient.given_name}`),
      el("span", { class: "sub" }, `MRN ${patient.mrn}`),
    ],
    ["Payer", payer.name, el("span", { class: "sub" }, `Decides in ${payer.turnaround_days} days; renewal margin ${payer.renewal_margin_days} days`)],
    ["Product", drug ? `${drug.name} (${auth.service_code})` : auth.service_code],
    [
      "Valid",
      el("time", { datetime: auth.valid_from }, shortDate(auth.valid_from)),
      " to ",
      el("time", { datetime: auth.valid_to }, shortDate(auth.valid_to)),
      el("span", { class: "sub" }, `${period} days`),
    ],
    ["Counted in", unitsName(auth, drug)],
  ], true);
  const unit = unitsName(auth, drug);
  facts($("figures"), [
    ["Approved", el("span", { class: "big" }, String(usage.units_approved)), ` ${unit}`],
    ["Used", el("span", { class: "big" }, String(usage.units_used)), " by sessions given"],
    ["Booked", el("span", { class: "big" }, String(usage.units_scheduled)), " held by sessions booked"],
    ["Left", el("span", { class: "big" }, String(usage.units_remaining)), ` ${unit}`],
    [
      "Renew by",
      usage.renew_by
        ? [el("time", { datetime: usage.renew_by, class: "big" }, shortDate(usage.renew_by)), relative(usage.today, usage.renew_by)]
        : el("span", { class: "muted" }, "No renewal date (not approved)"),
    ],
    [
      "Runs out",
      usage.projected_exhaustion_date
        ? [
            el("time", { datetime: usage.projected_exhaustion_date, class: "big" }, shortDate(usage.projected_exhaustion_date)),
            el("span", { class: "sub" }, "the last session it pays for, at the course's pace"),
          ]
        : el("span", { class: "muted" }, "Not before the period ends"),
    ],
  ], true);
}

// --- the burn-down --------------------------------------------------------------------------

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The sessions drawing on it, in order, each with the units left before and after.
function steps(auth, usage) {
  let left = auth.units_approved;
  let from = auth.valid_from;
  return usage.sessions.map((session) => {
    const step = { session, from, before: left, after: left - session.units };
    left = step.after;
    from = session.date;
    return step;
  });
}

function niceStep(top) {
  for (const step of [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000]) {
    if (top / step <= 5) return step;
  }
  return Math.ceil(top / 5);
}

const monthFormat = new Intl.DateTimeFormat("en-GB", { month: "short", timeZone: "UTC" });
const minDate = (dates) => dates.reduce((a, b) => (b < a ? b : a));
const maxDate = (dates) => dates.reduce((a, b) => (b > a ? b : a));

function burnDown(auth, usage, drug) {
  const unit = unitsName(auth, drug);
  const W = 760;
  const H = 270;
  const L = 48;
  const R = 24;
  const T = 46;
  const B = 34;
  const top = Math.max(auth.units_approved, 1);
  const span = Math.max(daysBetween(auth.valid_from, auth.valid_to), 1);
  // The period, stretched to today and the renew-by date when they are near it.
  const near = (d) => d && daysBetween(auth.valid_from, d) >= -span / 2 && daysBetween(auth.valid_to, d) <= span / 2;
  const marks = [usage.today, usage.renew_by, usage.projected_exhaustion_date, ...usage.sessions.map((s) => s.date)];
  const ends = [auth.valid_from, auth.valid_to, ...marks.filter(near)];
  const first = minDate(ends);
  const last = maxDate(ends);
  const days = Math.max(daysBetween(first, last), 1);
  const round = (v) => Math.round(v * 10) / 10;
  const x = (d) => round(L + ((W - L - R) * daysBetween(first, d)) / days);
  const y = (u) => round(T + (H - T - B) * (1 - Math.max(0, u) / top));
  const chart = [];

  // The valid period, shaded, and the grid: units up the side, months along the bottom.
  chart.push(svg("rect", { class: "period", x: x(auth.valid_from), y: T, width: round(x(auth.valid_to) - x(auth.valid_from)), height: H - T - B }));
  const step = niceStep(top);
  const levels = [];
  for (let u = 0; u < top; u += step) levels.push(u);
  levels.push(top);
  const axis = svg("g", { class: "axis" });
  for (const u of levels) {
    axis.append(
      svg("line", { class: "grid", x1: L, x2: W - R, y1: y(u), y2: y(u) }),
      svg("text", { x: L - 8, y: y(u) + 4, "text-anchor": "end" }, String(u)),
    );
  }
  // The first day, then each month's first.
  axis.append(
    svg("line", { class: "tick", x1: x(first), x2: x(first), y1: H - B, y2: H - B + 6 }),
    svg("text", { x: x(first) + 3, y: H - B + 20 }, shortDate(first)),
  );
  let month = new Date(`${first.slice(0, 7)}-01T12:00:00Z`);
  month.setUTCMonth(month.getUTCMonth() + 1);
  while (month.toISOString().slice(0, 10) <= last) {
    const iso = month.toISOString().slice(0, 10);
    const name = monthFormat.format(month);
    axis.append(svg("line", { class: "tick", x1: x(iso), x2: x(iso), y1: H - B, y2: H - B + 6 }));
    if (x(iso) - x(first) > 90) {
      // named unless it would run into the first day's label; the year with January's
      axis.append(svg("text", { x: x(iso) + 3, y: H - B + 20 }, iso.slice(5, 7) === "01" ? `${name} ${iso.slice(0, 4)}` : name));
    }
    month.setUTCMonth(month.getUTCMonth() + 1);
  }
  axis.append(svg("line", { class: "base", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
  chart.push(axis);

  // The units left: a step down at each session, solid where given, dashed where booked.
  const taken = steps(auth, usage);
  const line = svg("g", { class: "units" });
  for (const s of taken) {
    line.append(
      svg("path", {
        class: s.session.given ? "used" : "booked",
        d: `M ${x(s.from)} ${y(s.before)} H ${x(s.session.date)} V ${y(s.after)}`,
      }),
    );
  }
  const end = taken.length ? taken[taken.length - 1] : null;
  const lastDay = end ? end.session.date : auth.valid_from;
  const left = end ? end.after : auth.units_approved;
  const runsOut = usage.projected_exhaustion_date;
  const projected = Boolean(runsOut && left > 0 && runsOut > lastDay);
  if (projected) {
    line.append(svg("path", { class: "projected", d: `M ${x(lastDay)} ${y(left)} L ${x(runsOut)} ${y(0)}` }));
  } else if (lastDay < auth.valid_to) {
    line.append(svg("path", { class: "flat", d: `M ${x(lastDay)} ${y(left)} H ${x(auth.valid_to)}` }));
  }
  for (const s of taken) {
    const what = s.session.given ? "given" : "booked";
    line.append(
      svg(
        "circle",
        { class: `dot ${s.session.given ? "used" : "booked"}`, cx: x(s.session.date), cy: y(s.after), r: 4.5 },
        svg("title", {}, `${shortDate(s.session.date)}: session ${what}, ${s.session.units} ${unitsName(auth, drug, s.session.units)}; ${s.after} left`),
      ),
    );
  }
  chart.push(line);

  // Renew-by and today, each a line with its name above the plot.
  const marker = (date, cls, label, row) => {
    if (!date || date < first || date > last) return null;
    const at = x(date);
    const right = at > W / 2;
    return svg(
      "g",
      { class: `marker ${cls}` },
      svg("line", { x1: at, x2: at, y1: row - 4, y2: H - B }),
      svg("text", { x: right ? at - 5 : at + 5, y: row, "text-anchor": right ? "end" : "start" }, label),
    );
  };
  chart.push(
    marker(usage.renew_by, "renew", `Renew by ${shortDate(usage.renew_by || auth.valid_to)}`, 16),
    marker(usage.today, "today", `Today ${shortDate(usage.today)}`, 34),
  );

  const desc = [
    `${auth.units_approved} ${unit} approved from ${shortDate(auth.valid_from)} to ${shortDate(auth.valid_to)}:`,
    `${usage.units_used} used, ${usage.units_scheduled} booked, ${usage.units_remaining} left.`,
    usage.renew_by ? `Renew by ${shortDate(usage.renew_by)}.` : "",
    runsOut ? `The units run out around ${shortDate(runsOut)}.` : "The units last the period.",
    `Today is ${shortDate(usage.today)}. The table below lists each session.`,
  ].join(" ");
  const node = svg(
    "svg",
    {
      class: "burn",
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-labelledby": "chart-title chart-desc",
      preserveAspectRatio: "xMinYMin meet",
    },
    svg("title", { id: "chart-title" }, `Units left on authorization ${auth.auth_number || ""}`.trim()),
    svg("desc", { id: "chart-desc" }, desc),
    chart,
  );
  return { node, projected };
}

function swatch(cls, shape = "line") {
  const mark =
    shape === "dot"
      ? svg("circle", { class: `dot ${cls}`, cx: 14, cy: 8, r: 4.5 })
      : svg("path", { class: cls, d: "M 2 8 H 26" });
  return svg("svg", { class: "swatch", viewBox: "0 0 28 16", width: 28, height: 16, "aria-hidden": "true", focusable: "false" }, mark);
}

function showChart(auth, usage, drug) {
  const unit = unitsName(auth, drug);
  const runsOut = usage.projected_exhaustion_date;
  const { node, projected } = burnDown(auth, usage, drug);
  const legend = el(
    "ul",
    { class: "legend" },
    el("li", {}, swatch("used"), "Used by sessions given"),
    el("li", {}, swatch("booked"), "Held by sessions booked"),
    projected ? el("li", {}, swatch("projected"), "Projected at the course's pace") : null,
    el("li", {}, swatch("renew", "line"), "Renew by"),
    el("li", {}, swatch("today", "line"), "Today"),
  );
  $("chart").replaceChildren(
    node,
    el("figcaption", {}, el("span", { class: "hint" }, `Up the side: ${unit} left. Along the bottom: dates. The shaded band is the valid period.`), legend),
  );
  const rows = [
    el(
      "tr",
      {},
      el("td", {}, el("time", { datetime: auth.valid_from }, shortDate(auth.valid_from))),
      el("th", { scope: "row" }, "Approved"),
      el("td", { class: "num" }, `+${auth.units_approved}`),
      el("td", { class: "num" }, String(auth.units_approved)),
    ),
    ...steps(auth, usage).map((s) =>
      el(
        "tr",
        { class: s.session.given ? "given" : "booked" },
        el("td", {}, el("time", { datetime: s.session.date }, shortDate(s.session.date))),
        el("th", { scope: "row" }, s.session.given ? "Session given" : "Session booked"),
        el("td", { class: "num" }, `−${s.session.units}`),
        el("td", { class: "num" }, String(s.after)),
      ),
    ),
  ];
  if (usage.renew_by) {
    rows.push(
      el(
        "tr",
        { class: "mark" },
        el("td", {}, el("time", { datetime: usage.renew_by }, shortDate(usage.renew_by))),
        el("th", { scope: "row" }, "Renew by"),
        el("td", { class: "num" }, ""),
        el("td", { class: "num" }, ""),
      ),
    );
  }
  if (runsOut) {
    rows.push(
      el(
        "tr",
        { class: "mark" },
        el("td", {}, el("time", { datetime: runsOut }, shortDate(runsOut))),
        el("th", { scope: "row" }, "Runs out (projected)"),
        el("td", { class: "num" }, ""),
        el("td", { class: "num" }, ""),
      ),
    );
  }
  rows.sort((a, b) => a.querySelector("time").getAttribute("datetime").localeCompare(b.querySelector("time").getAttribute("datetime")));
  $("burn-rows").replaceChildren(...rows);
}


// --- with the payer (electronic prior authorization) ----------------------------------------

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

// An instant as "Tue 1 Dec 2026, 21:40", in this browser's zone.
function when(instant) {
  const { date, time } = zoned(instant, ZONE);
  return el("time", { datetime: instant }, `${date}, ${time}`);
}

const EXCHANGE_KIND = {
  submit: "Submitted",
  inquire: "Asked again",
  notification: "Payer notification",
  eligibility: "Benefits check",
};

// The payer's review action (X12 306), or how the call failed.
const OUTCOME = {
  A1: { icon: "✓", text: "Approved", cls: "ok" },
  A2: { icon: "◑", text: "Partially approved", cls: "ok" },
  A3: { icon: "✕", text: "Denied", cls: "bad" },
  A4: { icon: "…", text: "Pended", cls: "wait" },
  A6: { icon: "◑", text: "Partially approved", cls: "ok" },
  refused: { icon: "!", text: "Refused by the payer", cls: "bad" },
  garbled: { icon: "?", text: "Answer could not be read", cls: "bad" },
  timeout: { icon: "⌛", text: "No answer in time", cls: "bad" },
  network: { icon: "!", text: "Could not reach the payer", cls: "bad" },
  server_error: { icon: "!", text: "Payer's system failed", cls: "bad" },
  unauthorized: { icon: "!", text: "Our credentials were refused", cls: "bad" },
  notified: { icon: "✉", text: "Notified", cls: "wait" },
};

function took(ms) {
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

// What a failed submission means, in words: the problem's title and detail, never its JSON.
function submitProblem(error) {
  if (!(error instanceof ApiProblem)) return `Could not submit: ${error.message}`;
  const type = String(error.body.type || "");
  const detail = error.body.detail ? ` ${sentence(error.body.detail)}` : "";
  if (error.status === 504 || error.status === 503 || type.endsWith("payer-unreachable")) {
    return "The payer did not answer; nothing was changed. Try again.";
  }
  if (type.endsWith("payer-refused")) {
    return `The payer refused the request.${detail} The authorization is still a draft: correct it and submit again.`;
  }
  if (type.endsWith("payer-garbled")) {
    return `The payer's answer could not be read.${detail} The authorization is still a draft.`;
  }
  return `Could not submit: ${problemText(error)}`;
}

function sentence(text) {
  const t = text.trim();
  if (!t) return "";
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

function electronicFacts(auth, payer) {
  const e = auth.electronic;
  const rows = [];
  if (e && e.submitted_at) rows.push(["Submitted", when(e.submitted_at)]);
  if (auth.status === "pending" && e) {
    rows.push([
      "Next inquiry",
      e.next_inquiry_at ? when(e.next_inquiry_at) : el("span", { class: "muted" }, "Not planned"),
      el("span", { class: "sub" }, `Asked again ${e.inquiries === 1 ? "once" : `${e.inquiries} times`} so far; the payer decides within ${auth.expedited ? payer.expedited_turnaround_days : payer.turnaround_days} days`),
    ]);
  }
  if (e && e.decided_at) rows.push(["Decided", when(e.decided_at)]);
  if (e && e.last_error) rows.push(["Last attempt", el("span", { class: "bad-text" }, sentence(e.last_error))]);
  return rows;
}

// The card is shown when the payer takes electronic requests, or this one went electronically.
function showElectronic(auth, payer) {
  const electronic = Boolean(payer.pas_base_url);
  $("payer-card").hidden = !electronic && !auth.electronic;
  const rows = electronicFacts(auth, payer);
  const intro =
    auth.status === "draft"
      ? electronic
        ? `${payer.name} takes prior authorization requests electronically.`
        : `${payer.name} no longer takes electronic requests: send this one by phone or portal.`
      : auth.status === "pending" && auth.electronic
        ? "Pending: the payer is still reviewing it. Chairside asks again by itself until it decides."
        : `Status: ${AUTH_STATUS[auth.status] || auth.status}.`;
  const list = el("dl", { class: "tiles" });
  facts(list, rows, true);
  $("payer-state").replaceChildren(el("p", { id: "payer-intro" }, intro), rows.length ? list : null);
  $("submit-row").hidden = !(electronic && auth.status === "draft");
}

async function showExchanges() {
  const rows = await api("GET", `/api/v1/authorizations/${encodeURIComponent(authorizationId)}/exchanges`);
  $("exchanges-card").hidden = false;
  $("exchanges").parentElement.hidden = rows.length === 0;
  $("no-exchanges").hidden = rows.length > 0;
  $("exchange-rows").replaceChildren(
    ...rows.map((x) => {
      const outcome = OUTCOME[x.outcome] || { icon: "•", text: x.outcome, cls: "" };
      return el(
        "tr",
        { "data-exchange": x.id },
        el("td", {}, when(x.started_at)),
        el("th", { scope: "row" }, EXCHANGE_KIND[x.kind] || x.kind, el("span", { class: "sub" }, x.operation)),
        el("td", { class: "num" }, String(x.attempt)),
        el("td", { class: "num" }, x.http_status === null ? "none" : String(x.http_status)),
        el(
          "td",
          { class: `outcome ${outcome.cls}` },
          el("span", { "aria-hidden": "true", class: "icon" }, outcome.icon),
          ` ${outcome.text}`,
          x.error ? el("span", { class: "sub" }, sentence(x.error)) : null,
        ),
        el("td", { class: "num" }, took(x.duration_ms)),
      );
    }),
  );
  return rows;
}

function outcomeWords(auth, drug) {
  const unit = unitsName(auth, drug, auth.units_approved);
  const period = `from ${shortDate(auth.valid_from)} to ${shortDate(auth.valid_to)}`;
  if (auth.status === "approved" || auth.status === "partially_approved") {
    const how = auth.status === "approved" ? "Approved" : "Partially approved";
    return `${how}: number ${auth.auth_number}, ${auth.units_approved} ${unit} ${period}.`;
  }
  if (auth.status === "denied") {
    const note = auth.history.length ? auth.history[auth.history.length - 1].note : null;
    return `Denied by the payer.${note ? ` ${sentence(note)}` : ""}`;
  }
  if (auth.status === "pending") {
    const next = auth.electronic && auth.electronic.next_inquiry_at;
    const at = next ? zoned(next, ZONE) : null;
    return `Pending: the payer is reviewing it.${at ? ` Chairside asks again ${at.date} at ${at.time}.` : ""}`;
  }
  return `The payer has it: ${AUTH_STATUS[auth.status] || auth.status}.`;
}

// --- its alerts -----------------------------------------------------------------------------

let alertRows = null;

async function showAlerts(me, today) {
  const table = $("alerts");
  const counted = () => {
    const none = alertRows.count === 0;
    table.hidden = none;
    $("no-alerts").hidden = !none;
  };
  if (!alertRows) {
    table.querySelector("caption").after(alertHead());
    alertRows = new AlertRows({
      body: $("rows"),
      problem: $("problem"),
      me,
      today,
      fallback: $("alerts-heading"),
      changed: counted,
    });
  }
  const query = new URLSearchParams({ authorization_id: authorizationId, status: "live", limit: "500" });
  const page = await api("GET", `/api/v1/alerts?${query}`);
  alertRows.clear();
  alertRows.add(page.items);
  counted();
}

// --- the screen -----------------------------------------------------------------------------

async function read() {
  return Promise.all([
    api("GET", `/api/v1/authorizations/${encodeURIComponent(authorizationId)}`),
    api("GET", `/api/v1/authorizations/${encodeURIComponent(authorizationId)}/usage?include=sessions`),
  ]);
}

async function show(me, auth, usage, payer, patient, drug) {
  showFacts(auth, usage, payer, patient, drug);
  showElectronic(auth, payer);
  $("authorization").hidden = false;
  showChart(auth, usage, drug);
  await Promise.all([showAlerts(me, usage.today), payer.pas_base_url || auth.electronic ? showExchanges() : null]);
}

// Submitting waits for the payer (seconds, with retries): the button says so meanwhile, and
// the outcome, or the payer's refusal in words, is read out and takes the focus.
function submitting(me, payer, patient, drug) {
  const button = $("submit");
  const busy = $("submit-busy");
  const problem = $("submit-problem");
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Submitting…";
    $("payer-card").setAttribute("aria-busy", "true");
    busy.textContent = `Sending it to ${payer.name} and waiting for its answer; this can take a few seconds.`;
    problem.hidden = true;
    let failure = null;
    try {
      await api("POST", `/api/v1/authorizations/${encodeURIComponent(authorizationId)}/submit`);
    } catch (error) {
      failure = error;
    }
    try {
      const [auth, usage] = await read();
      await show(me, auth, usage, payer, patient, drug);
      if (failure) {
        busy.textContent = "";
        problem.textContent = submitProblem(failure);
        problem.hidden = false;
        problem.focus();
      } else {
        busy.textContent = outcomeWords(auth, drug);
        busy.setAttribute("tabindex", "-1");
        busy.focus();
      }
    } catch (error) {
      busy.textContent = "";
      problem.textContent = failure ? submitProblem(failure) : problemText(error);
      problem.hidden = false;
      problem.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Submit to payer";
      $("payer-card").removeAttribute("aria-busy");
    }
  });
}

async function start() {
  const me = await signedIn();
  $("loading").hidden = true;
  if (!BILLING_ROLES.includes(me.role)) {
    $("refused").hidden = false;
    return;
  }
  let auth;
  let usage;
  try {
    [auth, usage] = await read();
  } catch (error) {
    if (error instanceof ApiProblem && (error.status === 404 || error.status === 422)) {
      $("heading").textContent = "No such authorization";
      $("missing").hidden = false;
      $("missing").textContent = "There is no authorization at this address. Go back to the billing work queue and open one from there.";
      return;
    }
    throw error;
  }
  const [payer, patient, drug] = await Promise.all([
    api("GET", `/api/v1/payers/${auth.payer_id}`),
    api("GET", `/api/v1/patients/${auth.patient_id}`),
    product(auth, usage),
  ]);
  submitting(me, payer, patient, drug);
  await show(me, auth, usage, payer, patient, drug);
}

start().catch((error) => {
  $("loading").hidden = true;
  toast(problemText(error));
});
