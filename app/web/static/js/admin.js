// The admin screen: users (add one, change a role, deactivate or reactivate, lift a sign-in
// lockout), the background jobs (schedules, runs, run one now) and the audit trail. Three
// tabs (the WAI-ARIA tabs pattern: arrow keys, Home and End). Admins only: the API answers
// anyone else 403, and the screen then says so.

import { api, ApiProblem, el, keyboardTabs, signedIn } from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE = 25;
const SECTIONS = ["users", "jobs", "audit"];
const ROLES = {
  admin: "Admin",
  nurse: "Nurse",
  billing: "Billing",
  pharmacy: "Pharmacy",
  patient: "Patient (portal)",
};
const STAFF = ["admin", "nurse", "billing", "pharmacy"];
const JOBS = {
  auto_book: "Auto-booking",
  lapse_sweep: "Authorization lapse sweep",
  no_show_sweep: "No-show sweep",
  reminders: "Reminders",
  webhook_delivery: "Webhook delivery",
  housekeeping: "Housekeeping",
  drug_check: "Drug shortfall check",
  waitlist_offers: "Waitlist offers",
};
const TRIGGERS = { schedule: "Schedule", manual: "An admin", command: "Command line" };
const OUTCOMES = {
  running: { icon: "…", text: "Running", tone: "muted" },
  succeeded: { icon: "✓", text: "Succeeded", tone: "ok" },
  failed: { icon: "✕", text: "Failed", tone: "bad" },
  success: { icon: "✓", text: "Success", tone: "ok" },
  denied: { icon: "⊘", text: "Denied", tone: "bad" },
  error: { icon: "!", text: "Error", tone: "bad" },
};
const ACTIONS = {
  read: "Read",
  search: "Search",
  create: "Create",
  update: "Change",
  export: "Export",
  run: "Run a job",
  unlock: "Unlock sign-in",
};

const state = {
  me: null,
  users: [],
  byId: new Map(),
  shown: new Set(), // sections loaded at least once
  runs: { cursor: null, count: 0 },
  audit: { cursor: null, count: 0, query: new URLSearchParams() },
};

// --- times: the browser's own zone, named on every time ----------------------------------

const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const wallClock = new Intl.DateTimeFormat("en-GB", {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const zoneNamer = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });

function zoneOf(date) {
  const part = zoneNamer.formatToParts(date).find((p) => p.type === "timeZoneName");
  return part ? part.value : ZONE;
}

const timeOfDay = new Intl.DateTimeFormat("en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const localDay = (date) => date.toLocaleDateString("en-CA"); // YYYY-MM-DD, in the browser's zone

// An instant in the browser's zone, its zone named; only the time of day when it falls on the
// same day as `after` (a run's finish after its start).
function when(instant, after = null) {
  if (!instant) return "—";
  const date = new Date(instant);
  const sameDay = after && localDay(new Date(after)) === localDay(date);
  const text = sameDay ? timeOfDay.format(date) : wallClock.format(date);
  return el("time", { datetime: instant }, `${text} ${zoneOf(date)}`);
}

function took(run) {
  if (!run.finished_at) return "still running";
  const ms = Date.parse(run.finished_at) - Date.parse(run.started_at);
  if (ms < 1000) return `${Math.max(ms, 1)} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const words = (key) => key.replaceAll("_", " ");

function counts(run) {
  const entries = Object.entries(run.counts || {});
  if (!entries.length) return "—";
  return entries.map(([key, value]) => `${words(key)}: ${value}`).join(", ");
}

function outcome(value) {
  const known = OUTCOMES[value] || { icon: "?", text: value, tone: "muted" };
  return el(
    "span",
    { class: `state ${known.tone}` },
    el("span", { "aria-hidden": "true" }, known.icon),
    ` ${known.text}`,
  );
}

// --- problems: next to the form or list they belong to -----------------------------------

function say(id, message, tone = "ok") {
  const box = $(id);
  box.className = `answer ${tone}`;
  box.textContent = message;
}

function problemText(error) {
  if (error instanceof ApiProblem && Array.isArray(error.body.errors) && error.body.errors.length) {
    return error.body.errors.map((e) => `${words(String(e.loc.at(-1)))}: ${e.msg}`).join("; ");
  }
  return error.message;
}

function failed(id, prefix = "") {
  return (error) => say(id, `${prefix}${problemText(error)}`, "bad");
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
  history.replaceState(null, "", `#${section}`);
  if (!state.shown.has(section)) {
    state.shown.add(section);
    const load = { users: showUsers, jobs: loadJobs, audit: loadAudit }[section];
    Promise.resolve(load()).catch(failed(`${section}-answer`));
  }
}

keyboardTabs(tabs, choose);

// --- users ---------------------------------------------------------------------------------

async function loadUsers() {
  const users = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/v1/users?${query}`);
    users.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  state.users = users;
  state.byId = new Map(users.map((u) => [u.id, u]));
  fillUserFilter();
}

function showUsers(fresh = null) {
  $("users").replaceChildren(...state.users.map((u) => userRow(u, u.id === fresh)));
}

function userRow(user, fresh) {
  const self = user.id === state.me.id;
  let role;
  if (user.role === "patient") {
    role = ROLES.patient;
  } else {
    const select = el(
      "select",
      { "aria-label": `Role of ${user.email}`, "data-control": "role" },
      STAFF.map((r) => el("option", { value: r, selected: r === user.role }, ROLES[r])),
    );
    const save = el(
      "button",
      {
        type: "button",
        "data-control": "save",
        "aria-label": `Save role of ${user.email}`,
        onclick: () => changeRole(user, select.value),
      },
      "Save",
    );
    role = el("div", { class: "inline" }, select, save);
  }
  const status = !user.active
    ? el("span", { class: "state muted" }, el("span", { "aria-hidden": "true" }, "○"), " Inactive")
    : user.locked_until
      ? el("span", { class: "state bad" }, el("span", { "aria-hidden": "true" }, "⊘"), " Locked out until ", when(user.locked_until))
      : el("span", { class: "state ok" }, el("span", { "aria-hidden": "true" }, "●"), " Active");
  const toggle = el(
    "button",
    {
      type: "button",
      "data-control": "toggle",
      class: user.active ? "danger-quiet" : null,
      "aria-label": `${user.active ? "Deactivate" : "Reactivate"} ${user.email}`,
      onclick: () => setActive(user, !user.active),
    },
    user.active ? "Deactivate" : "Reactivate",
  );
  // Too many failed sign-ins turn an account away for a while: an admin may lift that now.
  const unlocking = user.active && user.locked_until
    ? el(
        "button",
        {
          type: "button",
          "data-control": "unlock",
          "aria-label": `Unlock sign-in for ${user.email}`,
          onclick: () => unlock(user),
        },
        "Unlock sign-in",
      )
    : null;
  return el(
    "tr",
    { "data-user": user.id, class: fresh ? "fresh" : null },
    el("th", { scope: "row" }, user.email, self ? el("span", { class: "you" }, " (you)") : null),
    el("td", {}, role),
    el("td", {}, status),
    el("td", {}, when(user.created_at)),
    el("td", {}, el("div", { class: "inline" }, toggle, unlocking)),
  );
}

function replaceUser(user) {
  const i = state.users.findIndex((u) => u.id === user.id);
  if (i >= 0) state.users[i] = user;
  state.byId.set(user.id, user);
  const row = document.querySelector(`tr[data-user="${user.id}"]`);
  // Focus stays where it was: the same control in the new row.
  const focused = row && row.contains(document.activeElement) ? document.activeElement : null;
  const control = focused ? focused.dataset.control : null;
  const fresh = userRow(user, false);
  if (row) row.replaceWith(fresh);
  if (control) {
    (fresh.querySelector(`[data-control="${control}"]`) || fresh.querySelector("button"))?.focus();
  }
}

async function patchUser(user, body) {
  try {
    const ifMatch = { "If-Match": `"${user.version}"` };
    return await api("PATCH", `/api/v1/users/${user.id}`, body, ifMatch);
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 412) {
      await loadUsers();
      showUsers();
      throw new Error("someone else changed this user meanwhile; the list is reloaded, try again");
    }
    throw error;
  }
}

async function changeRole(user, role) {
  if (role === user.role) {
    say("users-answer", `${user.email} is already ${ROLES[role].toLowerCase()}.`);
    return;
  }
  try {
    const changed = await patchUser(user, { role });
    replaceUser(changed);
    const now = ROLES[changed.role].toLowerCase();
    say("users-answer", `${changed.email} is now ${now}, from their next request.`);
  } catch (error) {
    failed("users-answer", `${user.email}: `)(error);
  }
}

async function setActive(user, active) {
  if (!active && user.id === state.me.id) {
    const sure = window.confirm("Deactivate your own account? You will be signed out at once.");
    if (!sure) return;
  }
  try {
    const changed = await patchUser(user, { active });
    replaceUser(changed);
    say(
      "users-answer",
      active
        ? `${changed.email} may sign in again.`
        : `${changed.email} is deactivated: their sessions and calendar link stopped working.`,
    );
  } catch (error) {
    failed("users-answer", `${user.email}: `)(error);
  }
}

async function unlock(user) {
  try {
    replaceUser(await api("POST", `/api/v1/users/${user.id}/unlock`));
    say("users-answer", `${user.email} may sign in again now: their failed sign-ins are forgotten.`);
  } catch (error) {
    failed("users-answer", `${user.email}: `)(error);
  }
}

// The create form's fields by the name the API's validation problems give them.
const FIELDS = {
  email: "new-email",
  role: "new-role",
  password: "new-password",
  patient_id: "new-patient",
};

function clearFieldErrors() {
  for (const id of Object.values(FIELDS)) {
    $(`${id}-error`).textContent = "";
    $(id).removeAttribute("aria-invalid");
    const help = $(id).getAttribute("aria-describedby") || "";
    $(id).setAttribute("aria-describedby", help.replace(`${id}-error`, "").trim());
    if (!$(id).getAttribute("aria-describedby")) $(id).removeAttribute("aria-describedby");
  }
}

function fieldError(field, message) {
  const id = FIELDS[field];
  if (!id) return false;
  $(`${id}-error`).textContent = message;
  $(id).setAttribute("aria-invalid", "true");
  const help = $(id).getAttribute("aria-describedby");
  $(id).setAttribute("aria-describedby", help ? `${help} ${id}-error` : `${id}-error`);
  return true;
}

// The add form offers every staff role: the pharmacy's goes in before Admin.
if (!$("new-role").querySelector('option[value="pharmacy"]')) {
  const before = $("new-role").querySelector('option[value="admin"]');
  $("new-role").insertBefore(el("option", { value: "pharmacy" }, ROLES.pharmacy), before);
}

$("new-role").addEventListener("change", () => {
  $("new-patient-field").hidden = $("new-role").value !== "patient";
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors();
  say("create-answer", "");
  const body = {
    email: $("new-email").value.trim(),
    role: $("new-role").value,
    password: $("new-password").value,
  };
  if (body.role === "patient") body.patient_id = $("new-patient").value.trim() || null;
  try {
    const user = await api("POST", "/api/v1/users", body);
    $("create-form").reset();
    $("new-patient-field").hidden = true;
    await loadUsers();
    showUsers(user.id);
    say("create-answer", `Added ${user.email} as ${ROLES[user.role].toLowerCase()}.`);
  } catch (error) {
    let placed = false;
    if (error instanceof ApiProblem && Array.isArray(error.body.errors)) {
      for (const e of error.body.errors) placed = fieldError(String(e.loc.at(-1)), e.msg) || placed;
    } else if (error instanceof ApiProblem && error.body.type?.endsWith("/duplicate")) {
      placed = fieldError("email", error.message);
    }
    say("create-answer", `Not added: ${problemText(error)}`, "bad");
    const first = Object.values(FIELDS).find((id) => $(id).getAttribute("aria-invalid"));
    if (placed && first) $(first).focus();
  }
});

// --- jobs and their runs -------------------------------------------------------------------

async function loadJobs(fresh = null) {
  const jobs = await api("GET", "/api/v1/jobs");
  const filter = $("runs-job");
  if (filter.options.length === 1) {
    filter.append(...jobs.map((j) => el("option", { value: j.name }, JOBS[j.name] || j.name)));
  }
  $("jobs").replaceChildren(
    ...jobs.map((job) => {
      const last = job.last_run;
      const name = JOBS[job.name] || job.name;
      return el(
        "tr",
        { "data-job": job.name },
        el("th", { scope: "row" }, name, " ", el("code", { class: "name" }, job.name)),
        el("td", {}, job.schedule),
        el(
          "td",
          {},
          last
            ? el("span", { class: "last" }, outcome(last.outcome), " ", when(last.started_at))
            : "Never run",
        ),
        el(
          "td",
          {},
          el(
            "button",
            {
              type: "button",
              "aria-label": `Run now: ${name}`,
              onclick: (e) => runNow(job.name, e.currentTarget),
            },
            "Run now",
          ),
        ),
      );
    }),
  );
  await loadRuns(false, fresh);
}

function shown(count, noun, more) {
  const plural = count === 1 ? noun : `${noun}s`;
  return `Showing ${count} ${plural}, newest first${more ? "; there are more" : ""}.`;
}

async function loadRuns(more = false, fresh = null) {
  const query = new URLSearchParams({ limit: String(PAGE) });
  if ($("runs-job").value) query.set("job", $("runs-job").value);
  if (more && state.runs.cursor) query.set("cursor", state.runs.cursor);
  const page = await api("GET", `/api/v1/jobs/runs?${query}`);
  const rows = page.items.map((run) =>
    el(
      "tr",
      { "data-run": run.id, class: run.id === fresh ? "fresh" : null },
      el(
        "th",
        { scope: "row" },
        JOBS[run.job] || run.job,
        run.scope ? el("span", { class: "hint" }, " (one center)") : null,
      ),
      el("td", {}, TRIGGERS[run.trigger] || run.trigger),
      el("td", {}, when(run.started_at)),
      el("td", {}, when(run.finished_at, run.started_at)),
      el("td", { class: "nowrap" }, took(run)),
      el("td", {}, outcome(run.outcome)),
      el("td", {}, counts(run)),
      el("td", { class: run.error ? "error" : null }, run.error || "—"),
    ),
  );
  if (more) $("runs").append(...rows);
  else $("runs").replaceChildren(...rows);
  state.runs.cursor = page.next_cursor;
  state.runs.count = (more ? state.runs.count : 0) + rows.length;
  $("runs-more").hidden = !page.next_cursor;
  $("runs-count").textContent = state.runs.count
    ? shown(state.runs.count, "run", page.next_cursor)
    : "No runs yet.";
}

async function runNow(name, button) {
  if (button.getAttribute("aria-disabled") === "true") return; // one click, one run
  const label = JOBS[name] || name;
  button.setAttribute("aria-disabled", "true");
  say("jobs-answer", `${label} is running…`, "muted");
  try {
    const run = await api("POST", `/api/v1/jobs/${name}/run`);
    const done = run.outcome === "succeeded";
    say(
      "jobs-answer",
      `${label} ${done ? "succeeded" : "failed"} in ${took(run)}: ${done ? counts(run) : run.error}.`,
      done ? "ok" : "bad",
    );
    const focused = document.activeElement === button;
    $("runs-job").value = "";
    await loadJobs(run.id);
    if (focused) document.querySelector(`tr[data-job="${name}"] button`)?.focus();
  } catch (error) {
    failed("jobs-answer", `${label}: `)(error);
  } finally {
    button.removeAttribute("aria-disabled");
  }
}

$("runs-job").addEventListener("change", () => loadRuns().catch(failed("jobs-answer")));
$("runs-refresh").addEventListener("click", () => loadJobs().catch(failed("jobs-answer")));
$("runs-more").addEventListener("click", () => loadRuns(true).catch(failed("jobs-answer")));

// --- the audit trail -----------------------------------------------------------------------

function fillUserFilter() {
  const select = $("audit-user");
  const chosen = select.value;
  select.replaceChildren(
    el("option", { value: "" }, "Anyone"),
    ...state.users.map((u) =>
      el("option", { value: u.id }, `${u.email} (${ROLES[u.role].toLowerCase()})`),
    ),
  );
  select.value = state.byId.has(chosen) ? chosen : "";
}

function auditQuery() {
  const query = new URLSearchParams();
  if ($("audit-user").value) query.set("actor_id", $("audit-user").value);
  if ($("audit-patient").value.trim()) query.set("patient_id", $("audit-patient").value.trim());
  if ($("audit-action").value) query.set("action", $("audit-action").value);
  if ($("audit-resource").value) query.set("resource_type", $("audit-resource").value);
  // Dates are local midnights, as instants; "to" takes in the whole of its day.
  const midnight = (value, days = 0) => {
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + days).toISOString();
  };
  if ($("audit-since").value) query.set("since", midnight($("audit-since").value));
  if ($("audit-until").value) query.set("until", midnight($("audit-until").value, 1));
  return query;
}

function who(event) {
  // The API names the actor; the users already loaded name them if it ever does not.
  const user = event.actor_id ? state.byId.get(event.actor_id) : null;
  const email =
    event.actor_email || (user && user.email) || (event.actor_id ? "unknown user" : "not signed in");
  const more = [event.role, event.client].filter(Boolean).join(" · ");
  return [el("span", { class: "email" }, email), more ? el("span", { class: "sub" }, more) : null];
}

function auditRow(event) {
  const resource = [el("span", {}, words(event.resource_type))];
  if (event.resource_id) resource.push(el("code", { class: "sub" }, event.resource_id));
  if (event.patient_id && event.patient_id !== event.resource_id) {
    resource.push(el("span", { class: "sub" }, "patient ", el("code", {}, event.patient_id)));
  }
  return el(
    "tr",
    { "data-event": event.id, "data-request": event.request_id },
    el("td", {}, when(event.at)),
    el("td", {}, who(event)),
    el("td", {}, ACTIONS[event.action] || event.action),
    el("td", {}, resource),
    el("td", {}, outcome(event.outcome)),
    el("td", {}, el("code", { class: "rid" }, event.request_id)),
  );
}

async function loadAudit(more = false) {
  if (!more) state.audit.query = auditQuery();
  const query = new URLSearchParams(state.audit.query);
  query.set("limit", String(PAGE));
  if (more && state.audit.cursor) query.set("cursor", state.audit.cursor);
  const page = await api("GET", `/api/v1/audit-events?${query}`);
  const rows = page.items.map(auditRow);
  if (more) $("audit").append(...rows);
  else $("audit").replaceChildren(...rows);
  state.audit.cursor = page.next_cursor;
  state.audit.count = (more ? state.audit.count : 0) + rows.length;
  $("audit-more").hidden = !page.next_cursor;
  $("audit-count").textContent = state.audit.count
    ? shown(state.audit.count, "event", page.next_cursor)
    : state.audit.query.toString()
      ? "No events match these filters."
      : "No events yet.";
  say("audit-answer", "");
}

$("audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadAudit().catch(failed("audit-answer", "Could not show events: "));
});
$("audit-clear").addEventListener("click", () => {
  $("audit-form").reset();
  loadAudit().catch(failed("audit-answer", "Could not show events: "));
});
$("audit-more").addEventListener("click", () =>
  loadAudit(true).catch(failed("audit-answer", "Could not show more: ")),
);

// --- start ---------------------------------------------------------------------------------

async function start() {
  state.me = await signedIn();
  try {
    await loadUsers();
  } catch (error) {
    $("loading").hidden = true;
    if (error instanceof ApiProblem && error.status === 403) {
      $("refused").hidden = false;
      return;
    }
    throw error;
  }
  $("loading").hidden = true;
  $("zone").textContent = `Times are in your time zone, ${ZONE} (${zoneOf(new Date())}).`;
  $("admin").hidden = false;
  const asked = window.location.hash.slice(1);
  const wanted = SECTIONS.includes(asked) ? asked : "users";
  choose(tabs.find((t) => t.dataset.section === wanted));
}

start().catch((error) => {
  $("loading").hidden = false;
  $("loading").textContent = `Could not load the admin screen: ${error.message}`;
});
