// The day board (and week view): chairs by time on the 15-minute grid, the nurse load under
// it, booking from an open slot, and what nurses do at the chair. Everything through the API.

import { api, ApiProblem, el, signedIn, toast } from "./api.js";
import { addDays, DOSE_STATUS, READINESS, readiness, todayAt, VISIT_STATUS as STATUS } from "./words.js";

const STEP = 15 * 60 * 1000;
const POLL_MS = 5000; // two nurses on one board see each other's changes within seconds
const DONE = { "check-in": "checked in", start: "infusion started", "no-show": "marked as a no-show" };
const ACTIVE = new Set(["booked", "checked_in", "in_progress"]);
// Given visits stay where they were; cancelled and missed ones freed the chair: listed apart.
const ON_BOARD = new Set([...ACTIVE, "completed"]);
const ACTIONS = {
  "check-in": ["booked"],
  start: ["checked_in"],
  complete: ["in_progress"],
  "no-show": ["booked"],
  move: ["booked"],
  cancel: ["booked", "checked_in"],
};
const CLINICAL = new Set(["admin", "nurse"]); // who may ask the optimiser and apply its moves
const SOLVER_SECONDS = 10; // how long the week's optimiser may search

const params = new URLSearchParams(window.location.search);
const state = {
  view: params.get("view") === "week" ? "week" : "day",
  centers: [],
  center: null,
  date: params.get("date"),
  board: null,
  shown: "",
  visit: null,
  slot: null,
  patient: null,
  roving: null, // where the grid's one Tab stop is: {row, col}
  aim: null, // the time (column) up and down keep to
  drugs: new Map(), // the day's doses from the preparation queue, by visit
  drugsFor: null, // the center and day they are for
  drugsRefused: false, // this role may not read the queue (billing): no marks
  role: null,
  week: null, // the week view's days, as last read
  proposal: null, // the optimiser's proposal shown on the week: {week (its Monday), reply}
};

const $ = (id) => document.getElementById(id);

// --- dates and times in the center's time zone ------------------------------------------

function mondayOf(isoDate) {
  const d = new Date(`${isoDate}T12:00:00Z`);
  return addDays(isoDate, -((d.getUTCDay() + 6) % 7));
}

// The API gives instants with the center's offset: the wall clock is in the string itself.
const wall = (instant) => instant.slice(11, 16);
const longDate = (isoDate) =>
  new Date(`${isoDate}T12:00:00Z`).toLocaleDateString("en-GB", {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });

function phaseText(v) {
  if (!v.phase) return "Single visit";
  return `${v.phase === "induction" ? "Loading day" : "Maintenance"} ${v.sequence}`;
}

// --- loading ---------------------------------------------------------------------------

async function loadCenters() {
  const page = await api("GET", "/api/v1/centers?limit=200");
  state.centers = page.items;
  const select = $("center");
  select.replaceChildren(...state.centers.map((c) => el("option", { value: c.id }, c.name)));
  const wanted = params.get("center") || localStorage.getItem("chairside.center");
  state.center = state.centers.find((c) => c.id === wanted) || state.centers[0] || null;
  if (state.center) select.value = state.center.id;
  if (!state.date && state.center) state.date = todayAt(state.center.timezone);
}

function remember() {
  const query = new URLSearchParams({ center: state.center.id, date: state.date });
  if (state.view === "week") query.set("view", "week");
  history.replaceState(null, "", `/board?${query}`);
  localStorage.setItem("chairside.center", state.center.id);
  $("date").value = state.date;
  const other = new URLSearchParams({ center: state.center.id, date: state.date });
  if (state.view === "day") other.set("view", "week");
  $("view-switch").href = `/board?${other}`;
  $("view-switch").textContent = state.view === "day" ? "Week view" : "Day view";
}

async function refresh(force = false) {
  if (!state.center) {
    $("heading").textContent = "No center yet";
    return;
  }
  remember();
  if (state.view === "week") return showWeek();
  const [board] = await Promise.all([
    api("GET", `/api/v1/centers/${state.center.id}/day?date=${encodeURIComponent(state.date)}`),
    loadReadiness(force),
  ]);
  const shown = JSON.stringify(board);
  if (!force && shown === state.shown) return;
  state.board = board;
  state.shown = shown;
  showDay(board);
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}`;
}

// Drug readiness: the day's preparation queue, read once when the board loads a center and
// day (and after a change made here), not on every poll. A role that may not read it (403)
// simply gets no marks; any other failure leaves the board as it is, without marks.
async function loadReadiness(force) {
  const key = `${state.center.id} ${state.date}`;
  if (state.drugsRefused || (!force && key === state.drugsFor)) return;
  state.drugsFor = key;
  try {
    const day = await api(
      "GET",
      `/api/v1/centers/${state.center.id}/preparation?date=${encodeURIComponent(state.date)}`,
    );
    state.drugs = new Map(day.items.map((d) => [d.appointment_id, d]));
  } catch (error) {
    state.drugs = new Map();
    if (error instanceof ApiProblem && error.status === 403) state.drugsRefused = true;
    else state.drugsFor = null; // tried again on the next load
  }
}

function drugReadiness(visit) {
  const dose = state.drugs.get(visit.id);
  return dose ? readiness(dose) : null;
}

function drugMark(mark) {
  if (!mark) return null;
  const { icon, text } = READINESS[mark];
  return el(
    "span",
    { class: `drug drug-${mark}` },
    el("span", { class: "icon", "aria-hidden": "true" }, icon),
    ` ${text}`,
  );
}

// --- the day ---------------------------------------------------------------------------

function showDay(board) {
  $("heading").textContent = `${state.center.name} — ${longDate(board.date)}`;
  const closed = $("closed");
  const grid = $("board");
  $("week").hidden = true;
  $("even-out").hidden = true;
  $("proposal").hidden = true;
  $("board-help").hidden = false;
  $("load-section").hidden = false;
  grid.hidden = false;
  if (!board.opens || !board.closes) {
    closed.hidden = false;
    closed.textContent = board.closed_reason
      ? `Closed: ${board.closed_reason}`
      : "The center does not open on this day.";
    grid.replaceChildren();
    $("load").replaceChildren();
    return;
  }
  closed.hidden = true;
  const opens = Date.parse(board.opens);
  const columns = board.slots.length;
  grid.style.gridTemplateColumns = `minmax(7rem, 8.5rem) repeat(${columns}, minmax(1.5rem, 1fr))`;
  const cells = [el("div", { class: "corner" }, "Chair")];
  board.slots.forEach((slot, i) => {
    if (wall(slot.start).endsWith(":00")) {
      const label = el("div", { class: "hour" }, wall(slot.start));
      label.style.gridColumn = `${i + 2} / span ${Math.min(4, columns - i)}`;
      label.style.gridRow = "1";
      cells.push(label);
    }
  });
  const inactive = [];
  board.chairs.forEach((chair, row) => {
    const line = row + 2;
    const name = el(
      "div",
      { class: "chair" },
      el("strong", {}, chair.label),
      el("span", { class: "kind" }, chair.active ? chair.kind : `${chair.kind}, out of service`),
    );
    name.style.gridRow = String(line);
    cells.push(name);
    const covered = new Set();
    for (const visit of chair.appointments) {
      if (!ON_BOARD.has(visit.status)) {
        inactive.push({ chair, visit });
        continue;
      }
      const first = Math.max(0, Math.floor((Date.parse(visit.start) - opens) / STEP));
      const last = Math.min(columns, Math.ceil((Date.parse(visit.end) - opens) / STEP));
      for (let c = first; c < last; c += 1) covered.add(c);
      const card = visitCard(visit, chair);
      card.style.gridColumn = `${first + 2} / ${last + 2}`;
      card.style.gridRow = String(line);
      locate(card, line, first, last - first);
      cells.push(card);
    }
    board.slots.forEach((slot, i) => {
      if (covered.has(i) || !chair.active) return;
      const cell = el("button", {
        type: "button",
        class: "slot",
        "aria-label": `Book ${chair.label} at ${wall(slot.start)}`,
        "data-chair": chair.id,
        "data-start": slot.start,
        onclick: () => openBooking(chair, slot.start),
        ondragover: (event) => event.preventDefault(),
        ondrop: (event) => dropVisit(event, chair, slot.start),
      });
      cell.style.gridColumn = String(i + 2);
      cell.style.gridRow = String(line);
      locate(cell, line, i, 1);
      cells.push(cell);
    });
  });
  const focused = grid.contains(document.activeElement) ? position(document.activeElement) : null;
  grid.replaceChildren(...cells);
  rove(grid, focused);
  showInactive(inactive);
  showLoad(board);
}

// --- moving around the grid by keyboard -------------------------------------------------
// The grid is one stop in the Tab order and the arrow keys move inside it (WAI-ARIA's
// roving tabindex): a day of 60 chairs has thousands of open slots, far too many to Tab
// through. Home and End go to a chair's first and last time; Enter or Space chooses.

function locate(cell, row, col, span) {
  cell.dataset.row = String(row);
  cell.dataset.col = String(col);
  cell.dataset.span = String(span);
}

function position(cell) {
  return { row: Number(cell.dataset.row), col: Number(cell.dataset.col) };
}

function cellAt(grid, row, col) {
  for (const cell of grid.querySelectorAll(`[data-row="${row}"]`)) {
    const start = Number(cell.dataset.col);
    if (start <= col && col < start + Number(cell.dataset.span)) return cell;
  }
  return null;
}

function rove(grid, focused) {
  const cells = grid.querySelectorAll("[data-row]");
  for (const cell of cells) cell.tabIndex = -1;
  const keep = state.roving && cellAt(grid, state.roving.row, state.roving.col);
  // Else the earliest time of the first chair: where reading the grid starts.
  const first = [...cells].sort((a, b) => a.dataset.row - b.dataset.row || a.dataset.col - b.dataset.col)[0];
  const current = keep || first;
  if (!current) return;
  current.tabIndex = 0;
  if (focused) (cellAt(grid, focused.row, focused.col) || current).focus();
}

function moveFocus(grid, from, to) {
  if (!to) return;
  from.tabIndex = -1;
  to.tabIndex = 0;
  state.roving = position(to);
  to.focus();
}

$("board").addEventListener("keydown", (event) => {
  const grid = $("board");
  const from = event.target.closest("[data-row]");
  if (!from) return;
  const { row, col } = position(from);
  const span = Number(from.dataset.span);
  const rows = grid.querySelectorAll(".chair").length + 1;
  const columns = state.board ? state.board.slots.length : 0;
  const scan = (r, cols) => cols.map((c) => cellAt(grid, r, c)).find(Boolean) || null;
  const range = (a, b) => (a <= b ? [...Array(b - a + 1).keys()].map((k) => a + k) : [...Array(a - b + 1).keys()].map((k) => a - k));
  // Up and down keep to the time they started from, through a long visit and out again.
  const aim = state.aim !== null && state.aim >= col && state.aim < col + span ? state.aim : col;
  const vertical = (step) => {
    for (let r = row + step; r >= 2 && r <= rows; r += step) {
      const to = cellAt(grid, r, aim);
      if (to) return to;
    }
    return null;
  };
  const targets = {
    ArrowRight: () => scan(row, range(col + span, columns - 1)),
    ArrowLeft: () => (col > 0 ? scan(row, range(col - 1, 0)) : null),
    ArrowDown: () => vertical(1),
    ArrowUp: () => vertical(-1),
    Home: () => scan(row, range(0, columns - 1)),
    End: () => scan(row, range(columns - 1, 0)),
  };
  if (!(event.key in targets)) return;
  event.preventDefault();
  const to = targets[event.key]();
  moveFocus(grid, from, to);
  state.aim = to && (event.key === "ArrowUp" || event.key === "ArrowDown") ? aim : null;
});

// On a narrow screen the board and the load strip under it scroll sideways together, so
// each column of the strip stays under the times it counts.
for (const [from, to] of [["board", "load"], ["load", "board"]]) {
  $(from).addEventListener("scroll", () => {
    if ($(to).scrollLeft !== $(from).scrollLeft) $(to).scrollLeft = $(from).scrollLeft;
  });
}

$("board").addEventListener("focusin", (event) => {
  const cell = event.target.closest("[data-row]");
  if (!cell) return;
  for (const other of $("board").querySelectorAll('[data-row][tabindex="0"]')) other.tabIndex = -1;
  cell.tabIndex = 0;
  state.roving = position(cell);
});

function visitCard(visit, chair) {
  const status = STATUS[visit.status];
  const what = visit.product ? `${visit.product} ${visit.dose_g ?? ""} g` : "";
  const ready = drugReadiness(visit);
  const card = el(
    "button",
    {
      type: "button",
      class: `visit status-${visit.status}`,
      draggable: visit.status === "booked" ? "true" : null,
      "data-visit": visit.id,
      // A short visit's card cuts its lines: the whole of them on hover.
      title: `${visit.patient_name} · ${[what, phaseText(visit)].filter(Boolean).join(" · ")} · ${status.text} ${wall(visit.start)}–${wall(visit.end)}${ready ? ` · ${READINESS[ready].text}` : ""}`,
      onclick: () => openVisit(visit, chair),
      ondragstart: (event) => {
        event.dataTransfer.setData("text/plain", visit.id);
        event.dataTransfer.effectAllowed = "move";
      },
    },
    el("span", { class: "who-line" }, el("span", { class: "name" }, visit.patient_name), drugMark(ready)),
    el("span", { class: "line" }, [what, phaseText(visit)].filter(Boolean).join(" · ")),
    el(
      "span",
      { class: "state" },
      el("span", { class: "icon", "aria-hidden": "true" }, status.icon),
      ` ${status.text} · ${wall(visit.start)}–${wall(visit.end)}`,
      visit.outside_window ? " · outside window" : "",
      visit.coverage && visit.coverage.state === "uncovered" ? " · not covered" : "",
    ),
  );
  return card;
}

function showInactive(inactive) {
  let box = $("inactive");
  if (!box) {
    box = el("details", { id: "inactive", class: "inactive" });
    $("board").after(box);
  }
  box.hidden = inactive.length === 0;
  box.replaceChildren(
    el("summary", {}, `Cancelled and missed (${inactive.length})`),
    el(
      "ul",
      {},
      inactive.map(({ chair, visit }) =>
        el(
          "li",
          {},
          el("span", { class: `badge status-${visit.status}` }, STATUS[visit.status].icon, " ", STATUS[visit.status].text),
          ` ${wall(visit.start)} ${visit.patient_name} (${chair.label})`,
        ),
      ),
    ),
  );
}

function showLoad(board) {
  // The same columns as the board, so a busy morning lines up with its visits.
  const box = $("load");
  box.style.gridTemplateColumns = $("board").style.gridTemplateColumns;
  const cells = [
    label("Patients in chairs", 1),
    label("Nurses can look after", 2),
    label("Starts in 30 min / nurses", 3),
  ];
  board.slots.forEach((slot, i) => {
    const over = slot.census > slot.nurse_capacity;
    const fill = el("span", { class: "fill" });
    fill.style.height = `${slot.nurse_capacity ? Math.min(100, (100 * slot.census) / slot.nurse_capacity) : 0}%`;
    cells.push(
      place(
        el(
          "div",
          {
            class: `census${over ? " over" : ""}`,
            title: `${wall(slot.start)}: ${slot.census} patients, nurses can look after ${slot.nurse_capacity}`,
          },
          el("span", { class: "bar" }, fill),
          el("span", { class: "count" }, String(slot.census)),
        ),
        i,
        1,
        1,
      ),
    );
    if (wall(slot.start).endsWith(":00")) {
      cells.push(place(el("div", { class: "capacity" }, String(slot.nurse_capacity)), i, 2, 4));
    }
    if (i % 2 === 0) {
      const next = board.slots[i + 1];
      const starts = slot.starts + (next ? next.starts : 0);
      const crowded = slot.nurses > 0 && starts > slot.nurses;
      cells.push(
        place(
          el(
            "div",
            {
              class: `starts${crowded ? " over" : ""}`,
              title: `${wall(slot.start)}: ${starts} infusion starts for ${slot.nurses} nurses on duty`,
            },
            `${starts}/${slot.nurses}`,
          ),
          i,
          3,
          2,
        ),
      );
    }
  });
  box.replaceChildren(...cells);
}

function label(text, row) {
  const node = el("div", { class: "label" }, text);
  node.style.gridRow = String(row);
  return node;
}

function place(node, column, row, span) {
  node.style.gridColumn = `${column + 2} / span ${span}`;
  node.style.gridRow = String(row);
  return node;
}

// --- the week --------------------------------------------------------------------------

async function showWeek() {
  const start = mondayOf(state.date);
  const week = await api("GET", `/api/v1/centers/${state.center.id}/week?start=${start}`);
  state.week = week;
  // A proposal is for the week it was asked for: another week shown, it is put away.
  if (state.proposal && state.proposal.week !== start) {
    state.proposal = null;
    say("");
  }
  $("heading").textContent = `${state.center.name} — week of ${longDate(start)}`;
  $("board").hidden = true;
  $("closed").hidden = true;
  $("load").replaceChildren();
  // The grid's help and the nurse load are the day's: the week has its own strips.
  $("board-help").hidden = true;
  $("load-section").hidden = true;
  $("even-out").hidden = !CLINICAL.has(state.role);
  $("week").hidden = false;
  renderWeek();
}

function renderWeek() {
  const week = state.week;
  const proposal = state.proposal ? state.proposal.reply : null;
  const chairs = new Map(week.days.flatMap((d) => d.chairs).map((c) => [c.id, c]));
  const visits = new Map(week.days.flatMap((d) => d.chairs.flatMap((c) => c.appointments)).map((v) => [v.id, v]));
  const moves = new Map((proposal ? proposal.moves : []).map((m) => [m.appointment_id, m]));
  const census = new Map((proposal ? proposal.days : []).map((d) => [d.date, d]));
  $("week").replaceChildren(
    ...week.days.map((day) => {
      const shown = day.chairs.flatMap((c) => c.appointments).filter((v) => ACTIVE.has(v.status) || v.status === "completed");
      const peak = Math.max(0, ...day.slots.map((s) => s.census));
      const capacity = Math.max(0, ...day.slots.map((s) => s.nurse_capacity));
      const query = new URLSearchParams({ center: state.center.id, date: day.date });
      const items = shown.map((v) => ({ at: v.start, node: weekVisit(v, moves.get(v.id), chairs) }));
      // A visit the proposal moves here from another day is listed here too, at its new time.
      for (const move of moves.values()) {
        if (dayOf(move.to_start) === day.date && dayOf(move.from_start) !== day.date) {
          items.push({ at: move.to_start, node: arrivingVisit(visits.get(move.appointment_id), move, chairs) });
        }
      }
      const levels = census.get(day.date);
      let strips = null;
      if (proposal && day.opens) {
        strips = levels && levels.opens
          ? censusStrips(day.date, levels)
          : el("p", { class: "hint" }, "Stays as it is: the center does not move visits this soon.");
      }
      return el(
        "section",
        { class: `day${proposal ? " proposed" : ""}` },
        el("h2", {}, el("a", { href: `/board?${query}` }, longDate(day.date))),
        day.opens
          ? el("p", {}, `${shown.length} ${shown.length === 1 ? "visit" : "visits"} · busiest ${peak} of ${capacity} patients`)
          : el("p", { class: "hint" }, day.closed_reason ? `Closed: ${day.closed_reason}` : "Closed"),
        strips,
        el(
          "ul",
          {},
          items.sort((a, b) => a.at.localeCompare(b.at)).map((item) => item.node),
        ),
      );
    }),
  );
  showProposal(proposal);
}

const dayOf = (instant) => instant.slice(0, 10);
const shortDate = (isoDate) =>
  new Date(`${isoDate}T12:00:00Z`).toLocaleDateString("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  });

function chairText(chairs, id) {
  const chair = chairs.get(id);
  return el("span", { class: "keep" }, chair ? `${chair.kind} ${chair.label}` : "another chair");
}

function weekVisit(visit, move, chairs) {
  const line = `${wall(visit.start)} ${visit.patient_name}`;
  if (!move) return el("li", { "data-appointment": visit.id }, line);
  const elsewhere = dayOf(move.to_start) !== dayOf(visit.start);
  const when = `${elsewhere ? `${shortDate(dayOf(move.to_start))} ` : ""}${wall(move.to_start)}`;
  return el(
    "li",
    { class: "moving", "data-appointment": visit.id },
    line,
    el(
      "span",
      { class: "move" },
      `Moves ${wall(visit.start)} → `,
      el("span", { class: "keep" }, when),
      ", ",
      chairText(chairs, move.to_chair_id),
    ),
  );
}

function arrivingVisit(visit, move, chairs) {
  const name = visit ? visit.patient_name : "A visit";
  return el(
    "li",
    { class: "arriving", "data-appointment": move.appointment_id, "data-arriving": "" },
    `${wall(move.to_start)} ${name}`,
    el(
      "span",
      { class: "move" },
      "Arrives from ",
      el("span", { class: "keep" }, `${shortDate(dayOf(move.from_start))} ${wall(move.from_start)}`),
      "; to ",
      chairText(chairs, move.to_chair_id),
    ),
  );
}

// --- evening out the week ----------------------------------------------------------------
// The optimiser proposes moves for the week shown (Monday to Sunday); nothing changes until
// a person applies them. The proposal is shown on the week: its figures before and after, a
// census strip per day before and after, and the visits that move marked with where they go.

function say(text, bad = false) {
  const line = $("even-out-status");
  line.className = bad ? "answer bad" : "answer";
  line.textContent = text;
}

function problemText(error) {
  if (!(error instanceof ApiProblem)) return error.message;
  const body = error.body || {};
  if (body.errors) return body.errors.map((e) => e.msg).join("; ");
  const detail = body.detail || body.title || error.message;
  const text = detail.charAt(0).toUpperCase() + detail.slice(1);
  const days = body.changed_days && body.changed_days.length
    ? ` (changed: ${body.changed_days.map(longDate).join("; ")})`
    : "";
  return `${text}${days}.`;
}

$("even-out-run").addEventListener("click", async () => {
  const start = mondayOf(state.date);
  const run = $("even-out-run");
  run.disabled = true;
  $("proposal-apply").disabled = true;
  $("week").setAttribute("aria-busy", "true");
  say(`Working out an even week of ${longDate(start)}… the solver takes up to ${SOLVER_SECONDS} seconds.`);
  try {
    const reply = await api("POST", `/api/v1/centers/${state.center.id}/optimise`, {
      from: start,
      to: addDays(start, 6),
      time_limit_seconds: SOLVER_SECONDS,
    });
    if (mondayOf(state.date) !== start) return; // another week is shown by now
    if (!reply.feasible) {
      state.proposal = null;
      say(`No plan found in ${reply.time_limit_seconds} seconds: nothing would move.`);
    } else if (reply.moves.length === 0) {
      state.proposal = null;
      say("This week is already as even as the rules allow: no visit needs to move.");
    } else {
      state.proposal = { week: start, reply };
      const n = reply.moves.length;
      say(`Proposal ready: ${n} ${n === 1 ? "visit moves" : "visits move"}. Nothing changes until you apply it.`);
    }
    renderWeek();
    if (state.proposal) $("proposal-heading").focus();
  } catch (error) {
    say(problemText(error), true);
  } finally {
    run.disabled = false;
    $("proposal-apply").disabled = false;
    $("week").removeAttribute("aria-busy");
  }
});

$("proposal-apply").addEventListener("click", async () => {
  if (!state.proposal) return;
  const { reply } = state.proposal;
  const buttons = [$("proposal-apply"), $("proposal-discard"), $("even-out-run")];
  for (const b of buttons) b.disabled = true;
  say("Applying the moves…");
  let done = false;
  try {
    const applied = await api("POST", `/api/v1/optimisations/${reply.id}/apply`);
    state.proposal = null;
    done = true;
    await showWeek();
    const n = applied.moves.length;
    say(`Applied: ${n} ${n === 1 ? "visit has" : "visits have"} moved. The week shows the new times.`);
    toast(`${n} ${n === 1 ? "visit" : "visits"} moved`);
  } catch (error) {
    if (done) {
      say(`Applied, but the week could not be read again: ${problemText(error)}`, true);
    } else if (error instanceof ApiProblem && error.status === 409) {
      // Applied already, or the week changed since: this proposal is done with. The week is
      // read again, as it is now, and a new proposal is one press away.
      state.proposal = null;
      done = true;
      await showWeek().catch(() => {});
      say(`Not applied, nothing moved. ${problemText(error)} Press “Even out this week” to ask again.`, true);
    } else {
      say(`Not applied. ${problemText(error)}`, true);
    }
  } finally {
    for (const b of buttons) b.disabled = false;
  }
  // The proposal (and its buttons) gone, the focus goes to where the next step starts.
  if (done) $("even-out-run").focus();
});

$("proposal-discard").addEventListener("click", () => {
  state.proposal = null;
  renderWeek();
  say("Proposal discarded: nothing moved.");
  $("even-out-run").focus();
});

function showProposal(proposal) {
  const box = $("proposal");
  box.hidden = !proposal;
  if (!proposal) return;
  const { before, after } = proposal;
  const start = mondayOf(state.date);
  $("proposal-heading").textContent = `Proposal: the week of ${longDate(start)} evened out`;
  const n = proposal.moves.length;
  const movable = proposal.movable_sessions;
  const fixed = proposal.fixed_sessions;
  const notes = [`${n} of the ${movable} course ${movable === 1 ? "visit" : "visits"} the optimiser may move would move.`];
  if (fixed > 0) {
    notes.push(`${fixed} other ${fixed === 1 ? "visit stays" : "visits stay"} as ${fixed === 1 ? "it is" : "they are"} (moved by hand, begun, or not a course's).`);
  }
  if (proposal.from > start) {
    notes.push(`Days before ${longDate(proposal.from)} stay as they are: the center does not move visits this soon.`);
  }
  if (after.off_target_day > before.off_target_day) {
    notes.push(`${after.off_target_day} ${after.off_target_day === 1 ? "visit leaves its" : "visits leave their"} preferred day, inside ${after.off_target_day === 1 ? "its" : "their"} course window.`);
  }
  if (before.last_finish && after.last_finish && before.last_finish !== after.last_finish) {
    notes.push(`The last visit of a day ends at ${after.last_finish} (now ${before.last_finish}).`);
  }
  const found = proposal.optimal
    ? "This plan is proved the best."
    : `The best plan found in ${proposal.time_limit_seconds} seconds.`;
  $("proposal-figures").replaceChildren(
    figure("Busiest moment", before.peak_census, after.peak_census, "patients in chairs at once"),
    figure("Most starts in 30 minutes", before.max_starts_per_30_min, after.max_starts_per_30_min, "infusions begun"),
    el(
      "div",
      {},
      el("dt", {}, "Best possible peak"),
      el(
        "dd",
        {},
        String(proposal.lower_bound_peak),
        el("span", { class: "note" }, `no plan can do better than ${proposal.lower_bound_peak}. ${found}`),
      ),
    ),
    el(
      "div",
      {},
      el("dt", {}, "Visits that move"),
      el("dd", {}, String(n), el("span", { class: "note" }, "marked on each day below")),
    ),
  );
  $("proposal-notes").textContent = notes.join(" ");
}

function figure(name, now, then, unit) {
  return el(
    "div",
    {},
    el("dt", {}, name),
    el(
      "dd",
      {},
      el("span", { "aria-hidden": "true" }, `${now} → ${then}`),
      el("span", { class: "visually-hidden" }, `now ${now}, after ${then}`),
      el("span", { class: "note" }, unit),
    ),
  );
}

// A day's census before and after: a bar for each 15 minutes, as high as the patients in
// chairs, a line at what the nurses on duty can look after; over it, red. The numbers are in
// each strip's text (for a screen reader) and each bar's title (on hover).
function censusStrips(date, levels) {
  const scale = Math.max(1, ...levels.capacity, ...levels.before, ...levels.after);
  const closes = clock(levels.opens, levels.before.length * levels.slot_minutes);
  return el(
    "div",
    { class: "strips" },
    strip("Now", date, levels, levels.before, scale),
    strip("After", date, levels, levels.after, scale),
    el(
      "div",
      { class: "strip-axis", "aria-hidden": "true" },
      el("span", {}, levels.opens),
      el("span", {}, closes),
    ),
  );
}

function clock(hhmm, minutes) {
  const [h, m] = hhmm.split(":").map(Number);
  const total = h * 60 + m + minutes;
  return `${String(Math.floor(total / 60) % 24).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
}

function strip(name, date, levels, counts, scale) {
  const at = (i) => clock(levels.opens, i * levels.slot_minutes);
  const bars = counts.map((count, i) => {
    const cap = levels.capacity[i];
    const bar = el(
      "span",
      { class: `bar${count > cap ? " over" : ""}`, title: `${name}, ${at(i)}: ${count} patients, nurses can look after ${cap}` },
      el("span", { class: "fill" }),
      el("span", { class: "cap" }),
    );
    bar.firstChild.style.height = `${(100 * count) / scale}%`;
    bar.lastChild.style.bottom = `${(100 * cap) / scale}%`;
    return bar;
  });
  // The same numbers in words: each stretch of the day with its count (empty ones left out).
  const runs = [];
  counts.forEach((count, i) => {
    const last = runs[runs.length - 1];
    const over = count > levels.capacity[i];
    if (last && last.count === count && last.over === over && last.end === i) last.end = i + 1;
    else runs.push({ count, over, start: i, end: i + 1 });
  });
  const busy = runs.filter((r) => r.count > 0);
  const overs = runs.filter((r) => r.over);
  const peak = Math.max(0, ...counts);
  const words = busy.length
    ? busy.map((r) => `${at(r.start)}–${at(r.end)} ${r.count}${r.over ? ` (over ${levels.capacity[r.start]})` : ""}`).join(", ")
    : "nobody";
  const label = `${longDate(date)}, ${name.toLowerCase()}: busiest ${peak} patients in chairs, nurses can look after ${Math.max(0, ...levels.capacity)}. Patients in chairs: ${words}.${overs.length ? "" : " Never over."}`;
  return el(
    "div",
    { class: "strip-row" },
    el("span", { class: "strip-name", "aria-hidden": "true" }, name),
    el("div", { class: "strip", role: "img", "aria-label": label }, bars),
    overs.length
      ? el(
          "p",
          { class: "over-note", "aria-hidden": "true" },
          `▲ over: ${overs.map((r) => `${at(r.start)}–${at(r.end)}`).join(", ")}`,
        )
      : null,
  );
}

// --- booking ---------------------------------------------------------------------------

function openBooking(chair, start) {
  state.slot = { chair, start };
  state.patient = null;
  $("book-where").textContent = `${chair.label} (${chair.kind}), ${longDate(state.board.date)}`;
  $("book-start").value = wall(start);
  $("patient-search").value = "";
  $("patient-results").replaceChildren(el("legend", { class: "visually-hidden" }, "Matching patients"));
  $("book-answer").textContent = "";
  $("book-course").textContent = "";
  $("calc-answer").textContent = "";
  $("calc").open = false;
  loadProducts().catch(showProblem("calc-answer"));
  $("book-dialog").showModal();
  $("patient-search").focus();
}

let searchTimer = null;
$("patient-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchPatients, 250);
});

async function searchPatients() {
  const q = $("patient-search").value.trim();
  const box = $("patient-results");
  if (q.length < 2) return;
  const page = await api("POST", "/api/v1/patients/search", { q, limit: 8 });
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
              onchange: () => choosePatient(p),
            }),
            ` ${p.family_name}, ${p.given_name} — MRN ${p.mrn} — born ${p.birth_date}`,
          ),
        )
      : [el("p", { class: "hint" }, "No patient matches.")]),
  );
}

async function choosePatient(patient) {
  state.patient = patient;
  $("book-answer").textContent = "";
  $("calc-weight").value = patient.weight_kg ? String(patient.weight_kg) : "";
  const courses = await api("GET", `/api/v1/courses?patient_id=${patient.id}&status=active`);
  const course = courses.items[0];
  if (!course) {
    $("book-course").textContent = "No active course: a single visit.";
    return;
  }
  const plan = await api("GET", `/api/v1/courses/${course.id}/plan`);
  const next = (plan.sessions || []).find((s) => !s.appointment);
  if (next && next.chair_minutes) {
    $("book-minutes").value = String(next.chair_minutes);
    // A visit booked here stands alone: the course books its own sessions (from the course).
    $("book-course").textContent = `Active course: its next session needs ${next.chair_minutes} chair minutes (${next.dose_g} g). This books a separate visit, not that session.`;
  }
}

// The infusion-time calculator: chair time from the product's titration, the dose and the
// weight. The booking adds the center's turnover by itself, so it is not asked for here.
let products = null;
async function loadProducts() {
  if (!products) products = (await api("GET", "/api/v1/products?limit=100")).items.filter((p) => p.active);
  if ($("calc-product").options.length) return;
  $("calc-product").replaceChildren(...products.map((p) => el("option", { value: p.id }, p.name)));
}

$("calc-run").addEventListener("click", async () => {
  const answer = $("calc-answer");
  try {
    const weight = Number($("calc-weight").value);
    if (!weight) {
      answer.textContent = "Give the patient's weight first.";
      return;
    }
    const result = await api("POST", "/api/v1/infusion-time", {
      product_id: $("calc-product").value,
      weight_kg: weight,
      dose_g_per_kg: Number($("calc-dose").value),
      first_dose: $("calc-first").checked,
    });
    $("book-minutes").value = String(result.chair_minutes);
    const b = result.breakdown;
    answer.textContent = `${result.dose_g} g: ${result.chair_minutes} chair minutes (premedication ${b.premed}, infusion ${b.infusion}, observation ${b.observation}). Chair time set.`;
  } catch (error) {
    showProblem("calc-answer")(error);
  }
});

function bookingBody() {
  return {
    patient_id: state.patient.id,
    chair_id: state.slot.chair.id,
    local_date: state.board.date,
    local_time: $("book-start").value,
    duration_minutes: Number($("book-minutes").value),
  };
}

async function checkBooking() {
  const answer = $("book-answer");
  if (!state.patient) {
    answer.textContent = "Choose a patient first.";
    return false;
  }
  const result = await api("POST", "/api/v1/appointments/check", bookingBody());
  answer.className = result.bookable ? "answer ok" : "answer bad";
  answer.textContent = result.bookable ? "Free: this visit can be booked." : result.problem.detail;
  return result.bookable;
}

$("book-check").addEventListener("click", () => checkBooking().catch(showProblem("book-answer")));
$("book-save").addEventListener("click", async () => {
  try {
    if (!state.patient) {
      $("book-answer").textContent = "Choose a patient first.";
      return;
    }
    await api("POST", "/api/v1/appointments", bookingBody());
    $("book-dialog").close();
    toast(`Booked ${state.patient.family_name}, ${state.patient.given_name} at ${$("book-start").value}`);
    await refresh(true);
  } catch (error) {
    showProblem("book-answer")(error);
  }
});

// --- at the chair ----------------------------------------------------------------------

function openVisit(visit, chair) {
  state.visit = { visit, chair };
  const status = STATUS[visit.status];
  $("visit-title").textContent = visit.patient_name;
  const facts = [
    ["MRN", visit.mrn],
    ["Record", el("a", { href: `/patients/${visit.patient_id}` }, `${visit.patient_name}'s record`)],
    ["When", `${wall(visit.start)}–${wall(visit.end)}, ${longDate(state.board.date)}`],
    ["Chair", `${chair.label} (${chair.kind})`],
    ["Drug", visit.product ? `${visit.product}, ${visit.dose_g} g` : "—"],
    ["Course", phaseText(visit)],
    ["Status", `${status.icon} ${status.text}`],
    ["Pharmacy", preparationText(visit)],
    ["Insurance", visit.coverage ? (visit.coverage.state === "covered" ? "Covered" : `Not covered (${visit.coverage.reason})`) : "—"],
  ];
  $("visit-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("visit-answer").textContent = "";
  for (const button of $("visit-actions").querySelectorAll("[data-action]")) {
    button.hidden = !ACTIONS[button.dataset.action].includes(visit.status);
  }
  $("visit-dialog").showModal();
}

function preparationText(visit) {
  const dose = state.drugs.get(visit.id);
  if (!dose) return state.drugsRefused || !visit.phase ? "—" : "Not on the pharmacy's queue";
  const status = DOSE_STATUS[dose.status] || { icon: "?", text: dose.status };
  const short = dose.short_g > 0 && readiness(dose) === "short" ? ` · ▲ short ${dose.short_g} g of stock` : "";
  return `${status.icon} ${status.text}${short}`;
}

$("visit-actions").addEventListener("click", async (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (!action) return;
  const { visit } = state.visit;
  if (action === "move") return openMove();
  if (action === "cancel") return $("cancel-dialog").showModal();
  if (action === "complete") return $("complete-dialog").showModal();
  try {
    await api("POST", `/api/v1/appointments/${visit.id}/${action}`);
    $("visit-dialog").close();
    toast(`${visit.patient_name}: ${DONE[action]}`);
    await refresh(true);
  } catch (error) {
    showProblem("visit-answer")(error);
  }
});

function openMove() {
  const { visit, chair } = state.visit;
  $("move-date").value = state.board.date;
  $("move-time").value = wall(visit.start);
  $("move-chair").replaceChildren(
    ...state.board.chairs
      .filter((c) => c.active)
      .map((c) => el("option", { value: c.id, selected: c.id === chair.id }, `${c.label} (${c.kind})`)),
  );
  $("move-reason").value = "";
  $("move-answer").textContent = "";
  $("move-dialog").showModal();
}

$("move-save").addEventListener("click", async () => {
  const { visit } = state.visit;
  const body = {
    local_date: $("move-date").value,
    local_time: $("move-time").value,
    chair_id: $("move-chair").value,
  };
  const reason = $("move-reason").value.trim();
  if (reason) body.override_reason = reason;
  try {
    await patchVisit(visit, body);
    $("move-dialog").close();
    $("visit-dialog").close();
    toast(`${visit.patient_name} moved to ${body.local_time}`);
    await refresh(true);
  } catch (error) {
    showProblem("move-answer")(error);
  }
});

function patchVisit(visit, body) {
  return api("PATCH", `/api/v1/appointments/${visit.id}`, body, { "If-Match": `"${visit.version}"` });
}

async function dropVisit(event, chair, start) {
  event.preventDefault();
  const id = event.dataTransfer.getData("text/plain");
  const visit = state.board.chairs.flatMap((c) => c.appointments).find((v) => v.id === id);
  if (!visit) return;
  try {
    await patchVisit(visit, { local_date: state.board.date, local_time: wall(start), chair_id: chair.id });
    toast(`${visit.patient_name} moved to ${chair.label} at ${wall(start)}`);
  } catch (error) {
    toast(error.message);
  }
  await refresh(true);
}

$("cancel-save").addEventListener("click", async () => {
  const { visit } = state.visit;
  const details = $("cancel-details").value.trim();
  const reason = details ? `${$("cancel-reason").value}: ${details}` : $("cancel-reason").value;
  try {
    await api("POST", `/api/v1/appointments/${visit.id}/cancel`, { reason });
    $("cancel-dialog").close();
    $("visit-dialog").close();
    toast(`${visit.patient_name}'s visit cancelled (${reason})`);
    await refresh(true);
  } catch (error) {
    showProblem("cancel-answer")(error);
  }
});

$("complete-save").addEventListener("click", async () => {
  const { visit } = state.visit;
  const record = {};
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  if (number("rec-weight") !== null) record.weight_kg = number("rec-weight");
  if (number("rec-dose") !== null) record.dose_given_g = number("rec-dose");
  if ($("rec-kind").value) {
    record.reactions = [
      { kind: $("rec-kind").value, grade: Number($("rec-grade").value), action: $("rec-action").value },
    ];
  }
  if (number("rec-rate") !== null) {
    const field = $("rec-unit").value === "ml" ? "tolerated_rate_ml_per_hour" : "tolerated_rate_mg_per_kg_min";
    record[field] = number("rec-rate");
  }
  if ($("rec-notes").value.trim()) record.notes = $("rec-notes").value.trim();
  try {
    await api("POST", `/api/v1/appointments/${visit.id}/complete`, record);
    $("complete-dialog").close();
    $("visit-dialog").close();
    toast(`${visit.patient_name}: infusion completed`);
    await refresh(true);
  } catch (error) {
    showProblem("complete-answer")(error);
  }
});

function showProblem(id) {
  return (error) => {
    const box = $(id);
    box.className = "answer bad";
    if (error instanceof ApiProblem && error.body.errors) {
      box.textContent = error.body.errors.map((e) => e.msg).join("; ");
    } else {
      box.textContent = error.message;
    }
  };
}

// --- wiring ----------------------------------------------------------------------------

for (const close of document.querySelectorAll("[data-close]")) {
  close.addEventListener("click", () => close.closest("dialog").close());
}
$("center").addEventListener("change", () => {
  state.center = state.centers.find((c) => c.id === $("center").value);
  refresh(true);
});
$("date").addEventListener("change", () => {
  if ($("date").value) {
    state.date = $("date").value;
    refresh(true);
  }
});
$("prev").addEventListener("click", () => {
  state.date = addDays(state.date, state.view === "week" ? -7 : -1);
  refresh(true);
});
$("next").addEventListener("click", () => {
  state.date = addDays(state.date, state.view === "week" ? 7 : 1);
  refresh(true);
});
$("today").addEventListener("click", () => {
  state.date = todayAt(state.center.timezone);
  refresh(true);
});

function dialogOpen() {
  return [...document.querySelectorAll("dialog")].some((d) => d.open);
}

async function start() {
  const me = await signedIn();
  state.role = me.role;
  if (me.role === "pharmacy") {
    // The board is the nurses' (the API refuses the day to the pharmacy): the pharmacy's own.
    window.location.replace("/pharmacy");
    return;
  }
  await loadCenters();
  await refresh(true);
  setInterval(() => {
    if (state.view === "day" && !document.hidden && !dialogOpen()) refresh().catch(() => {});
  }, POLL_MS);
}

start().catch((error) => toast(error.message));
