"""The web app nurses, schedulers and billers work in: pages served by Chairside itself, whose
scripts read and change everything through the same JSON API (so the same rules, policy table
and audit trail), signed in with a session cookie and a CSRF token."""
