// The waitlist screen: at a center, the openings offered to waiting patients and not yet
// answered (accept books the visit, decline passes the opening to the next patient), the
// offers answered lately, the patients waiting (add one, remove one) and what the waitlist
// recovered over a period. Nurses and admins: the API refuses anyone else. Holds are short
// on the same day, so the open offers are read again every 30 seconds.

import { api, ApiProblem, el, signedIn } from "./api.js";
import { addDays, allPages, dayText, todayAt, zoned } from "./words.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["admin", "nurse"];
const REFRESH_MS = 30_000;
const RECENT = 10; // answered offers shown: enough to see what just happened

const OUTCOME = {
  accepted: { icon: "✓", text: "Accepted" },
  declined: { icon: "✕", text: "Declined" },
  expired: { icon: "▲", text: "Hold ended unanswered" },
  withdrawn: { icon: "⊘", text: "Withdrawn (taken off the list)" },
  open: { icon: "○", text: "Open" },
};
const CAUSE = { cancelled: "a cancellation", no_show: "a no-show", moved: "a visit moved" };
const KIND = { chair: "Chair", bed: "Bed", isolation: "Isolation room" };
const FIELDS = {
  earliest: "Earliest day",
  latest: "Latest day",
  duration_minutes: "Chair time",
  chair_kind: "Chair kind",
  priority: "Priority",
  note: "Note",
  patient_id: "Patient",
};

const params = new URLSearchParams(window.location.search);
const state = {
  me: null,
  centers: [],
  center: null,
  chairs: new Map(),
  patients: new Map(), // id -> patient, read once per screen: every read is audited
  entries: [],
  entriesById: new Map(),
  offers: [], // open ones, the hold that ends first at the top
  offersById: new Map(),
  openSeen: "", // the open offers' ids last shown: when they change, so did the answered ones
  busy: 0, // requests of the nurse's under way: a timed refresh then waits its turn
  timer: null,
};

// --- words and times -----------------------------------------------------------------------

const daysBetween = (a, b) => Math.round((Date.parse(`${b}T12:00:00Z`) - Date.parse(`${a}T12:00:00Z`)) / 86_400_000);
const zone = () => state.center.timezone;
const local = (instant) => zoned(instant, zone());
const localDay = (instant) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(instant));
// "Wed 10 Feb": the year goes when it is this year's, as a nurse says it on the phone.
const shortDay = (instant) => {
  const { date } = local(instant);
  return localDay(instant).slice(0, 4) === todayAt(zone()).slice(0, 4) ? date.replace(/ \d{4}$/, "") : date;
};

// Now on the center's clock, with seconds: the holds are written in its time, so is this.
const centerClock = () =>
  new Intl.DateTimeFormat("en-GB", { timeZone: zone(), hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(new Date());

function nameOf(patientId) {
  const p = state.patients.get(patientId);
  if (!p) return "Unknown patient";
  return `${p.family_name}, ${p.given_name}`;
}

function chairLabel(chairId) {
  return state.chairs.get(chairId)?.label || "a chair no longer listed";
}

function minutesText(n) {
  return n === 1 ? "1 minute" : `${n} minutes`;
}

function span(minutes) {
  if (minutes < 120) return minutesText(minutes);
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return `${hours} hours${rest ? ` ${minutesText(rest)}` : ""}`;
}

// "answer by 14:30 (in 25 minutes)"; the day too when the hold ends on another day.
function holdText(offer) {
  const ends = new Date(offer.hold_until);
  const left = Math.round((ends.getTime() - Date.now()) / 60_000);
  const sameDay = localDay(offer.hold_until) === todayAt(zone());
  const when = sameDay ? local(offer.hold_until).time : `${shortDay(offer.hold_until)} ${local(offer.hold_until).time}`;
  if (ends.getTime() <= Date.now()) {
    return { ended: true, main: `Hold ended at ${when}`, sub: `${span(Math.max(0, -left))} ago; within a minute it goes to the next patient it fits, if any` };
  }
  return { ended: false, main: `Answer by ${when}`, sub: left < 1 ? "in under a minute" : `in ${span(left)}`, soon: left <= 10 };
}

function problemText(error) {
  if (error instanceof ApiProblem) {
    if (Array.isArray(error.body.errors) && error.body.errors.length) {
      return error.body.errors.map((e) => `${FIELDS[e.loc.at(-1)] || e.loc.at(-1)}: ${e.msg}`).join("; ");
    }
    const text = error.body.detail || error.body.title || `HTTP ${error.status}`;
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return error.message;
}

function say(id, message, tone = "ok") {
  const box = $(id);
  box.className = `answer ${tone}`;
  box.textContent = message;
}

function showProblem(text) {
  $("offers-problem").textContent = text;
  $("offers-problem").hidden = !text;
}

const icon = (mark) => el("span", { class: "icon", "aria-hidden": "true" }, mark);

// --- reading -------------------------------------------------------------------------------

// The names of patients not yet read, all at once (one audited read each, never again).
async function readPatients(ids) {
  const missing = [...new Set(ids)].filter((id) => !state.patients.has(id));
  await Promise.all(
    missing.map(async (id) => {
      try {
        state.patients.set(id, await api("GET", `/api/v1/patients/${id}`));
      } catch (error) {
        if (!(error instanceof ApiProblem && error.status === 404)) throw error;
      }
    }),
  );
}

async function loadCenters() {
  const page = await api("GET", "/api/v1/centers?limit=200");
  state.centers = page.items;
  $("center").replaceChildren(...state.centers.map((c) => el("option", { value: c.id }, c.name)));
  const wanted = params.get("center") || localStorage.getItem("chairside.center");
  state.center = state.centers.find((c) => c.id === wanted) || state.centers[0] || null;
  if (state.center) $("center").value = state.center.id;
}

function remember() {
  history.replaceState(null, "", `/waitlist?${new URLSearchParams({ center: state.center.id })}`);
  localStorage.setItem("chairside.center", state.center.id);
}

async function loadChairs() {
  const chairs = await allPages(`/api/v1/centers/${state.center.id}/chairs`);
  state.chairs = new Map(chairs.map((c) => [c.id, c]));
}

// Priority first, then the nearest deadline, then the longest waiting: near enough to the
// order an opening offers them in (which also asks whether the opening fits each one).
function ranked(entries) {
  return [...entries].sort(
    (a, b) =>
      a.priority - b.priority ||
      a.latest.localeCompare(b.latest) ||
      a.created_at.localeCompare(b.created_at) ||
      a.id.localeCompare(b.id),
  );
}

async function readEntries() {
  const found = await allPages(`/api/v1/waitlist?center_id=${state.center.id}&status=waiting`);
  await readPatients(found.map((e) => e.patient_id));
  state.entries = ranked(found);
  state.entriesById = new Map(found.map((e) => [e.id, e]));
}

async function readOffers() {
  const found = await allPages(`/api/v1/waitlist/offers?center_id=${state.center.id}&status=open`);
  // An offered entry is waiting, so it is listed already, unless it was added meanwhile.
  const strays = found.filter((o) => !state.entriesById.has(o.entry_id));
  const extra = await Promise.all(strays.map((o) => api("GET", `/api/v1/waitlist/${o.entry_id}`)));
  for (const e of extra) state.entriesById.set(e.id, e);
  await readPatients(found.map((o) => o.patient_id));
  state.offers = found.sort((a, b) => a.hold_until.localeCompare(b.hold_until) || a.start.localeCompare(b.start));
  state.offersById = new Map(found.map((o) => [o.id, o]));
}

// The API lists offers oldest first only: the answered ones are the tail of all of them.
async function readRecent() {
  const all = await allPages(`/api/v1/waitlist/offers?center_id=${state.center.id}`);
  const answered = all
    .filter((o) => o.status !== "open")
    .sort((a, b) => (b.answered_at || b.hold_until).localeCompare(a.answered_at || a.hold_until))
    .slice(0, RECENT);
  await readPatients(answered.map((o) => o.patient_id));
  return answered;
}

// --- the open offers -----------------------------------------------------------------------

function openingCell(offer) {
  const { time } = local(offer.start);
  const end = local(offer.end).time;
  return el(
    "td",
    { class: "opening" },
    el("span", { class: "when" }, el("time", { datetime: offer.start }, `${shortDay(offer.start)} ${time}–${end}`)),
    el("span", { class: "sub" }, `${chairLabel(offer.chair_id)} · ${minutesText(offer.duration_minutes)} · freed by ${CAUSE[offer.cause] || offer.cause}`),
  );
}

function windowText(entry) {
  return `${dayText(entry.earliest)} – ${dayText(entry.latest)}`;
}

function offerRow(offer) {
  const who = nameOf(offer.patient_id);
  const entry = state.entriesById.get(offer.entry_id);
  const hold = holdText(offer);
  const patient = state.patients.get(offer.patient_id);
  return el(
    "tr",
    { "data-offer": offer.id, class: hold.ended ? "ended" : hold.soon ? "soon" : null },
    el(
      "th",
      { scope: "row", class: "patient", tabindex: "-1" },
      el("a", { href: `/patients/${offer.patient_id}`, class: "name" }, who),
      patient ? el("span", { class: "sub" }, `MRN ${patient.mrn}`) : null,
    ),
    openingCell(offer),
    el(
      "td",
      { class: "window" },
      entry ? windowText(entry) : "—",
      entry ? el("span", { class: "sub" }, `Priority ${entry.priority}${entry.note ? ` · ${entry.note}` : ""}`) : null,
    ),
    el(
      "td",
      { class: `hold${hold.ended ? " ended" : ""}` },
      el("span", { class: "state" }, hold.ended || hold.soon ? [icon(hold.ended ? "▲" : "!"), " "] : null, el("time", { datetime: offer.hold_until }, hold.main)),
      el("span", { class: "sub" }, hold.sub),
    ),
    el(
      "td",
      { class: "answer-cell" },
      el(
        "div",
        { class: "buttons" },
        el(
          "button",
          { type: "button", class: "primary", "data-action": "accept" },
          "Accept",
          el("span", { class: "visually-hidden" }, ` for ${who}`),
        ),
        el(
          "button",
          { type: "button", "data-action": "decline" },
          "Decline…",
          el("span", { class: "visually-hidden" }, ` for ${who}`),
        ),
      ),
    ),
  );
}

// A timed refresh redraws rows under the nurse's keyboard: the focus goes back to the same
// control of the same row (by its `data-*` key), else to the row's name.
function redraw(tbody, key, rows) {
  const active = document.activeElement;
  const row = tbody.contains(active) ? active.closest("tr") : null;
  const keep = row ? { id: row.dataset[key], control: active.dataset.action || (active.dataset.remove ? "remove" : null) } : null;
  tbody.replaceChildren(...rows);
  if (!keep) return;
  const again = [...tbody.rows].find((r) => r.dataset[key] === keep.id);
  const target = again && ((keep.control && again.querySelector(`[data-action="${keep.control}"], [data-${keep.control}]`)) || again.querySelector("th"));
  if (target) target.focus();
}

function showOffers() {
  const active = document.activeElement;
  const hadFocus = $("offers").contains(active);
  redraw($("offers"), "offer", state.offers.map(offerRow));
  // Its offer answered elsewhere meanwhile: the focus goes to what the screen says next.
  if (hadFocus && !$("offers").contains(document.activeElement)) $("offers-heading").focus();
  $("offers-empty").hidden = state.offers.length > 0;
  $("offers-scroll").hidden = state.offers.length === 0;
  const count = state.offers.length;
  $("offers-heading").textContent = count ? `Offers waiting for an answer (${count})` : "Offers waiting for an answer";
}

function showRecent(answered) {
  $("recent").replaceChildren(
    ...answered.map((offer) => {
      const outcome = OUTCOME[offer.status] || { icon: "?", text: offer.status };
      const at = offer.answered_at ? `${shortDay(offer.answered_at)} ${local(offer.answered_at).time}` : null;
      const booked = offer.status === "accepted" ? `booked ${chairLabel(offer.chair_id)}` : null;
      return el(
        "tr",
        { class: `outcome-${offer.status}` },
        el("th", { scope: "row" }, nameOf(offer.patient_id)),
        el("td", {}, el("time", { datetime: offer.start }, `${shortDay(offer.start)} ${local(offer.start).time}–${local(offer.end).time}`), ` · ${chairLabel(offer.chair_id)}`),
        el("td", {}, el("span", { class: "state" }, icon(outcome.icon), ` ${outcome.text}`), [at, booked].filter(Boolean).length ? ` · ${[at, booked].filter(Boolean).join(", ")}` : ""),
      );
    }),
  );
  $("recent-empty").hidden = answered.length > 0;
  $("recent-scroll").hidden = answered.length === 0;
}

async function refreshOffers({ recent = false } = {}) {
  await readOffers();
  showOffers();
  showEntries(); // an entry shows whether it holds an offer
  const seen = state.offers.map((o) => o.id).join(" ");
  if (recent || seen !== state.openSeen) showRecent(await readRecent());
  state.openSeen = seen;
  $("updated").textContent = `Offers updated at ${centerClock()}; again every 30 seconds.`;
}

async function timedRefresh() {
  if (state.busy || document.hidden || !state.center) return;
  try {
    await refreshOffers();
  } catch (error) {
    $("updated").textContent = `Could not refresh at ${centerClock()}: ${problemText(error)}`;
  }
}

function startTimer() {
  clearInterval(state.timer);
  state.timer = setInterval(timedRefresh, REFRESH_MS);
}

function bookedText(offer) {
  return `Booked: ${shortDay(offer.start)} ${local(offer.start).time}, chair ${chairLabel(offer.chair_id)}, for ${nameOf(offer.patient_id)} (${minutesText(offer.duration_minutes)}).`;
}

async function answer(offer, action) {
  const who = nameOf(offer.patient_id);
  state.busy += 1;
  showProblem("");
  try {
    const done = await api("POST", `/api/v1/waitlist/offers/${offer.id}/${action}`);
    if (action === "accept") {
      say("offers-answer", bookedText(done));
    } else {
      say("offers-answer", `Declined for ${who}: the opening goes to the next patient it fits.`);
    }
    await reloadLists();
    $("offers-answer").focus();
  } catch (error) {
    say("offers-answer", "");
    showProblem(`Could not ${action} the offer for ${who}: ${problemText(error)}`);
    // The offers as they now stand: the hold may have ended, or someone answered meanwhile.
    if (error instanceof ApiProblem && [404, 409].includes(error.status)) {
      try {
        await reloadLists();
      } catch {
        // the message says enough
      }
    }
    $("offers-problem").setAttribute("tabindex", "-1");
    $("offers-problem").focus();
  } finally {
    state.busy -= 1;
  }
}

$("offers").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || button.getAttribute("aria-disabled") === "true") return;
  const offer = state.offersById.get(button.closest("tr").dataset.offer);
  if (!offer) return;
  if (button.dataset.action === "accept") {
    button.setAttribute("aria-disabled", "true");
    answer(offer, "accept").finally(() => button.removeAttribute("aria-disabled"));
    return;
  }
  const opening = `${shortDay(offer.start)} ${local(offer.start).time} on ${chairLabel(offer.chair_id)}`;
  confirm({
    title: "Decline this offer?",
    text: `${nameOf(offer.patient_id)} does not take ${opening}. The opening is offered to the next patient it fits; this patient stays on the list.`,
    yes: "Decline the offer",
    no: "Keep the offer",
    button,
    run: () => answer(offer, "decline"),
  });
});

// --- the waiting entries -------------------------------------------------------------------

function putOnBy(entry) {
  if (entry.created_by) return el("span", {}, "Staff", el("span", { class: "sub" }, `added ${dayText(entry.created_at.slice(0, 10))}`));
  const why = entry.appointment_id ? "a course session booked late" : "a course dose with no chair in its window";
  return el("span", { class: "auto" }, icon("⚙"), " The waitlist itself", el("span", { class: "sub" }, why));
}

function entryRow(entry) {
  const who = nameOf(entry.patient_id);
  const patient = state.patients.get(entry.patient_id);
  const left = daysBetween(todayAt(zone()), entry.latest);
  const deadline = left < 0 ? "the window has passed" : left === 0 ? "ends today" : left === 1 ? "ends tomorrow" : `ends in ${left} days`;
  const offered = state.offers.find((o) => o.entry_id === entry.id);
  return el(
    "tr",
    { "data-entry": entry.id, class: left < 0 ? "passed" : null },
    el("td", { class: `priority p${entry.priority}` }, el("span", { class: "badge" }, String(entry.priority))),
    el(
      "th",
      { scope: "row", class: "patient", tabindex: "-1" },
      el("a", { href: `/patients/${entry.patient_id}`, class: "name" }, who),
      patient ? el("span", { class: "sub" }, `MRN ${patient.mrn}`) : null,
      offered ? el("span", { class: "offered" }, icon("◆"), ` Offered ${shortDay(offered.start)} ${local(offered.start).time}`) : null,
    ),
    el(
      "td",
      { class: "window" },
      windowText(entry),
      el("span", { class: `sub${left < 0 ? " late" : ""}` }, deadline),
    ),
    el("td", { class: "num" }, minutesText(entry.duration_minutes)),
    el("td", {}, KIND[entry.chair_kind] || entry.chair_kind),
    el("td", { class: "note" }, entry.note || el("span", { class: "muted" }, "—")),
    el("td", { class: "by" }, putOnBy(entry)),
    el(
      "td",
      { class: "actions" },
      el(
        "button",
        { type: "button", class: "danger-quiet", "data-remove": entry.id },
        "Remove…",
        el("span", { class: "visually-hidden" }, ` ${who}`),
      ),
    ),
  );
}

function showEntries() {
  const active = document.activeElement;
  const hadFocus = $("entries").contains(active);
  redraw($("entries"), "entry", state.entries.map(entryRow));
  if (hadFocus && !$("entries").contains(document.activeElement)) $("entries-heading").focus();
  const n = state.entries.length;
  $("entries-empty").hidden = n > 0;
  $("entries-scroll").hidden = n === 0;
  $("entries-count").textContent = n ? `${n} ${n === 1 ? "patient" : "patients"} waiting, the most urgent first, then the nearest deadline.` : "";
}

async function reloadLists() {
  await readEntries();
  await refreshOffers({ recent: true });
}

$("entries").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-remove]");
  if (!button) return;
  const entry = state.entriesById.get(button.dataset.remove);
  if (!entry) return;
  const who = nameOf(entry.patient_id);
  const offered = state.offers.some((o) => o.entry_id === entry.id);
  confirm({
    title: `Take ${who} off the waitlist?`,
    text: `${who} waits for any day from ${windowText(entry)}. Removing is final: to wait again they are added anew.${offered ? " The offer they hold now is withdrawn and goes to the next patient." : ""}`,
    yes: "Remove from the waitlist",
    no: "Keep waiting",
    danger: true,
    button,
    run: async () => {
      state.busy += 1;
      try {
        await api("PATCH", `/api/v1/waitlist/${entry.id}`, { status: "removed" }, { "If-Match": `"${entry.version}"` });
        const at = state.entries.findIndex((e) => e.id === entry.id);
        await reloadLists();
        say("entries-answer", `${who} is off the waitlist.`);
        const rows = $("entries").querySelectorAll("tr");
        (rows[Math.min(at, rows.length - 1)]?.querySelector("th") || $("entries-answer")).focus();
        return true;
      } finally {
        state.busy -= 1;
      }
    },
    stale: async () => {
      await reloadLists();
      return "Someone changed this entry meanwhile; the list is reloaded. Look again, then try again.";
    },
  });
});

// --- adding a patient ----------------------------------------------------------------------

let picked = null;
let searchTimer = null;

function openAdd() {
  picked = null;
  const today = todayAt(zone());
  $("add-where").textContent = `At ${state.center.name}. The patient is offered an opening that fits on any day in the window.`;
  $("add-form").reset();
  $("patient-results").replaceChildren(el("legend", { class: "visually-hidden" }, "Matching patients"));
  $("w-earliest").value = today;
  $("w-earliest").min = today;
  $("w-latest").value = addDays(today, 28);
  $("w-latest").min = today;
  say("add-answer", "");
  $("add-dialog").showModal();
  $("patient-search").focus();
}

$("add").addEventListener("click", openAdd);

$("patient-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  picked = null;
  searchTimer = setTimeout(() => searchPatients().catch((error) => say("add-answer", problemText(error), "bad")), 250);
});

async function searchPatients() {
  const q = $("patient-search").value.trim();
  const box = $("patient-results");
  if (q.length < 2) return;
  const page = await api("POST", "/api/v1/patients/search", { q, limit: 8 });
  if ($("patient-search").value.trim() !== q) return; // typed on meanwhile
  box.replaceChildren(
    el("legend", { class: "visually-hidden" }, "Matching patients"),
    ...(page.items.length
      ? page.items.map((p) =>
          el(
            "label",
            { class: "choice" },
            el("input", {
              type: "radio",
              name: "patient",
              value: p.id,
              onchange: () => {
                picked = p;
                state.patients.set(p.id, p);
                say("add-answer", "");
              },
            }),
            ` ${p.family_name}, ${p.given_name} — MRN ${p.mrn} — born ${dayText(p.birth_date)}`,
          ),
        )
      : [el("p", { class: "hint" }, "No patient matches.")]),
  );
}

$("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!picked) {
    say("add-answer", "Choose the patient first: search by name or MRN.", "bad");
    $("patient-search").focus();
    return;
  }
  const earliest = $("w-earliest").value;
  const latest = $("w-latest").value;
  if (!earliest || !latest) {
    say("add-answer", "Give the earliest and the latest day.", "bad");
    (earliest ? $("w-latest") : $("w-earliest")).focus();
    return;
  }
  const body = {
    center_id: state.center.id,
    patient_id: picked.id,
    earliest,
    latest,
    duration_minutes: Number($("w-minutes").value),
    chair_kind: $("w-kind").value,
    priority: Number($("w-priority").value),
  };
  const note = $("w-note").value.trim();
  if (note) body.note = note;
  state.busy += 1;
  $("add-save").setAttribute("aria-disabled", "true");
  try {
    const entry = await api("POST", "/api/v1/waitlist", body);
    $("add-dialog").close();
    await reloadLists();
    const who = nameOf(entry.patient_id);
    say("entries-answer", `${who} is on the waitlist, priority ${entry.priority}, any day from ${windowText(entry)}.`);
    const row = $("entries").querySelector(`tr[data-entry="${entry.id}"]`);
    if (row) row.classList.add("fresh");
    (row?.querySelector("th") || $("entries-answer")).focus();
  } catch (error) {
    say("add-answer", `Not added: ${problemText(error)}`, "bad");
  } finally {
    state.busy -= 1;
    $("add-save").removeAttribute("aria-disabled");
  }
});

// --- a confirmation ------------------------------------------------------------------------

function confirm({ title, text, yes, no, danger = false, button, run, stale = null }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  $("confirm-yes").className = danger ? "danger" : "primary";
  $("confirm-no").textContent = no;
  say("confirm-answer", "");
  let done = false;
  dialog.onsubmit = async (event) => {
    event.preventDefault();
    try {
      done = true;
      dialog.close();
      await run();
    } catch (error) {
      done = false;
      if (stale && error instanceof ApiProblem && error.status === 412) {
        say("entries-answer", await stale(), "bad");
      } else {
        say("entries-answer", problemText(error), "bad");
      }
      if (button.isConnected) button.focus();
    }
  };
  dialog.onclose = () => {
    if (!done && button.isConnected) button.focus();
  };
  dialog.showModal();
  $("confirm-yes").focus();
}

// --- the figures ---------------------------------------------------------------------------

function lastThirtyDays() {
  const to = todayAt(zone());
  $("from").value = addDays(to, -29);
  $("to").value = to;
}

const number = (n, digits = 0) => Number(n).toLocaleString("en-GB", { maximumFractionDigits: digits });

async function loadFigures() {
  const from = $("from").value;
  const to = $("to").value;
  if (!from || !to) {
    say("figures-answer", "Give the first and the last day.", "bad");
    return;
  }
  const query = new URLSearchParams({ center_id: state.center.id, from, to });
  const f = await api("GET", `/api/v1/waitlist/figures?${query}`);
  say("figures-answer", "");
  $("figures-range").textContent = `Of the openings starting ${dayText(f.from, true)} to ${dayText(f.to, true)}.`;
  const figure = (label, value, note = null) =>
    el("div", {}, el("dt", {}, label), el("dd", {}, value, note ? el("span", { class: "note" }, note) : null));
  $("figures").replaceChildren(
    figure("Openings", number(f.openings), "chairs freed by a cancellation, a no-show or a move"),
    figure("Offered", number(f.offered), `to at least one patient; ${number(f.offers)} ${f.offers === 1 ? "offer" : "offers"} in all`),
    figure("Filled", number(f.filled), "accepted and booked"),
    figure("Fill rate", f.fill_rate === null ? "—" : `${number(f.fill_rate * 100)} %`, f.fill_rate === null ? "no openings" : "filled of the openings"),
    figure(
      "Median time to fill",
      f.median_minutes_to_fill === null ? "—" : span(Math.round(f.median_minutes_to_fill)),
      f.median_minutes_to_fill === null ? "none filled" : "from the opening to the accept",
    ),
    figure("Chair hours recovered", number(f.chair_hours_recovered, 1), "the filled visits' hours in the chair"),
  );
}

$("period").addEventListener("submit", (event) => {
  event.preventDefault();
  loadFigures().catch((error) => say("figures-answer", `Could not load the figures: ${problemText(error)}`, "bad"));
});

$("last-30").addEventListener("click", () => {
  lastThirtyDays();
  loadFigures().catch((error) => say("figures-answer", `Could not load the figures: ${problemText(error)}`, "bad"));
});

// --- start ---------------------------------------------------------------------------------

for (const close of document.querySelectorAll("[data-close]")) {
  close.addEventListener("click", () => close.closest("dialog").close());
}

async function centerChanged() {
  remember();
  showProblem("");
  for (const id of ["offers-answer", "entries-answer", "figures-answer"]) say(id, "");
  state.openSeen = "";
  $("heading").textContent = `Waitlist at ${state.center.name}`;
  await loadChairs();
  lastThirtyDays();
  await reloadLists();
  // The timer starts with the "updated" line it keeps true, not after the figures' read.
  startTimer();
  await loadFigures();
}

$("center").addEventListener("change", () => {
  state.center = state.centers.find((c) => c.id === $("center").value);
  centerChanged().catch((error) => showProblem(`Could not load the waitlist: ${problemText(error)}`));
});

$("refresh").addEventListener("click", () => {
  state.busy += 1;
  reloadLists()
    .then(() => showProblem(""))
    .catch((error) => showProblem(`Could not refresh: ${problemText(error)}`))
    .finally(() => {
      state.busy -= 1;
      startTimer(); // the next timed refresh 30 seconds from this one
    });
});

// Back on the tab after a while: the holds shown may be stale, so read them now.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) timedRefresh();
});

async function start() {
  state.me = await signedIn();
  $("loading").hidden = true;
  if (!ROLES.includes(state.me.role)) {
    $("refused").hidden = false;
    return;
  }
  // The address carries the center, which the nav link's does not: mark it by hand.
  for (const link of document.querySelectorAll('nav a[href="/waitlist"]')) link.setAttribute("aria-current", "page");
  await loadCenters();
  if (!state.center) {
    $("heading").textContent = "Waitlist: no center yet";
    return;
  }
  $("waitlist").hidden = false;
  await centerChanged();
}

start().catch((error) => {
  $("loading").hidden = false;
  $("loading").textContent = `Could not load the waitlist: ${problemText(error)}`;
});
