"""The waitlist: patients waiting for an opening sooner than the one they have (issue 16).
Each entry says when the patient could come (`earliest`..`latest`), for how long, in what kind
of chair and how urgently; `rank` orders the entries an opening would be offered to. A chair
freed by a cancel, a no-show or a move makes an opening (`openings`), offered one entry at a
time (`offers`) and booked when accepted (`backfill`).

Importing the package registers what the waitlist settles (`settlement`): the openings a
freed chair makes, and the courses the booking run puts on the list."""

from scheduling.waitlist import settlement as _settlement  # noqa: F401 - registers the settlers
