"""The API reference, docs/api.md and docs/openapi.json, from the app's own OpenAPI schema.

mkdocs runs this file as a hook (``hooks:`` in mkdocs.yml) before it collects the pages, so
``make docs`` always documents the routes as they are. It also runs alone::

    .venv/bin/python docs/gen_api.py

The schema is built offline: a child process imports ``serve_app.app.local_app`` (the FastAPI
app without Ray Serve) with ``SIGMA_HOME`` set to a temporary directory and every other
``SIGMA_*`` variable removed, and calls ``app.openapi()``. No Ray, no server, no catalog; the
temporary directory is removed afterwards. The two output files are rewritten only when their
content changes, so ``mkdocs serve`` does not loop on its own output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
API_MD = DOCS / "api.md"
OPENAPI_JSON = DOCS / "openapi.json"

METHOD_ORDER = ("get", "post", "put", "patch", "delete", "head", "options")

# Runs in the child process: argv[1] is SIGMA_HOME (a temporary directory), argv[2] the output.
_SCHEMA_SNIPPET = """
import json, sys
from cluster.config import Settings
from serve_app.app import local_app
schema = local_app(Settings(home=sys.argv[1])).openapi()
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(schema, handle)
"""


def build_schema() -> dict:
    """The OpenAPI document of the app, built in a child process with a throw-away SIGMA_HOME."""
    with tempfile.TemporaryDirectory(prefix="sigma-docs-") as home:
        out = Path(home) / "openapi.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
        env.update(SIGMA_HOME=home, PYTHONDONTWRITEBYTECODE="1", RAY_USAGE_STATS_ENABLED="0")
        proc = subprocess.run(
            [sys.executable, "-c", _SCHEMA_SNIPPET, home, str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"building the OpenAPI schema failed:\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


# -- rendering ---------------------------------------------------------------------------------

def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_link(name: str) -> str:
    return f"[`{name}`](#schema-{name.lower()})"


def _cell(text) -> str:
    """Text safe inside a Markdown table cell: one line, every pipe escaped.

    A pipe inside a code span is moved out of it (`a|b` becomes `a`\\|`b`): GitHub needs the
    escape even in code, and Python-Markdown would print the backslash inside code.
    """
    if text is None:
        return ""
    parts = " ".join(str(text).split()).split("`")
    for i, part in enumerate(parts):
        if i % 2:  # inside a code span
            parts[i] = part.replace("|", "`\\|`")
        else:
            parts[i] = _escape(part).replace("|", "\\|")
    return "`".join(parts)


def _escape(text: str) -> str:
    """Plain text for Markdown: no HTML, and braces escaped so attr_list does not take
    ``{...}`` at the end of a block for attributes."""
    return text.replace("<", "&lt;").replace("{", "\\{").replace("}", "\\}")


def _prose(text: str) -> str:
    """A summary or description: braces and angle brackets escaped outside code spans."""
    parts = text.strip().split("`")
    for i in range(0, len(parts), 2):
        parts[i] = _escape(parts[i])
    return "`".join(parts)


def _type(schema: dict | None, link: bool = True) -> str:
    """A short type: ``string``, ``integer (min 1, max 1000)``, ``array of BacktestRequest``, ``string or null``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return _schema_link(name) if link else f"`{name}`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = []
            for option in schema[key]:
                part = _type(option, link)
                if part not in parts:
                    parts.append(part)
            return " or ".join(parts)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type(schema["allOf"][0], link)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{_literal(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type") or ("object" if schema.get("properties") else "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {_type(schema.get('items'), link)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'], link)}"
    bounds = []
    for key, label in (
        ("minimum", "min"), ("exclusiveMinimum", "above"), ("maximum", "max"), ("exclusiveMaximum", "below"),
        ("minLength", "min length"), ("maxLength", "max length"), ("minItems", "min items"), ("maxItems", "max items"),
    ):
        if key in schema:
            bounds.append(f"{label} {_number(schema[key])}")
    if "pattern" in schema:
        choice = re.fullmatch(r"\^\(([\w.-]+(?:\|[\w.-]+)+)\)\$", schema["pattern"])
        if choice:  # ^(a|b|c)$ reads better as a list of the values
            bounds.append("one of " + ", ".join(f"`{v}`" for v in choice.group(1).split("|")))
        else:
            bounds.append(f"pattern `{schema['pattern']}`")
    if "format" in schema:
        bounds.insert(0, schema["format"])
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _literal(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _default(schema: dict | None) -> str:
    if not schema or "default" not in schema:
        return ""
    return f"`{json.dumps(schema['default'])}`"


def _description(item: dict, schema: dict | None = None) -> str:
    return item.get("description") or (schema or {}).get("description") or ""


def _parameters(op: dict) -> list[str]:
    params = op.get("parameters") or []
    if not params:
        return []
    lines = [
        "| name | in | type | required | default | description |",
        "|---|---|---|---|---|---|",
    ]
    for p in params:
        schema = p.get("schema") or {}
        lines.append(
            f"| `{p['name']}` | {p.get('in', '')} | {_cell(_type(schema))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(_default(schema))} | {_cell(_description(p, schema))} |"
        )
    return ["**Parameters**", "", *lines, ""]


def _request_body(op: dict) -> list[str]:
    body = op.get("requestBody")
    if not body:
        return []
    lines = []
    for content_type, content in (body.get("content") or {}).items():
        schema = content.get("schema") or {}
        required = "required" if body.get("required") else "optional"
        if "$ref" in schema:
            what = _schema_link(_ref_name(schema["$ref"]))
        elif schema.get("properties"):
            what = "inline object: " + ", ".join(f"`{k}`" for k in schema["properties"])
        else:
            what = "a JSON object (no schema declared; see the guides)"
        lines.append(f"**Request body** ({content_type}, {required}): {what}")
        lines.append("")
        for example in (schema.get("examples") or [])[:1]:
            lines += ["Example:", "", "```json", json.dumps(example, indent=2), "```", ""]
    return lines


def _responses(op: dict) -> list[str]:
    rows = []
    for code, response in sorted((op.get("responses") or {}).items()):
        schemas = []
        for content_type, content in (response.get("content") or {}).items():
            schema = content.get("schema") or {}
            if schema:
                schemas.append(f"{_type(schema)} ({content_type})")
        detail = f": {', '.join(schemas)}" if schemas else ""
        rows.append(f"- `{code}` {response.get('description', '')}{detail}")
    return ["**Responses**", "", *rows, ""] if rows else []


def _schema_section(name: str, schema: dict) -> list[str]:
    lines = [f"### {name} {{#schema-{name.lower()}}}", ""]
    if schema.get("description"):
        lines += [_prose(" ".join(schema["description"].split())), ""]
    props = schema.get("properties") or {}
    if not props:
        lines += [f"Type: {_type({k: v for k, v in schema.items() if k != 'title'})}", ""]
        return lines
    required = set(schema.get("required") or [])
    lines += [
        "| field | type | required | default | description |",
        "|---|---|---|---|---|",
    ]
    for field, sub in props.items():
        lines.append(
            f"| `{field}` | {_cell(_type(sub))} | {'yes' if field in required else 'no'} | "
            f"{_cell(_default(sub))} | {_cell(sub.get('description'))} |"
        )
    return lines + [""]


def render(schema: dict) -> str:
    """docs/api.md: one section per tag (method, path, summary, parameters, body, responses)."""
    info = schema.get("info", {})
    groups: dict[str, list[tuple[str, str, dict]]] = {}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if method not in METHOD_ORDER:
                continue
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append((path, method, op))
    count = sum(len(ops) for ops in groups.values())

    out = [
        "<!-- Generated by docs/gen_api.py from the app's OpenAPI schema on every `make docs`; do not edit. -->",
        "",
        "# API reference",
        "",
        f"{info.get('title', 'Sigma')} {info.get('version', '')}: {count} operations under `/api/v1`, "
        "generated from the app's OpenAPI schema at build time. Download the schema: "
        "[openapi.json](openapi.json). A running server serves the same document at "
        "`/api/v1/openapi.json` and interactive docs at `/api/v1/docs`.",
        "",
        "Every route except `GET /api/v1/healthz` and `POST /api/v1/auth/token` needs "
        "`Authorization: Bearer <token>`. FastAPI lists `422 Validation Error` on each route; "
        "Sigma answers invalid input with **400 `INVALID_PARAMETER`** in the common error body "
        "instead (see [Quick start](quickstart.md#errors)). Other errors (401, 403, 404, 409, 413, "
        "429) use the same body. What each route computes is in the "
        "[Lab](lab.md) and [Portfolio](portfolio.md) guides.",
        "",
        "| tag | operations |",
        "|---|---|",
    ]
    tags = sorted(groups)
    for tag in tags:
        out.append(f"| [{tag}](#tag-{tag.replace(' ', '-')}) | {len(groups[tag])} |")
    out.append("")
    for tag in tags:
        out += [f"## {tag} {{#tag-{tag.replace(' ', '-')}}}", ""]
        ops = sorted(groups[tag], key=lambda item: (item[0], METHOD_ORDER.index(item[1])))
        for path, method, op in ops:
            out += [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                out += [_prose(op["summary"]), ""]
            if op.get("description"):
                out += [_prose(op["description"]), ""]
            if op.get("deprecated"):
                out += ["Deprecated.", ""]
            out += _parameters(op)
            out += _request_body(op)
            out += _responses(op)
    components = (schema.get("components") or {}).get("schemas") or {}
    if components:
        out += ["## Schemas", "", "Request and response bodies named above.", ""]
        for name in sorted(components):
            out += _schema_section(name, components[name])
    return "\n".join(out).rstrip() + "\n"


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def generate() -> list[Path]:
    """Write docs/openapi.json and docs/api.md; returns the files that changed."""
    schema = build_schema()
    changed = []
    if _write_if_changed(OPENAPI_JSON, json.dumps(schema, indent=2, ensure_ascii=False) + "\n"):
        changed.append(OPENAPI_JSON)
    if _write_if_changed(API_MD, render(schema)):
        changed.append(API_MD)
    return changed


# -- mkdocs hook -------------------------------------------------------------------------------

def on_pre_build(config) -> None:  # noqa: ARG001 - mkdocs passes the config by keyword
    """Runs before mkdocs collects the files, so the fresh api.md is what gets built."""
    import logging

    changed = generate()
    logging.getLogger("mkdocs.hooks.gen_api").info(
        "API reference: %s", ", ".join(p.name for p in changed) + " rewritten" if changed else "unchanged"
    )


if __name__ == "__main__":
    for path in generate():
        print(f"wrote {path.relative_to(ROOT)}")
