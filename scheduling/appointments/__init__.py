"""Appointments: booking a chair for a patient under every booking rule, moving and
progressing it, availability, the day board, and the patient's own view."""
