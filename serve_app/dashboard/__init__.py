"""The web dashboard under /app: server-rendered pages (Jinja2) over the API itself, htmx for
partial updates, a few lines of JS for the UI-sync stream. See docs/dashboard.md."""
