// Finding a patient by name or MRN. The search text goes in the body of a POST, never in the
// URL (so it stays out of history, proxies and logs), and is not kept anywhere.

import { api, el, signedIn, toast } from "./api.js";

const PAGE = 25;
const $ = (id) => document.getElementById(id);
const SEX = { female: "Female", male: "Male", other: "Other", unknown: "Unknown" };
let query = "";
let cursor = null;
let shown = 0;
let timer = null;
let asked = 0; // the latest search asked for: an older answer arriving late is dropped

function bornText(isoDate) {
  const born = new Date(`${isoDate}T12:00:00Z`);
  const now = new Date();
  let age = now.getUTCFullYear() - born.getUTCFullYear();
  const before =
    now.getUTCMonth() < born.getUTCMonth() ||
    (now.getUTCMonth() === born.getUTCMonth() && now.getUTCDate() < born.getUTCDate());
  if (before) age -= 1;
  const day = born.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  return `${day} (${age})`;
}

function row(p) {
  return el(
    "tr",
    {},
    el("th", { scope: "row" }, el("a", { href: `/patients/${p.id}` }, `${p.family_name}, ${p.given_name}`)),
    el("td", {}, p.mrn),
    el("td", {}, bornText(p.birth_date)),
    el("td", {}, SEX[p.sex] || p.sex),
  );
}

async function search(more = false) {
  const q = $("q").value.trim();
  if (!more) {
    if (q.length < 2) {
      $("count").textContent = q ? "Type at least two letters." : "";
      $("results").hidden = true;
      $("more").hidden = true;
      return;
    }
    query = q;
    cursor = null;
    shown = 0;
  }
  const mine = ++asked;
  const body = { q: query, limit: PAGE };
  if (cursor) body.cursor = cursor;
  const page = await api("POST", "/api/v1/patients/search", body);
  if (mine !== asked) return;
  if (!more) $("rows").replaceChildren();
  const added = page.items.map(row);
  $("rows").append(...added);
  // "Show more" hides itself at the end: the focus goes on to the first row it added.
  if (more && !page.next_cursor && added.length) added[0].querySelector("a")?.focus();
  shown += page.items.length;
  cursor = page.next_cursor;
  $("results").hidden = shown === 0;
  $("more").hidden = !cursor;
  $("count").textContent =
    shown === 0 ? "No patient matches." : `${shown}${cursor ? "+" : ""} matching ${shown === 1 ? "patient" : "patients"}`;
}

// Signed in first: a search is a POST, which needs the session's CSRF token.
await signedIn();

$("find").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(timer);
  search().catch((error) => toast(error.message));
});
$("q").addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(() => search().catch((error) => toast(error.message)), 300);
});
$("more").addEventListener("click", () => search(true).catch((error) => toast(error.message)));

// What was typed while the sign-in was still being checked is searched now, not dropped.
if ($("q").value.trim()) search().catch((error) => toast(error.message));
$("q").focus();
