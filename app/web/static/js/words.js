// The words and times every screen uses: visit, course, cover and authorization states as
// icon and text (never colour alone), instants in a center's local time, dates as a nurse
// writes them, sessions as nurses name them; and reading every page of a list.

import { api } from "./api.js";

export const VISIT_STATUS = {
  booked: { icon: "○", text: "Booked" },
  checked_in: { icon: "◐", text: "Checked in" },
  in_progress: { icon: "▶", text: "Infusing" },
  completed: { icon: "✓", text: "Completed" },
  cancelled: { icon: "✕", text: "Cancelled" },
  no_show: { icon: "!", text: "No-show" },
};

export const COURSE_STATUS = {
  active: { icon: "▶", text: "Active" },
  on_hold: { icon: "⏸", text: "On hold" },
  completed: { icon: "✓", text: "Completed" },
  discontinued: { icon: "✕", text: "Discontinued" },
};

export const COVER = {
  covered: { icon: "✓", text: "Covered", cls: "ok" },
  uncovered: { icon: "✕", text: "Not covered", cls: "bad" },
  unknown: { icon: "?", text: "Not known yet", cls: "unknown" },
};

export const AUTH_STATUS = {
  draft: "Draft",
  submitted: "Submitted to the payer",
  pending: "Pending: the payer asked for more",
  approved: "Approved",
  partially_approved: "Partially approved",
  denied: "Denied",
  appealed: "Appealed",
  expired: "Expired",
  exhausted: "Used up",
  cancelled: "Cancelled",
};

// An instant in `timezone`: { date: "Tue 5 Jan 2027", time: "09:00" }.
export function zoned(instant, timezone) {
  const at = new Date(instant);
  const date = new Intl.DateTimeFormat("en-GB", {
    timeZone: timezone,
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
  })
    .format(at)
    .replace(",", "");
  const time = new Intl.DateTimeFormat("en-GB", {
    timeZone: timezone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(at);
  return { date, time };
}

// A calendar date (YYYY-MM-DD) as "5 Jan 2027", or "Tue 5 Jan 2027"; "—" for none.
export function dayText(isoDate, weekday = false) {
  if (!isoDate) return "—";
  return new Date(`${isoDate}T12:00:00Z`)
    .toLocaleDateString("en-GB", {
      weekday: weekday ? "short" : undefined,
      day: "numeric",
      month: "short",
      year: "numeric",
      timeZone: "UTC",
    })
    .replace(",", "");
}

// "Loading day 2", "Maintenance 3, second day"; a visit outside a course is a single visit.
export function sessionLabel(phase, sequence, part = 1) {
  if (!phase) return "Single visit";
  const name = phase === "induction" ? `Loading day ${sequence}` : `Maintenance ${sequence}`;
  return part === 2 ? `${name}, second day` : name;
}

// Every item of a paged list (at most 5,000: a screen shows no more).
export async function allPages(path) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `${path}${path.includes("?") ? "&" : "?"}${query}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 5000);
  return items;
}

// A dose on the pharmacy's preparation queue: how far it has come.
export const DOSE_STATUS = {
  planned: { icon: "○", text: "Planned" },
  cleared: { icon: "◐", text: "Patient cleared" },
  prepared: { icon: "◑", text: "Prepared" },
  dispensed: { icon: "➜", text: "At the chair" },
  administered: { icon: "✓", text: "Administered" },
};

// A dose's readiness as the day board marks a visit (short: the stock cannot cover it).
export const READINESS = {
  short: { icon: "▲", text: "Drug short" },
  cleared: { icon: "◐", text: "Cleared" },
  prepared: { icon: "◑", text: "Drug prepared" },
  ready: { icon: "✓", text: "Drug ready" },
  given: { icon: "✓", text: "Drug given" },
};

// What the board says of a dose: dispensed is ready; a dose not yet prepared that the stock
// cannot cover is short; a dose only planned has no mark.
export function readiness(dose) {
  if (dose.status === "administered") return "given";
  if (dose.status === "dispensed") return "ready";
  if (dose.status === "prepared") return "prepared";
  if (dose.short_g > 0) return "short";
  if (dose.status === "cleared") return "cleared";
  return null;
}

// A lot of stock: its status and where it is kept.
export const LOT_STATUS = {
  available: { icon: "●", text: "Available" },
  quarantined: { icon: "⊘", text: "Quarantined" },
  recalled: { icon: "✕", text: "Recalled" },
};

export const STORAGE = { refrigerated: "Refrigerated", room_temperature: "Room temperature" };

// --- days ----------------------------------------------------------------------------------
// Days are ISO dates (YYYY-MM-DD) in a center's own calendar; arithmetic on them is done at
// noon UTC, which no time zone's offset moves to another day.

export function todayAt(timezone) {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(new Date()); // en-CA formats as YYYY-MM-DD
}

export function addDays(isoDate, days) {
  const d = new Date(`${isoDate}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
