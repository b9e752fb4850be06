"""Level-loading a center's days: optimiser proposals built from the schedule, and applying
one (issue 16). The solver itself is `scheduling.optimiser` (pure)."""
