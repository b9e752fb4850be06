// The sign-in page: opens a session (cookie) and goes to the day board, or back to where
// the browser was sent from (?next=: only an app's consent page, see RETURNS).

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");

// Only back to the consent page: an app's SMART launch is what sends a browser here to come
// back. The value is parsed first and then held to this origin and that one path, since a
// check of the raw text misses spellings that parse to another host ("/.//elsewhere",
// "/%2e//elsewhere", "/./\\elsewhere" all have the path "//elsewhere").
const RETURNS = ["/oauth/authorize"];

function returnPath() {
  const next = new URLSearchParams(window.location.search).get("next");
  if (!next || !next.startsWith("/")) return null;
  let url;
  try {
    url = new URL(next, window.location.origin);
  } catch {
    return null;
  }
  if (url.origin !== window.location.origin || !RETURNS.includes(url.pathname)) return null;
  return url.pathname + url.search;
}

const back = returnPath();

// Sent here from another site's link (an app starting a SMART launch), the browser withheld
// its SameSite=Strict session cookie: our own request now carries it, so a signed-in
// browser goes straight back.
if (back) {
  fetch("/api/v1/auth/me", { credentials: "same-origin" }).then((response) => {
    if (response.ok) window.location.assign(back);
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const response = await fetch("/api/v1/auth/session", {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    credentials: "same-origin",
  });
  if (response.ok) {
    window.location.assign(back || "/board");
    return;
  }
  const problem = await response.json().catch(() => ({}));
  error.textContent =
    response.status === 429
      ? "Too many attempts. Wait a few minutes and try again."
      : problem.detail || "Could not sign in.";
  document.getElementById("password").select();
});
