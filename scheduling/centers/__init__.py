"""Centers: opening hours, nurse staffing, closures, chairs and chair blocks."""
