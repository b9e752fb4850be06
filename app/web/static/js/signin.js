// The sign-in page: opens a session (cookie) and goes to the day board, or back to where
// the browser was sent from (?next=, e.g. an app's consent page; paths on this site only).

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");

// Only a path of this site: "//elsewhere", "/\elsewhere" and absolute URLs stay here.
function returnPath() {
  const next = new URLSearchParams(window.location.search).get("next");
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) {
    return null;
  }
  const url = new URL(next, window.location.origin);
  return url.origin === window.location.origin ? url.pathname + url.search : null;
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
