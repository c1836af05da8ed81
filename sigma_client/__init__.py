"""Python client for the Sigma API (Lab and jobs), usable from scripts and notebooks.

>>> from sigma_client import Client
>>> c = Client("http://127.0.0.1:8001")
>>> c.login("demo_individual", "...")
>>> model = c.create_model("swingsigma_default", config={"ticker": "AAPL"})
>>> m = c.build_matrix(model["model_id"], "2019-01-01", "2023-12-31")
>>> sweep = c.sweep(model["model_id"], {"thresholds": [0.5, 0.6, 0.7, 0.8],
...                                    "allowed_hours": [[9, 10, 11], [12, 13, 14]], "top_pct": [5, 10, 15]},
...                 tag="sweep_2024Q1")
>>> done = c.wait_sweep(sweep.sweep_id, progress=True)      # a tqdm bar in a terminal or notebook
>>> board = c.leaderboard(tag="sweep_2024Q1", pass_gate=True, limit=10)
>>> board["items"][0]["metrics"]["sharpe"]   # (page.items is the dict method)

Every failure raises ``SigmaAPIError`` with the API's ``code``, ``message``, ``field`` and
``request_id`` (quote it when reporting a problem). Responses are ``ApiObject`` dicts whose
keys are also attributes (``sweep.status``); lists come as ``Page`` (``items``, ``total``).
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Optional, Sequence

import httpx

__all__ = ["ApiObject", "Client", "Page", "SigmaAPIError"]

FINAL_STATES = ("completed", "failed", "cancelled")


class SigmaAPIError(Exception):
    """An API error: HTTP ``status``, ``code`` (INVALID_PARAMETER, NOT_FOUND, ...), ``message``,
    ``field`` (the offending request field, when known) and ``request_id``."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None,
                 request_id: Optional[str] = None, body: Any = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else "")
                         + (f" [request {request_id}]" if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        self.body = body


class ApiObject(dict):
    """A response object: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Page(ApiObject):
    """A list response: ``items`` (ApiObjects), ``total`` and the paging echo."""

    def __iter__(self):
        return iter(self["items"])

    def __len__(self) -> int:
        return len(self["items"])

    def to_frame(self):
        """The items as a pandas DataFrame, metrics and config flattened into columns."""
        import pandas as pd

        return pd.json_normalize([dict(i) for i in self["items"]])


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        obj = Page if isinstance(value.get("items"), list) else ApiObject
        return obj({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _clean(params: Mapping[str, Any]) -> dict:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


class Client:
    """``Client(base_url, token=None)``: ``base_url`` is the server (``http://host:8001``) or
    the API root (``.../api/v1``); ``token`` a bearer token (or call ``login``)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8001", token: Optional[str] = None, *,
                 timeout: float = 60.0, http: Optional[httpx.Client] = None):
        base = base_url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.base_url = base
        self.token = token
        self._http = http or httpx.Client(timeout=timeout)

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, *, json: Any = None, params: Optional[Mapping] = None,
                raw: bool = False) -> Any:
        """Call ``/api/v1{path}``; returns the decoded body (the ``data`` of enveloped
        responses) or raises ``SigmaAPIError``."""
        resp = self._http.request(method, self.base_url + path, json=json, params=_clean(params or {}),
                                  headers=self._headers())
        if resp.status_code >= 400:
            raise self._error(resp)
        if raw:
            return resp.text
        body = resp.json()
        if isinstance(body, dict) and body.get("success") is True and "data" in body:
            body = body["data"]
        return _wrap(body)

    @staticmethod
    def _error(resp: httpx.Response) -> SigmaAPIError:
        try:
            body = resp.json()
        except ValueError:
            return SigmaAPIError(resp.status_code, "HTTP_ERROR", resp.text[:500], request_id=resp.headers.get("x-request-id"))
        err = body.get("error") or {}
        details = err.get("details") or {}
        field = details.get("field")
        if field is None and body.get("errors"):
            field = body["errors"][0].get("field")
        return SigmaAPIError(resp.status_code, err.get("code", "HTTP_ERROR"), err.get("message", resp.reason_phrase),
                             field=field, request_id=body.get("request_id") or resp.headers.get("x-request-id"), body=body)

    # -- auth --------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> ApiObject:
        """Exchange credentials for a token (kept on the client for later calls)."""
        out = self.request("POST", "/auth/token", json={"username": username, "password": password})
        self.token = out["access_token"]
        return out

    # -- models, matrices, training, backtests ---------------------------------------------------
    def packs(self) -> Page:
        return self.request("GET", "/packs")

    def models(self, *, model_id: Optional[str] = None, pack_id: Optional[str] = None, limit: int = 100,
               offset: int = 0) -> Page:
        return self.request("GET", "/models", params={"model_id": model_id, "pack_id": pack_id, "limit": limit,
                                                       "offset": offset})

    def create_model(self, template_id: str, *, name: Optional[str] = None, risk_profile: Optional[str] = None,
                     config: Optional[Mapping[str, Any]] = None) -> ApiObject:
        body = {"template_id": template_id, "name": name, "risk_profile": risk_profile, "config": dict(config or {})}
        return self.request("POST", "/models", json={k: v for k, v in body.items() if v is not None})

    def model(self, model_id: str) -> ApiObject:
        return self.request("GET", f"/models/{model_id}")

    def build_matrix(self, model_id: str, start_date: str, end_date: str,
                     features: Optional[Sequence[str]] = None) -> ApiObject:
        body = {"model_id": model_id, "start_date": str(start_date), "end_date": str(end_date)}
        if features is not None:
            body["features"] = list(features)
        return self.request("POST", "/build_matrix", json=body)

    def train(self, model_id: str, *, matrix_sha: Optional[str] = None, allowed_hours: Optional[Sequence[int]] = None,
              config: Optional[Mapping[str, Any]] = None, wait: bool = False, timeout: float = 600) -> ApiObject:
        """Start a training job (``wait=True`` blocks until it ends and returns the job)."""
        body = {"model_id": model_id, "matrix_sha": matrix_sha, "allowed_hours": allowed_hours, "config": config}
        out = self.request("POST", "/train", json={k: v for k, v in body.items() if v is not None})
        return self.wait_job(out["job_id"], timeout=timeout) if wait else out

    def train_estimator(self, model_id: str, estimator: str, params: Optional[Mapping[str, Any]] = None, *,
                        standardize: Optional[bool] = None, holdout_fraction: Optional[float] = None,
                        matrix_sha: Optional[str] = None, allowed_hours: Optional[Sequence[int]] = None,
                        wait: bool = False, timeout: float = 600) -> ApiObject:
        """Train your own scikit-learn-compatible model by dotted name, e.g.
        ``train_estimator(mid, "sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 200})``
        (the module must be in the server's ``model_modules`` allow-list)."""
        config: dict[str, Any] = {"estimator": estimator, "params": dict(params or {})}
        if standardize is not None:
            config["standardize"] = standardize
        if holdout_fraction is not None:
            config["holdout_fraction"] = holdout_fraction
        return self.train(model_id, matrix_sha=matrix_sha, allowed_hours=allowed_hours, config=config, wait=wait,
                          timeout=timeout)

    def backtest(self, model_id: str, config: Optional[Mapping[str, Any]] = None, *, matrix_sha: Optional[str] = None,
                 start_date: Optional[str] = None, end_date: Optional[str] = None,
                 risk_profile: Optional[str] = None, wait: bool = False, timeout: float = 600) -> ApiObject:
        """Start a walk-forward backtest; ``wait=True`` returns the finished backtest."""
        body = {"model_id": model_id, "config": config, "matrix_sha": matrix_sha, "start_date": start_date,
                "end_date": end_date, "risk_profile": risk_profile}
        out = self.request("POST", "/backtest", json={k: v for k, v in body.items() if v is not None})
        if not wait:
            return out
        self.wait_job(out["job_id"], timeout=timeout)
        return self.get_backtest(out["backtest_id"])

    def get_backtest(self, backtest_id: str) -> ApiObject:
        return self.request("GET", f"/backtest/{backtest_id}")

    def export_backtest(self, backtest_id: str) -> str:
        """The backtest's fills as CSV text."""
        return self.request("GET", f"/export/backtest/{backtest_id}", params={"format": "csv"}, raw=True)

    # -- series, charts and reports (pandas objects, image and file bytes) --------------------
    def _bytes(self, path: str, params: Optional[Mapping] = None) -> bytes:
        resp = self._http.request("GET", self.base_url + path, params=_clean(params or {}), headers=self._headers())
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp.content

    def backtest_series(self, backtest_id: str):
        """``(bars, trades)`` DataFrames of a backtest (Parquet): equity, returns, drawdown,
        position, benchmark_return and fold per bar, indexed by UTC timestamp; the fills."""
        import io

        import pandas as pd

        bars = pd.read_parquet(io.BytesIO(self._bytes(f"/backtest/{backtest_id}/series", {"format": "parquet"})))
        trades = pd.read_parquet(io.BytesIO(self._bytes(f"/backtest/{backtest_id}/series",
                                                        {"format": "parquet", "table": "trades"})))
        return bars.set_index("timestamp"), trades

    def sweep_grid(self, sweep_id: str):
        """A sweep's grid as a DataFrame: configuration axes x metrics, one row per configuration."""
        import io

        import pandas as pd

        return pd.read_parquet(io.BytesIO(self._bytes(f"/backtest_sweep/{sweep_id}/grid", {"format": "parquet"})))

    def portfolio_timeline(self, start: Optional[str] = None, end: Optional[str] = None):
        """The portfolio timeline's daily points as a DataFrame indexed by date (sync ranges)."""
        import pandas as pd

        data = self.request("GET", "/portfolio/timeline", params={"start": start, "end": end, "mode": "sync"})
        frame = pd.json_normalize([dict(p) for p in data["points"]])
        return frame.set_index("date") if "date" in frame.columns else frame

    def chart(self, path: str, **params) -> bytes:
        """A chart's PNG or SVG bytes, e.g. ``chart(f"/backtest/{bid}/chart/equity.png")``."""
        return self._bytes(path, params)

    def generate_report(self, type: str, *, format: str = "pdf", sections: Optional[Sequence[str]] = None,
                        period: str = "daily", wait: bool = True, timeout: float = 600, **ids) -> ApiObject:
        """Start a report job (``backtest_id=``/``sweep_id=`` for those types); ``wait=True``
        returns the finished report (its ``download_url``, ``sha256``)."""
        body = {"type": type, "format": format, "sections": list(sections) if sections else None, "period": period, **ids}
        out = self.request("POST", "/reports/generate", json={k: v for k, v in body.items() if v is not None})
        if not wait:
            return out
        self.wait_job(out["job_id"], timeout=timeout)
        return self.request("GET", f"/reports/{out['report_id']}")

    def download_report(self, report_id: str) -> bytes:
        return self._bytes(f"/reports/{report_id}/download")

    def schedule_report(self, template_id: str, email: str, **schedule) -> ApiObject:
        """E-mail a template's report on a schedule (frequency, day_of_week, time, timezone, cron)."""
        return self.request("POST", "/reports/schedule", json={"template_id": template_id, "email": email, **schedule})

    # -- sweeps --------------------------------------------------------------------------------
    def sweep(self, model_id: str, sweep: Optional[Mapping[str, Any]] = None, *, risk_profile: Optional[str] = None,
              tag: Optional[str] = None, matrix_sha: Optional[str] = None, start_date: Optional[str] = None,
              end_date: Optional[str] = None, chunk_size: Optional[int] = None) -> ApiObject:
        """Start a sweep (``POST /backtest_sweep``): ``sweep`` holds the grid, e.g.
        ``{"thresholds": [...], "allowed_hours": [[...], ...], "top_pct": [5, 10], "fees_bps": [1, 5]}``;
        None runs the model's pack's default grid."""
        body = {"model_id": model_id, "sweep": None if sweep is None else dict(sweep), "risk_profile": risk_profile, "tag": tag,
                "matrix_sha": matrix_sha, "start_date": start_date, "end_date": end_date, "chunk_size": chunk_size}
        return self.request("POST", "/backtest_sweep", json={k: v for k, v in body.items() if v is not None})

    def get_sweep(self, sweep_id: str) -> ApiObject:
        return self.request("GET", f"/backtest_sweep/{sweep_id}")

    def sweeps(self, *, limit: int = 50, offset: int = 0) -> Page:
        return self.request("GET", "/backtest_sweep", params={"limit": limit, "offset": offset})

    def cancel_sweep(self, sweep_id: str) -> ApiObject:
        return self.request("POST", f"/backtest_sweep/{sweep_id}/cancel")

    def resume_sweep(self, sweep_id: str) -> ApiObject:
        return self.request("POST", f"/backtest_sweep/{sweep_id}/resume")

    def wait_sweep(self, sweep_id: str, *, progress: bool = True, timeout: float = 3600, poll: float = 0.25) -> ApiObject:
        """Poll until the sweep ends; with ``progress`` a tqdm bar (configurations done, best
        so far, ETA) -- the notebook widget when running in Jupyter."""
        bar = None
        deadline = time.monotonic() + timeout
        try:
            while True:
                state = self.get_sweep(sweep_id)
                if progress:
                    if bar is None:
                        try:
                            from tqdm.auto import tqdm
                        except ImportError:  # tqdm is a dependency; stay usable without it
                            tqdm = None
                        bar = tqdm(total=state["total_configs"], desc=state.get("tag") or sweep_id, unit="cfg") if tqdm else False
                    if bar:
                        bar.n = state["done_configs"]
                        best = (state.get("best") or {}).get("metrics") or {}
                        bar.set_postfix(status=state["status"], best_sharpe=best.get("sharpe"), refresh=False)
                        bar.refresh()
                if state["status"] in FINAL_STATES:
                    return state
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sweep {sweep_id} still {state['status']} after {timeout} s")
                time.sleep(poll)
        finally:
            if bar:
                bar.close()

    # -- leaderboard -------------------------------------------------------------------------------
    def leaderboard(self, *, model_id: Optional[str] = None, pack_id: Optional[str] = None, tag: Optional[str] = None,
                    risk_profile: Optional[str] = None, pass_gate: Optional[bool] = None, sweep_id: Optional[str] = None,
                    sort_by: Optional[str] = None, order: str = "desc", limit: int = 100, offset: int = 0) -> Page:
        return self.request("GET", "/leaderboard", params={
            "model_id": model_id, "pack_id": pack_id, "tag": tag, "risk_profile": risk_profile, "pass_gate": pass_gate,
            "sweep_id": sweep_id, "sort_by": sort_by, "order": order, "limit": limit, "offset": offset})

    def export_leaderboard(self, *, tag: Optional[str] = None, **filters) -> str:
        """The leaderboard as CSV text (``pandas.read_csv(io.StringIO(text))`` for a frame)."""
        return self.request("GET", "/export/leaderboard", params={"tag": tag, "format": "csv", **filters}, raw=True)

    # -- jobs ----------------------------------------------------------------------------------
    def job(self, job_id: str) -> ApiObject:
        return self.request("GET", f"/jobs/{job_id}")

    def job_result(self, job_id: str) -> ApiObject:
        return self.request("GET", f"/jobs/{job_id}/result")

    def cancel_job(self, job_id: str) -> ApiObject:
        return self.request("POST", f"/jobs/{job_id}/cancel")

    def wait_job(self, job_id: str, *, timeout: float = 600, poll: float = 0.25) -> ApiObject:
        """Poll a job until it is completed, failed or cancelled; returns its status."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job(job_id)
            if state["status"] in FINAL_STATES:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state['status']} after {timeout} s")
            time.sleep(poll)

    # -- live signals --------------------------------------------------------------------------
    def generate_signal(self, model_id: str, *, as_of: Optional[str] = None) -> ApiObject:
        """Score the model's newest bar (on or before ``as_of``): ``{"signal", "created", "decision"}``;
        ``signal`` is None when the score does not clear the thresholds (``decision.reason``)."""
        body = {"model_id": model_id, "as_of": as_of}
        return self.request("POST", "/signals/generate", json={k: v for k, v in body.items() if v is not None})

    def signals(self, *, model_id: Optional[str] = None, status: Optional[str] = None, start: Optional[str] = None,
                end: Optional[str] = None, limit: int = 20, offset: int = 0) -> Page:
        return self.request("GET", "/signals", params={"model_id": model_id, "status": status, "start": start,
                                                       "end": end, "limit": limit, "offset": offset})

    def signal(self, signal_id: str) -> ApiObject:
        return self.request("GET", f"/signals/{signal_id}")

    def cancel_signal(self, signal_id: str) -> ApiObject:
        return self.request("POST", f"/signals/{signal_id}/cancel")

    def subscribe_signals(self, model_id: str, *, portfolio_id: Optional[str] = None) -> ApiObject:
        """Have the scheduler score the model at each bar close of its cadence (``signal.generated``
        fires on each new signal); sized from ``portfolio_id``'s value (default: your default portfolio)."""
        body = {"model_id": model_id, "portfolio_id": portfolio_id}
        return self.request("POST", "/signals/subscriptions", json={k: v for k, v in body.items() if v is not None})

    def signal_subscriptions(self) -> Page:
        return self.request("GET", "/signals/subscriptions")

    def signal_subscription(self, subscription_id: str) -> ApiObject:
        return self.request("GET", f"/signals/subscriptions/{subscription_id}")

    def unsubscribe_signals(self, subscription_id: str) -> ApiObject:
        return self.request("DELETE", f"/signals/subscriptions/{subscription_id}")

    # -- webhooks ------------------------------------------------------------------------------
    def create_webhook(self, url: str, events: Iterable[str], secret: str) -> ApiObject:
        return self.request("POST", "/webhooks", json={"url": url, "events": list(events), "secret": secret})

    def webhooks(self) -> Page:
        return self.request("GET", "/webhooks")

    def delete_webhook(self, webhook_id: str) -> ApiObject:
        return self.request("DELETE", f"/webhooks/{webhook_id}")

    def webhook_deliveries(self, webhook_id: str, *, status: Optional[str] = None, limit: int = 50,
                           offset: int = 0) -> Page:
        return self.request("GET", f"/webhooks/{webhook_id}/deliveries",
                            params={"status": status, "limit": limit, "offset": offset})

    # -- ProForma: modeling sessions, trades, hedges, exports ------------------------------------
    def create_session(self, name: str, base_portfolio: str = "current") -> ApiObject:
        """Open a modeling session on a copy of the book (``"current"`` or a portfolio id)."""
        return self.request("POST", "/modeling/sessions", json={"name": name, "base_portfolio": base_portfolio})

    def sessions(self) -> ApiObject:
        return self.request("GET", "/modeling/sessions")

    def session(self, session_id: str) -> ApiObject:
        """Original and modified book, changes and impact."""
        return self.request("GET", f"/modeling/sessions/{session_id}")

    def modify_session(self, session_id: str, modifications: Sequence[Mapping[str, Any]]) -> ApiObject:
        """Apply modifications (all or nothing): ``{position_id, new_quantity}``,
        ``{position_id, action: "close"}`` or ``{position_id: "new", ticker, quantity, ...}``."""
        return self.request("PUT", f"/modeling/sessions/{session_id}/positions",
                            json={"modifications": [dict(m) for m in modifications]})

    def reset_session(self, session_id: str) -> ApiObject:
        return self.request("POST", f"/modeling/sessions/{session_id}/reset")

    def delete_session(self, session_id: str) -> None:
        resp = self._http.request("DELETE", f"{self.base_url}/modeling/sessions/{session_id}", headers=self._headers())
        if resp.status_code >= 400:
            raise self._error(resp)

    def export_session(self, session_id: str, format: str = "csv") -> ApiObject:
        """The session's trade list (csv, json or fix); ``download(out.export_url)`` fetches the file."""
        return self.request("GET", f"/modeling/sessions/{session_id}/export", params={"format": format})

    def trade_impact(self, symbol: str, action: str, quantity: float, *, include_stress_scenarios: bool = True) -> ApiObject:
        """The impact of one trade on the current book (nothing is written)."""
        return self.request("POST", "/proforma/trade", json={"symbol": symbol, "action": action, "quantity": quantity,
                                                               "include_stress_scenarios": include_stress_scenarios})

    def hedge(self, risk_to_hedge: str, budget: float, *, max_positions: int = 3,
              allowed_instruments: Sequence[str] = ("options", "etfs"), top: int = 3, wait: bool = True,
              timeout: float = 600) -> ApiObject:
        """Search hedges (a job); with ``wait`` the job's result (``hedges`` ranked), else the job."""
        out = self.request("POST", "/proforma/hedge", json={
            "risk_to_hedge": risk_to_hedge, "budget": budget, "top": top,
            "constraints": {"max_positions": max_positions, "allowed_instruments": list(allowed_instruments)}})
        if not wait:
            return out
        state = self.wait_job(out["job_id"], timeout=timeout)
        if state["status"] != "completed":
            raise SigmaAPIError(500, "JOB_" + state["status"].upper(), str(state.get("error")))
        result = self.job_result(out["job_id"])["result"]
        result["job_id"] = out["job_id"]
        return result

    def apply_hedge(self, session_id: str, job_id: str, rank: int = 1) -> ApiObject:
        return self.request("POST", f"/modeling/sessions/{session_id}/apply-hedge", json={"job_id": job_id, "rank": rank})

    def export_trades(self, trades: Sequence[Mapping[str, Any]], format: str = "csv", broker: str = "generic") -> ApiObject:
        return self.request("POST", "/export/trades", json={"trades": [dict(t) for t in trades], "format": format,
                                                            "broker": broker})

    def export_portfolio(self, format: str = "json", include: Optional[Sequence[str]] = None) -> Any:
        """JSON sections (dict), CSV text, or for ``excel`` the .xlsx bytes (after its job)."""
        params = {"format": format, "include": ",".join(include) if include else None}
        if format == "csv":
            return self.request("GET", "/export/portfolio", params=params, raw=True)
        out = self.request("GET", "/export/portfolio", params=params)
        if format != "excel":
            return out
        state = self.wait_job(out["job_id"])
        if state["status"] != "completed":
            raise SigmaAPIError(500, "JOB_" + state["status"].upper(), str(state.get("error")))
        return self.download(self.job_result(out["job_id"])["result"]["export_url"])

    def download(self, export_url: str) -> bytes:
        """The bytes of a stored export (``export_url`` as the API gave it)."""
        path = export_url.split("/api/v1", 1)[-1]
        resp = self._http.get(self.base_url + path, headers=self._headers())
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp.content
