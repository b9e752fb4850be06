"""The waitlist: patients waiting for an opening sooner than the one they have (issue 16).
Each entry says when the patient could come (`earliest`..`latest`), for how long, in what kind
of chair and how urgently; `rank` orders the entries an opening would be offered to."""
