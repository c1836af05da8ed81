"""A user's override of a pack template's configuration: validated and merged.

Above :mod:`compute.packs` (the packs as data), :mod:`compute.features` (the feature
registry) and :mod:`compute.train` (the trainer's settings), since a config names all three.
"""

from __future__ import annotations

from typing import Any

from compute.features import resolve_feature
from compute.instruments import InvalidTicker, normalize_ticker
from compute.packs import VARIANT_RE, RISK_PROFILES, get_template, model_id
from compute.train import config_errors

CONFIG_KEYS = ("ticker", "indicators", "features", "risk_profile", "variant", "thresholds",
               "allowed_hours", "trainer")


def validate_template_config(template_id: str, config: dict[str, Any] | None) -> list[dict[str, str]]:
    """Check a user's override of a template's config; return ``[{field, message}, ...]``.

    An empty list means the config is valid. Known keys: ticker, indicators (alias features),
    risk_profile, variant, thresholds {entry, exit}, allowed_hours, trainer {...}. Feature
    names must be known to ``compute.features``; hours must lie within the pack's session.
    """
    errors: list[dict[str, str]] = []
    try:
        template = get_template(template_id)
    except ValueError as exc:
        return [{"field": "template_id", "message": str(exc)}]
    pack = template.pack
    if config is None:
        return errors
    if not isinstance(config, dict):
        return [{"field": "config", "message": "must be an object"}]
    for key in config:
        if key not in CONFIG_KEYS:
            errors.append({"field": f"config.{key}",
                           "message": f"unknown setting; expected one of {list(CONFIG_KEYS)}"})
    if "ticker" in config:
        t = config["ticker"]
        try:
            if not isinstance(t, str):
                raise InvalidTicker("not a string")
            normalize_ticker(t)
        except InvalidTicker:
            errors.append({"field": "config.ticker", "message":
                           "must be 1-10 letters, digits, '.' or '-' (e.g. AAPL, BRK.B)"})
    if "variant" in config and config["variant"] is not None:
        v = config["variant"]
        if not isinstance(v, str) or not VARIANT_RE.match(v):
            errors.append({"field": "config.variant",
                           "message": "must be lower-case letters, digits or '-' (max 32)"})
    if "risk_profile" in config and config["risk_profile"] not in RISK_PROFILES:
        errors.append({"field": "config.risk_profile",
                       "message": f"must be one of {list(RISK_PROFILES)}"})
    for key in ("indicators", "features"):
        if key not in config:
            continue
        names = config[key]
        if not isinstance(names, list) or not names:
            errors.append({"field": f"config.{key}", "message": "must be a non-empty list"})
            continue
        for i, name in enumerate(names):
            try:
                resolve_feature(name)
            except ValueError as exc:
                errors.append({"field": f"config.{key}[{i}]", "message": str(exc)})
    if "thresholds" in config:
        th = config["thresholds"]
        if not isinstance(th, dict):
            errors.append({"field": "config.thresholds", "message": "must be an object"})
        else:
            for k, v in th.items():
                if k not in ("entry", "exit"):
                    errors.append({"field": f"config.thresholds.{k}",
                                   "message": "unknown threshold; expected entry or exit"})
                elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                    errors.append({"field": f"config.thresholds.{k}",
                                   "message": "must be a probability in [0, 1]"})
            if (isinstance(th.get("entry"), (int, float)) and isinstance(th.get("exit"), (int, float))
                    and th["exit"] > th["entry"]):
                errors.append({"field": "config.thresholds.exit",
                               "message": "must not exceed thresholds.entry"})
    if "allowed_hours" in config:
        hours = config["allowed_hours"]
        open_h = int(pack.session.open[:2])
        close_h = int(pack.session.close[:2]) - (1 if pack.session.close.endswith(":00") else 0)
        if not isinstance(hours, list) or not hours:
            errors.append({"field": "config.allowed_hours", "message": "must be a non-empty list"})
        else:
            for i, h in enumerate(hours):
                if isinstance(h, bool) or not isinstance(h, int) or not open_h <= h <= close_h:
                    errors.append({"field": f"config.allowed_hours[{i}]",
                                   "message": f"must be an hour between {open_h} and {close_h} "
                                              f"({pack.session.timezone})"})
    if "trainer" in config:
        errors.extend(config_errors(config["trainer"], "config.trainer."))
    return errors


def merged_config(template_id: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Template defaults overridden by a (valid) user config; ValueError listing all errors."""
    errors = validate_template_config(template_id, config)
    if errors:
        raise ValueError("; ".join(f"{e['field']}: {e['message']}" for e in errors))
    template = get_template(template_id)
    out = template.default_config()
    out["pack_id"] = template.pack_id
    out["template_id"] = template_id
    for key, value in (config or {}).items():
        if key == "features":
            key = "indicators"
        if key == "trainer":
            out["trainer"] = {**out["trainer"], **value}
        elif key == "ticker":
            out["ticker"] = normalize_ticker(value)
        else:
            out[key] = value
    out["model_id"] = model_id(out["ticker"], template.pack_id, out.get("variant"))
    return out
