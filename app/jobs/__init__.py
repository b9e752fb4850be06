"""Background jobs: what runs, when, where it is recorded, and which process runs it."""
