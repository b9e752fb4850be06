// Billing's work queue: the live alerts, most urgent first (severity, money at risk, due
// date, as the API sorts them), filtered by kind, status, due date, payer and assignee, and
// acted on in place (acknowledge, assign, resolve with a note). The alert rows, their actions
// and the formats are exported for the authorization screen, which lists its own alerts.
// Billing and admin users only: the API refuses the actions to anyone else, and the screen
// says so.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { todayAt, zoned } from "./words.js";

export const BILLING_ROLES = ["billing", "admin"];

// Alert kinds as a biller says them.
export const KINDS = {
  session_uncovered: "Session not covered",
  auth_units_low: "Units running out",
  auth_expiring: "Authorization expiring",
  auth_denied_with_bookings: "Denied with sessions booked",
  coverage_ended: "Coverage ended",
  payer_overdue: "Payer decision overdue",
};
const NURSING_KINDS = { course_unbookable: "Course cannot be booked" };
export const kindText = (kind) => KINDS[kind] || NURSING_KINDS[kind] || kind;

// Never colour alone: a shape and a word for each.
export const SEVERITY = {
  critical: { icon: "▲", text: "Critical" },
  warning: { icon: "◆", text: "Warning" },
  info: { icon: "○", text: "Info" },
};
export const STATUS = {
  open: { icon: "●", text: "Open" },
  acknowledged: { icon: "◐", text: "Acknowledged" },
  resolved: { icon: "✓", text: "Resolved" },
};
const DONE = { acknowledge: "acknowledged", assign: "assigned", resolve: "resolved" };
const VERB = { acknowledge: "acknowledge", assign: "assign", resolve: "resolve" };

// --- money and dates, as a biller reads them ------------------------------------------------

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
export const money = (amount) => usd.format(amount);

// Local calendar dates (YYYY-MM-DD): the center's days, shown without any time-zone shift.
const dayFormat = new Intl.DateTimeFormat("en-GB", {
  day: "numeric",
  month: "short",
  year: "numeric",
  timeZone: "UTC",
});
export const shortDate = (isoDate) => dayFormat.format(new Date(`${isoDate}T12:00:00Z`));

export function daysBetween(fromIso, toIso) {
  return Math.round((Date.parse(`${toIso}T12:00:00Z`) - Date.parse(`${fromIso}T12:00:00Z`)) / 86400000);
}

export function daysLeftText(days) {
  if (days === 0) return "due today";
  if (days === 1) return "1 day left";
  if (days > 1) return `${days} days left`;
  return days === -1 ? "1 day overdue" : `${-days} days overdue`;
}

// Today's date at a center (the en-CA format is YYYY-MM-DD).
export function problemText(error) {
  if (error instanceof ApiProblem) {
    if (Array.isArray(error.body.errors) && error.body.errors.length) {
      return error.body.errors.map((e) => e.msg).join("; ");
    }
    const text = error.body.detail || error.body.title || `HTTP ${error.status}`;
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return error.message;
}

// --- the dialogs: assign to someone, resolve with a note ------------------------------------

let dialogs = null;
let people = null; // whom an alert may be assigned to

async function assignees() {
  if (!people) people = await api("GET", "/api/v1/alerts/assignees");
  return people;
}

function makeDialogs() {
  if (dialogs) return dialogs;
  const answer = (id) => el("p", { id, class: "answer", role: "status", "aria-live": "polite" });
  const assign = el(
    "dialog",
    { id: "assign-dialog", "aria-labelledby": "assign-title", "aria-describedby": "assign-what" },
    el(
      "form",
      { method: "dialog" },
      el("h2", { id: "assign-title" }, "Assign alert"),
      el("p", { id: "assign-what", class: "hint" }),
      el("label", { for: "assign-to" }, "Assign to"),
      el("select", { id: "assign-to" }),
      answer("assign-answer"),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "submit", class: "primary", id: "assign-save" }, "Assign"),
        el("button", { type: "button", class: "quiet", "data-close": "" }, "Cancel"),
      ),
    ),
  );
  const resolve = el(
    "dialog",
    { id: "resolve-dialog", "aria-labelledby": "resolve-title", "aria-describedby": "resolve-what" },
    el(
      "form",
      { method: "dialog" },
      el("h2", { id: "resolve-title" }, "Resolve alert"),
      el("p", { id: "resolve-what", class: "hint" }),
      el("label", { for: "resolve-note" }, "Note: what was done"),
      el("textarea", {
        id: "resolve-note",
        rows: "3",
        maxlength: "1000",
        "aria-describedby": "resolve-help",
      }),
      el(
        "p",
        { id: "resolve-help", class: "hint" },
        "For example: renewal sent to the payer, or the session written off. If the problem is still there, the next check opens a new alert.",
      ),
      answer("resolve-answer"),
      el(
        "div",
        { class: "actions" },
        el("button", { type: "submit", class: "primary", id: "resolve-save" }, "Resolve"),
        el("button", { type: "button", class: "quiet", "data-close": "" }, "Cancel"),
      ),
    ),
  );
  for (const dialog of [assign, resolve]) {
    document.getElementById("main").append(dialog);
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }
  dialogs = { assign, resolve };
  return dialogs;
}

// --- a table of alerts ----------------------------------------------------------------------

export const COLUMNS = [
  "Severity",
  "Alert",
  "Patient",
  "Payer and authorization",
  "At risk",
  "Due",
  "Status",
  "Assigned to",
  "Actions",
];

export function alertHead() {
  return el("thead", {}, el("tr", {}, COLUMNS.map((c) => el("th", { scope: "col" }, c))));
}

// The rows of one table, kept up to date in place as billers act on them. `keeps(alert)`
// says whether an alert still belongs on this list (after it was resolved, say); `today` is
// the local date days left are counted from.
export class AlertRows {
  constructor({ body, problem, me, today, fallback, keeps = (a) => a.status !== "resolved", changed = () => {} }) {
    this.body = body;
    this.fallback = fallback; // where focus goes when the last row leaves
    this.lastFocus = null;
    this.problem = problem;
    this.me = me;
    this.today = today;
    this.keeps = keeps;
    this.changed = changed;
    this.alerts = new Map();
    body.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const alert = this.alerts.get(button.closest("tr").dataset.alert);
      if (alert) this.start(alert, button.dataset.action, button);
    });
  }

  get count() {
    return this.body.rows.length;
  }

  clear() {
    this.alerts.clear();
    this.body.replaceChildren();
  }

  add(alerts) {
    const rows = alerts.map((a) => {
      this.alerts.set(a.id, a);
      return this.row(a);
    });
    this.body.append(...rows);
    return rows;
  }

  what(a) {
    return `${kindText(a.kind)}, ${a.patient_name}`;
  }

  row(a) {
    const severity = SEVERITY[a.severity] || { icon: "?", text: a.severity };
    const status = STATUS[a.status] || { icon: "?", text: a.status };
    const days = this.today ? daysBetween(this.today, a.due_date) : null;
    const what = this.what(a);
    // Each button's name says which alert it acts on; what shows stays its visible words.
    const button = (action, text) =>
      el("button", { type: "button", "data-action": action }, text, el("span", { class: "visually-hidden" }, ` ${what}`));
    const actions =
      a.status === "resolved"
        ? [el("span", { class: "sub" }, "Nothing left to do")]
        : [
            a.status === "open" ? button("acknowledge", "Acknowledge") : null,
            button("assign", "Assign…"),
            button("resolve", "Resolve…"),
          ];
    const authLink = a.authorization_id
      ? el(
          "span",
          { class: "sub" },
          "Authorization ",
          el("a", { href: `/billing/authorizations/${a.authorization_id}` }, a.auth_number || "without a number"),
        )
      : el("span", { class: "sub" }, "No authorization");
    const mine = a.assigned_to && a.assigned_to === this.me.id;
    return el(
      "tr",
      { "data-alert": a.id, "data-kind": a.kind },
      el(
        "td",
        { class: `severity sev-${a.severity}` },
        el("span", { class: "icon", "aria-hidden": "true" }, severity.icon),
        ` ${severity.text}`,
      ),
      el(
        "th",
        { scope: "row", class: "what", id: `alert-${a.id}`, tabindex: "-1" },
        el("span", { class: "kind" }, kindText(a.kind)),
        el("span", { class: "sub" }, a.detail),
        a.note ? el("span", { class: "sub note" }, `Note: ${a.note}`) : null,
      ),
      el(
        "td",
        { class: "patient" },
        el("a", { href: `/patients/${a.patient_id}` }, a.patient_name),
        el("span", { class: "sub" }, `MRN ${a.mrn}`),
      ),
      el("td", { class: "payer" }, a.payer_name || el("span", { class: "muted" }, "No payer"), authLink),
      el(
        "td",
        { class: "money" },
        a.amount_at_risk === null || a.amount_at_risk === undefined
          ? el("span", { class: "muted" }, "Not priced")
          : money(a.amount_at_risk),
      ),
      el(
        "td",
        { class: "due" },
        el("time", { datetime: a.due_date }, shortDate(a.due_date)),
        days === null ? null : el("span", { class: `sub days${days < 0 ? " overdue" : ""}` }, daysLeftText(days)),
      ),
      el(
        "td",
        { class: `status state-${a.status}` },
        el("span", { class: "icon", "aria-hidden": "true" }, status.icon),
        ` ${status.text}`,
      ),
      el(
        "td",
        { class: "assignee" },
        a.assignee_email ? [a.assignee_email, mine ? el("span", { class: "sub" }, "(me)") : null] : el("span", { class: "muted" }, "Nobody"),
      ),
      el("td", { class: "actions" }, el("div", { class: "buttons" }, actions)),
    );
  }

  say(text) {
    this.problem.textContent = text;
    this.problem.hidden = !text;
  }

  // An alert changed: its row is redrawn where it was, or leaves a list it no longer fits.
  update(a, done) {
    const old = this.body.querySelector(`tr[data-alert="${a.id}"]`);
    this.alerts.set(a.id, a);
    if (!old) return;
    const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    if (!this.keeps(a)) {
      const next = old.nextElementSibling || old.previousElementSibling;
      old.remove();
      this.alerts.delete(a.id);
      if (done) toast(`${this.what(a)}: ${done}; it has left this list.`);
      this.changed();
      this.lastFocus = next ? next.querySelector("th") : this.fallback;
      this.lastFocus?.focus();
      return;
    }
    const fresh = this.row(a);
    old.replaceWith(fresh);
    if (done) toast(`${this.what(a)}: ${done}.`);
    this.changed();
    this.lastFocus = (focused && fresh.querySelector(`[data-action="${focused}"]`)) || fresh.querySelector("th");
    if (focused) this.lastFocus.focus();
  }

  // After a dialog: back to the button that opened it, else to its redrawn row, else to
  // where the list left focus when the row went.
  restoreFocus(button, a) {
    if (button.isConnected) {
      button.focus();
      return;
    }
    const row = this.body.querySelector(`tr[data-alert="${a.id}"]`);
    const target = row?.querySelector(`[data-action="${button.dataset.action}"]`) || row?.querySelector("th") || this.lastFocus;
    target?.focus();
  }

  async act(a, action, body) {
    const updated = await api("POST", `/api/v1/alerts/${a.id}/${action}`, body);
    this.say("");
    let done = DONE[action];
    if (action === "assign") done = `assigned to ${updated.assigned_to === this.me.id ? "me" : updated.assignee_email}`;
    this.update(updated, done);
    return updated;
  }

  // A refusal (say, a 409 because another biller got there first) is said plainly, and the
  // row shows the alert as it now stands.
  async failed(a, action, error) {
    const text = `Could not ${VERB[action]} “${this.what(a)}”: ${problemText(error)}`;
    this.say(text);
    if (error instanceof ApiProblem && (error.status === 409 || error.status === 404)) {
      try {
        this.update(await api("GET", `/api/v1/alerts/${a.id}`));
      } catch {
        // gone altogether: the message says enough
      }
    }
    return text;
  }

  async start(a, action, button) {
    if (action === "acknowledge") {
      button.disabled = true;
      try {
        await this.act(a, "acknowledge");
      } catch (error) {
        button.disabled = false;
        await this.failed(a, action, error);
      }
      return;
    }
    const { assign, resolve } = makeDialogs();
    if (action === "assign") return this.openAssign(assign, a, button);
    if (action === "resolve") return this.openResolve(resolve, a, button);
  }

  async openAssign(dialog, a, button) {
    const select = dialog.querySelector("#assign-to");
    const answer = dialog.querySelector("#assign-answer");
    answer.textContent = "";
    answer.className = "answer";
    dialog.querySelector("#assign-what").textContent = `${this.what(a)} (due ${shortDate(a.due_date)})`;
    let everyone;
    try {
      everyone = await assignees();
    } catch (error) {
      await this.failed(a, "assign", error);
      return;
    }
    const others = everyone.filter((p) => p.id !== this.me.id);
    select.replaceChildren(
      el("option", { value: this.me.id }, `Me (${this.me.email})`),
      ...others.map((p) => el("option", { value: p.id }, `${p.email} (${p.role})`)),
    );
    select.value = a.assigned_to && a.assigned_to !== this.me.id ? a.assigned_to : this.me.id;
    if (!select.value) select.value = this.me.id; // its assignee can no longer take alerts
    dialog.onsubmit = async (event) => {
      event.preventDefault();
      try {
        await this.act(a, "assign", { assignee_id: select.value });
        dialog.close();
      } catch (error) {
        answer.className = "answer bad";
        answer.textContent = await this.failed(a, "assign", error);
        if (this.alerts.get(a.id)?.status === "resolved") dialog.close();
      }
    };
    dialog.onclose = () => this.restoreFocus(button, a);
    dialog.showModal();
    select.focus();
  }

  openResolve(dialog, a, button) {
    const note = dialog.querySelector("#resolve-note");
    const answer = dialog.querySelector("#resolve-answer");
    answer.textContent = "";
    answer.className = "answer";
    note.value = "";
    dialog.querySelector("#resolve-what").textContent = `${this.what(a)}: ${a.detail}`;
    dialog.onsubmit = async (event) => {
      event.preventDefault();
      const text = note.value.trim();
      try {
        await this.act(a, "resolve", text ? { note: text } : {});
        dialog.close();
      } catch (error) {
        answer.className = "answer bad";
        answer.textContent = await this.failed(a, "resolve", error);
      }
    };
    dialog.onclose = () => this.restoreFocus(button, a);
    dialog.showModal();
    note.focus();
  }
}

// --- the work queue screen ------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const FILTERS = ["kind", "status", "due_before", "payer_id", "assigned_to"];
const PAGE = 50;

async function everyPayer() {
  const payers = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/v1/payers?${query}`);
    payers.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return payers.sort((a, b) => a.name.localeCompare(b.name));
}

// Days left count from today at the center this browser works for (the one the day board
// last showed), else the first center, else the browser's own zone.
async function centerToday() {
  try {
    const centers = (await api("GET", "/api/v1/centers?limit=200")).items;
    const wanted = localStorage.getItem("chairside.center");
    const center = centers.find((c) => c.id === wanted) || centers[0];
    if (center) return todayAt(center.timezone);
  } catch {
    // fall through to the browser's zone
  }
  return todayAt(Intl.DateTimeFormat().resolvedOptions().timeZone);
}

class Queue {
  constructor(me, payers, people, today) {
    this.me = me;
    this.cursor = null;
    this.generation = 0;
    this.form = $("filters");
    this.fill(payers, people);
    this.read(new URLSearchParams(window.location.search));
    this.rows = new AlertRows({
      body: $("rows"),
      problem: $("problem"),
      me,
      today,
      fallback: $("count"),
      keeps: (a) => this.keeps(a),
      changed: () => this.counted(),
    });
    this.form.addEventListener("change", () => this.load(true));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load(true);
    });
    $("clear").addEventListener("click", () => {
      this.read(new URLSearchParams());
      this.load(true);
    });
    $("more").addEventListener("click", () => this.load(false));
  }

  fill(payers, people) {
    $("f-kind").replaceChildren(
      el("option", { value: "" }, "Any kind"),
      ...Object.entries(KINDS).map(([value, text]) => el("option", { value }, text)),
    );
    $("f-payer").replaceChildren(
      el("option", { value: "" }, "Any payer"),
      ...payers.map((p) => el("option", { value: p.id }, p.name)),
    );
    $("f-assignee").replaceChildren(
      el("option", { value: "" }, "Anyone or nobody"),
      el("option", { value: "me" }, "Me"),
      el("option", { value: "none" }, "Nobody"),
      ...people.filter((p) => p.id !== this.me.id).map((p) => el("option", { value: p.id }, p.email)),
    );
  }

  // The filters from a query string (the page's own URL: ids only, never names).
  read(query) {
    const set = (id, value, fallback = "") => {
      const select = $(id);
      select.value = value ?? fallback;
      if (select.value !== (value ?? fallback)) select.value = fallback;
    };
    set("f-kind", query.get("kind"));
    set("f-status", query.get("status"), "live");
    $("f-due").value = query.get("due_before") || "";
    set("f-payer", query.get("payer_id"));
    set("f-assignee", query.get("assigned_to"));
  }

  chosen() {
    return {
      kind: $("f-kind").value,
      status: $("f-status").value,
      due_before: $("f-due").value,
      payer_id: $("f-payer").value,
      assigned_to: $("f-assignee").value,
    };
  }

  // The API's query: "me" is the signed-in user's id.
  query(chosen) {
    const query = new URLSearchParams();
    for (const name of FILTERS) {
      let value = chosen[name];
      if (name === "assigned_to" && value === "me") value = this.me.id;
      if (value) query.set(name, value);
    }
    return query;
  }

  keeps(a) {
    const { status, assigned_to: who } = this.chosen();
    if (status === "live" && a.status === "resolved") return false;
    if (status !== "live" && status && a.status !== status) return false;
    if (who === "none" && a.assigned_to) return false;
    if (who === "me" && a.assigned_to !== this.me.id) return false;
    if (who && who !== "none" && who !== "me" && a.assigned_to !== who) return false;
    return true;
  }

  remember(chosen) {
    const shown = new URLSearchParams();
    for (const name of FILTERS) if (chosen[name] && !(name === "status" && chosen[name] === "live")) shown.set(name, chosen[name]);
    history.replaceState(null, "", shown.toString() ? `/billing?${shown}` : "/billing");
    // The download has live alerts only: a status filter narrows it to open or acknowledged.
    const csv = this.query(chosen);
    if (["live", "resolved"].includes(csv.get("status"))) csv.delete("status");
    $("csv").href = `/api/v1/billing/worklist.csv${csv.toString() ? `?${csv}` : ""}`;
    const filtered = [...csv.keys()].length > 0;
    $("csv-hint").textContent = filtered ? "Live alerts matching these filters." : "Every live alert.";
    if (chosen.status === "resolved") $("csv-hint").textContent = "Live alerts only: never resolved ones.";
  }

  async load(fresh) {
    const chosen = this.chosen();
    const generation = ++this.generation;
    if (fresh) {
      this.cursor = null;
      this.remember(chosen);
    }
    const query = this.query(chosen);
    query.set("queue", "billing");
    query.set("limit", String(PAGE));
    if (!fresh && this.cursor) query.set("cursor", this.cursor);
    $("queue").setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `/api/v1/alerts?${query}`);
      if (generation !== this.generation) return; // filters changed meanwhile
      if (fresh) this.rows.clear();
      const added = this.rows.add(page.items);
      this.cursor = page.next_cursor;
      this.rows.say("");
      if (!fresh && added.length && document.activeElement === $("more") && !this.cursor) {
        added[0].querySelector("th").focus();
      }
    } catch (error) {
      if (generation === this.generation) this.rows.say(`Could not load the alerts: ${problemText(error)}`);
    } finally {
      if (generation === this.generation) $("queue").removeAttribute("aria-busy");
    }
    this.counted();
  }

  counted() {
    const n = this.rows.count;
    $("more").hidden = !this.cursor;
    $("empty").hidden = n > 0;
    $("alerts").parentElement.hidden = n === 0; // the table's scroller, a tab stop of its own
    const noun = n === 1 ? "alert" : "alerts";
    $("count").textContent = this.cursor ? `Showing the first ${n} ${noun}; there are more.` : `${n} ${noun}.`;
  }
}

// Requests pended by their payer (electronically, or noted so by hand): who, which payer,
// since when, and when Chairside asks again. The work queue's `payer_overdue` alerts are those
// held past the payer's turnaround.
async function showWaiting(payers) {
  const names = new Map(payers.map((p) => [p.id, p.name]));
  const pending = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ status: "pending", limit: "200" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/v1/authorizations?${query}`);
    pending.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && pending.length < 200);
  const patients = new Map();
  await Promise.all(
    [...new Set(pending.map((a) => a.patient_id))].map(async (id) => {
      patients.set(id, await api("GET", `/api/v1/patients/${id}`));
    }),
  );
  const since = (a) => (a.electronic && a.electronic.submitted_at) || a.requested_on || "";
  pending.sort((a, b) => since(a).localeCompare(since(b)));
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const instant = (iso) => {
    const { date, time } = zoned(iso, zone);
    return el("time", { datetime: iso }, `${date}, ${time}`);
  };
  $("waiting-rows").replaceChildren(
    ...pending.map((a) => {
      const p = patients.get(a.patient_id);
      const e = a.electronic;
      return el(
        "tr",
        { "data-authorization": a.id },
        el("th", { scope: "row", class: "patient" }, el("a", { href: `/billing/authorizations/${a.id}` }, `${p.family_name}, ${p.given_name}`), el("span", { class: "sub" }, `MRN ${p.mrn}`)),
        el("td", {}, names.get(a.payer_id) || "—", el("span", { class: "sub" }, a.service_code)),
        el("td", {}, e ? "Electronic" : "By phone or portal"),
        el("td", {}, e && e.submitted_at ? instant(e.submitted_at) : a.requested_on ? el("time", { datetime: a.requested_on }, shortDate(a.requested_on)) : "—"),
        el("td", {}, e && e.next_inquiry_at ? instant(e.next_inquiry_at) : el("span", { class: "muted" }, e ? "Not planned" : "Follow up by hand")),
        el("td", { class: "num" }, e ? String(e.inquiries) : "—"),
      );
    }),
  );
  $("waiting").parentElement.hidden = pending.length === 0;
  $("no-waiting").hidden = pending.length > 0;
  $("waiting-count").textContent = pending.length === 1 ? "1 request waiting on its payer." : `${pending.length} requests waiting on their payers.`;
}

async function startQueue() {
  const me = await signedIn();
  $("loading").hidden = true;
  if (!BILLING_ROLES.includes(me.role)) {
    $("refused").hidden = false;
    return;
  }
  const [payers, people, today] = await Promise.all([everyPayer(), assignees(), centerToday()]);
  $("queue").hidden = false;
  const queue = new Queue(me, payers, people, today);
  await Promise.all([queue.load(true), showWaiting(payers)]);
}

if (document.getElementById("queue")) {
  startQueue().catch((error) => {
    $("loading").hidden = true;
    toast(problemText(error));
  });
}
