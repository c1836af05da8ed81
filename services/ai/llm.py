"""The optional LLM backend of ``/ai/interpret``: any OpenAI-compatible chat endpoint ranks the
intents. Off unless ``SIGMA_AI_LLM_URL`` is set. It only *chooses among* the platform's intents
(``services.ai.intents.INTENTS``); parameters are always extracted by the deterministic parser,
and any failure (connection, HTTP error, timeout, an answer that is not JSON naming an intent)
leaves the deterministic answer in place."""

from __future__ import annotations

import json
import re

import httpx

from services.ai.intents import INTENTS

SYSTEM = ("You classify a portfolio manager's request into exactly one intent of this list: "
          + ", ".join(INTENTS) + ". Answer with JSON only: {\"intent\": \"<one of the list>\"}.")


class LLMRanker:
    """``ranker(query, candidates) -> intent | None`` for ``intents.interpret``."""

    def __init__(self, url: str, model: str = "default", api_key: str | None = None, timeout_s: float = 2.0):
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/chat/completions") else "/chat/completions")
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self.last_error: str | None = None

    def __call__(self, query: str, candidates: list[str]) -> str | None:
        self.last_error = None
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": f"Likely intents, best first: {', '.join(candidates[:5])}.\nRequest: {query}"}]}
        try:
            resp = httpx.post(self.url, json=body, headers=self.headers, timeout=self.timeout_s)
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
            match = re.search(r"\{.*\}", content, re.S)
            intent = json.loads(match.group(0) if match else content).get("intent")
        except Exception as exc:  # noqa: BLE001 - every failure falls back to the rules
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            return None
        if intent not in INTENTS:
            self.last_error = f"answer names no platform intent: {intent!r}"[:300]
            return None
        return intent


def ranker_from_settings(settings) -> LLMRanker | None:
    url = getattr(settings, "ai_llm_url", None)
    if not url:
        return None
    return LLMRanker(url, settings.ai_llm_model, settings.ai_llm_api_key, settings.ai_llm_timeout_s)
