// Talking to Chairside's JSON API from the web app: the session cookie goes by itself, the
// CSRF token with every change; problems come back as {status, title, detail, ...}.

let csrf = null;
let me = null;

export class ApiProblem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (method !== "GET" && method !== "HEAD") {
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    window.location.assign("/");
    throw new ApiProblem(401, { detail: "signed out" });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiProblem(response.status, data || {});
  return data;
}

// Who is signed in (and the session's CSRF token); sends the others to the sign-in page.
export async function signedIn() {
  if (me) return me;
  me = await api("GET", "/api/v1/auth/me");
  csrf = me.csrf_token;
  const who = document.getElementById("who");
  if (who) who.textContent = `${me.email} (${me.role})`;
  // Links to screens this role may not use are taken away (the API refuses them anyway).
  for (const link of document.querySelectorAll("nav [data-roles]")) {
    if (!link.dataset.roles.split(" ").includes(me.role)) link.remove();
  }
  const here = window.location.pathname + window.location.search;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === here) link.setAttribute("aria-current", "page");
  }
  const out = document.getElementById("sign-out");
  if (out) {
    out.addEventListener("click", async () => {
      try {
        await api("DELETE", "/api/v1/auth/session");
      } finally {
        window.location.assign("/");
      }
    });
  }
  return me;
}

export function toast(message) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("shown"), 4000);
}

// Build an element: el("p", {class: "x"}, "text", child). Text is always text, never HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A tab list worked by keyboard as WAI-ARIA's tabs pattern says: the arrow keys move to the
// next or previous tab (round the ends), Home and End to the first and last; `choose(tab,
// {focus})` shows it.
export function keyboardTabs(tabs, choose) {
  for (const tab of tabs) {
    tab.addEventListener("click", () => choose(tab));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(i + 1) % tabs.length],
        ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (!next) return;
      event.preventDefault();
      choose(next, { focus: true });
    });
  }
}
