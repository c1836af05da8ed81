"""Pictures and reports (issue 14): charts, report assembly, templates, schedules."""
