// The sign-in page: opens a session (cookie) and goes to the day board.

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const response = await fetch("/api/v1/auth/session", {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    credentials: "same-origin",
  });
  if (response.ok) {
    window.location.assign("/board");
    return;
  }
  const problem = await response.json().catch(() => ({}));
  error.textContent =
    response.status === 429
      ? "Too many attempts. Wait a few minutes and try again."
      : problem.detail || "Could not sign in.";
  document.getElementById("password").select();
});
