"""Scheduling: centers and their chairs and staffing (`centers`), appointments under every
booking rule (`appointments`), the drug catalog (`catalog`), treatment courses (`courses`),
and the nightly booking run, no-show sweep and reminders (`jobs`). Imports go
jobs -> courses -> appointments -> catalog -> centers (checked by `lint-imports`)."""
