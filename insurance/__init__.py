"""Payers, coverages, pre-authorizations, which authorization pays for each session, and
billing's work queue.

Importing the package plugs insurance into the rest: it settles what scheduling's changes
imply for cover (`settlement`), and answers the cover check a `block` center makes.
"""

from insurance import settlement as _settlement  # noqa: F401 - registers the settlers
