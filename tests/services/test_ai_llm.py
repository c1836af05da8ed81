"""The optional LLM backend of /ai/interpret against a real local HTTP server speaking the
OpenAI chat-completions shape: a good answer ranks the intent; an HTTP error, garbage, an
intent the platform does not have, or a dead port fall back to the deterministic parser."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.ai import intents
from services.ai.llm import LLMRanker


class _Chat(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        _Chat.seen.append(body)
        if _Chat.mode == "error":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"upstream exploded")
            return
        if _Chat.mode == "garbage":
            payload = b"<html>not json</html>"
        else:
            intent = "analyze_risk" if _Chat.mode == "ok" else "launch_rockets"
            content = f"Sure! {{\"intent\": \"{intent}\"}}"
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_llm_ranks_then_falls_back(chat_server):
    ranker = LLMRanker(chat_server, model="tiny", timeout_s=2.0)
    # "risk" alone is too vague for the rules (a question); the model may pick the intent
    _Chat.mode = "ok"
    got = intents.interpret("risk", ranker=ranker)
    assert got.intent == "analyze_risk" and got.backend == "llm" and ranker.last_error is None
    sent = _Chat.seen[-1]
    assert sent["model"] == "tiny" and sent["messages"][-1]["content"].endswith("Request: risk")
    assert all(name in sent["messages"][0]["content"] for name in intents.INTENTS)

    for mode, error in (("error", "HTTPStatusError"), ("garbage", "JSONDecodeError"), ("unknown", "names no platform intent")):
        _Chat.mode = mode
        got = intents.interpret("risk", ranker=ranker)
        assert got.intent == "clarify" and got.backend == "rules", mode
        assert error in ranker.last_error, (mode, ranker.last_error)
        # a clear request keeps the deterministic answer, parameters and all
        got = intents.interpret("reduce my tech exposure to 15%", ranker=ranker)
        assert got.intent == "reduce_exposure" and got.parameters["target_exposure"] == 0.15 and got.backend == "rules"

    dead = LLMRanker("http://127.0.0.1:9/v1", timeout_s=0.5)
    got = intents.interpret("show the leaderboard", ranker=dead)
    assert got.intent == "show_leaderboard" and got.backend == "rules" and "ConnectError" in dead.last_error
