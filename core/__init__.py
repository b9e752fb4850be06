"""The kernel every domain stands on: the database and its unit of work, problems, schema
base types, pagination, logs, the outbox, named locks, the clock and the user directory.
It imports no domain and no web framework."""
