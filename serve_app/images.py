"""Chart answers shared by every chart route: ``{name}.png|svg`` parsed into (name, format)
with a 400 naming the valid charts, and the image response."""

from __future__ import annotations

from fastapi.responses import Response

from serve_app.errors import invalid
from serve_app.schemas.charts import binary_responses
from services.reports import charts

#: ``responses=`` of a chart route.
IMAGE = binary_responses(charts.FORMATS, "A PNG (150 dpi) or SVG chart", 400, 401, 404, 409, 429)


def chart_name(raw: str, allowed) -> tuple[str, str]:
    name, dot, ext = raw.rpartition(".")
    if not dot or ext not in charts.FORMATS:
        raise invalid("chart", f"name the chart with its format, e.g. {next(iter(allowed))}.png or .svg")
    if name not in allowed:
        raise invalid("chart", f"unknown chart {name!r}; use one of {', '.join(allowed)}")
    return name, ext


def image_response(data: bytes, ext: str) -> Response:
    return Response(data, media_type=charts.FORMATS[ext], headers={"Cache-Control": "private, max-age=60"})
