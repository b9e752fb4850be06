"""Treatment courses: ordering one, planning and booking its sessions inside their clinical
windows, and re-planning them when something changes."""
