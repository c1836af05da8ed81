"""Lab (Lab spec "Models API", "BTB Pipeline API", "Admin API"): packs, models, matrices,
training, backtests. Lab answers are bare JSON objects (no envelope), as the Lab spec shows."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import IsoDate, Number, Timestamp

# -- packs -----------------------------------------------------------------------------------


class Pack(BaseModel):
    pack_id: str
    name: str
    description: str | None = None
    instrument: str
    cadence: str
    model_cadence: str | None = None
    horizon: str | None = None
    session: dict[str, Any] | None = None
    label: dict[str, Any] | None = None
    default_features: list[str] = Field(default_factory=list)
    trainer: dict[str, Any] | None = None
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per risk profile: costs and gate")
    sweep: dict[str, Any] | None = Field(None, description="the default sweep grid")
    ranking: dict[str, Any] | None = None
    default_ticker: str | None = None
    default_template_id: str | None = None
    templates: list[str] = Field(default_factory=list)


class PackList(BaseModel):
    items: list[Pack]
    total: int


class Template(BaseModel):
    template_id: str
    pack_id: str
    name: str
    description: str | None = None
    ticker: str | None = None
    cadence: str | None = None
    instrument: str | None = None
    horizon: str | None = None
    label: dict[str, Any] | None = None
    indicators: list[str] = Field(default_factory=list)
    risk_profile: str | None = None
    trainer: dict[str, Any] | None = None
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_id_example: str | None = None


class TemplateList(BaseModel):
    pack_id: str
    items: list[Template]
    total: int


# -- models ----------------------------------------------------------------------------------


class CreateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(..., min_length=1, max_length=64, examples=["swingsigma_default"])
    name: str | None = Field(None, max_length=160)
    risk_profile: str | None = Field(None, description="Conservative, Balanced or Aggressive (default: the template's)")
    config: dict[str, Any] | None = Field(None, description="overrides of the template, e.g. {'ticker': 'MSFT'}")


class PatchModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=160)
    risk_profile: str | None = None


class ModelCreated(BaseModel):
    model_id: str = Field(description="derived from the config, e.g. AAPL_equity_5d_daily")
    pack_id: str
    created_at: Timestamp
    status: str
    risk_profile: str | None = None
    config: dict[str, Any]


class ModelLineageSummary(BaseModel):
    matrix_sha: str | None = None
    config_sha: str | None = None
    risk_profile: str | None = None


class ModelSummary(BaseModel):
    model_id: str
    pack_id: str
    name: str | None = None
    updated_at: Timestamp | None = None
    sharpe: Number = None
    cum_ret: Number = None
    lineage: ModelLineageSummary | dict[str, Any] | None = None


class ModelList(BaseModel):
    items: list[ModelSummary]
    total: int
    limit: int
    offset: int


class ModelDetail(BaseModel):
    model_id: str
    pack_id: str
    template_id: str | None = None
    name: str | None = None
    risk_profile: str | None = None
    config: dict[str, Any]
    metrics: dict[str, Any] | None = Field(None, description="the latest backtest's metrics")
    lineage: dict[str, Any] | None = Field(None, description="code, matrix, config and weights hashes; creator")
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class ModelUpdated(ModelDetail):
    status: str = Field(description="updated")


class ModelDeleted(BaseModel):
    model_id: str
    user: str
    status: str = Field(description="deleted")
    deleted_rows: dict[str, int] = Field(default_factory=dict)
    deleted_artifacts: list[str] = Field(default_factory=list)
    kept_shared_artifacts: list[str] = Field(default_factory=list)


# -- pipeline --------------------------------------------------------------------------------


class BuildMatrix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80)
    start_date: IsoDate
    end_date: IsoDate
    features: list[str] | None = Field(None, max_length=100, description="default: the model's indicators")


class Matrix(BaseModel):
    matrix_sha: str
    rows: int
    columns: int
    size_mb: Number = None
    status: str
    path: str | None = None
    content_sha: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    features: list[str] = Field(default_factory=list)
    created: bool = Field(description="false: an identical matrix already existed")


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80)
    matrix_sha: str | None = Field(None, min_length=8, max_length=64, description="default: the model's latest matrix")
    allowed_hours: list[Annotated[int, Field(strict=True)]] | None = None
    config: dict[str, Any] | None = Field(
        None, description="the built-in trainer's overrides (learning_rate, epochs, ...), or your own model: "
                          "{estimator: a dotted class name under the model_modules allow-list, params: {...}, "
                          "standardize: true, holdout_fraction: 0.2} (docs/lab.md \"Your own models\")",
        json_schema_extra={"example": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
                                       "params": {"max_iter": 200, "learning_rate": 0.05}}})


class TrainAccepted(BaseModel):
    job_id: str
    training_id: str
    model_id: str
    status: str
    estimated_time: int = Field(description="seconds")
    queue_position: int


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80,
                          description="the model: its ticker, pack (cadence, gate) and risk profile (costs); "
                                      "its walk-forward scores are traded unless strategy or signal is given")
    config: dict[str, Any] | None = None
    strategy: dict[str, Any] | None = Field(
        None, description="a built-in indicator strategy instead of the model's scores: {name: zscore | ma_cross "
                          "| rsi | bollinger | donchian, params: {...}}; every strategy also takes params.max_hold, a holding "
                          "limit in bars (0 = none) (docs/lab.md)",
        json_schema_extra={"example": {"name": "zscore", "params": {"window": 20, "entry": 2.0, "exit": 0.5}}})
    signal: dict[str, Any] | None = Field(
        None, description="your own signal on the model's ticker instead of its scores: {dates, scores} (scores "
                          "in [0, 1], traded with config.value/exit_value) or {dates, entries, exits[, short_entries, "
                          "short_exits]} (booleans), or a file {csv: text} / {parquet_base64: ...} with a date column "
                          "and score or entry/exit columns; every date must be a bar of the model's matrix",
        json_schema_extra={"example": {"dates": ["2024-01-02", "2024-01-03"], "entries": [True, False],
                                       "exits": [False, True]}})
    matrix_sha: str | None = Field(None, min_length=8, max_length=64)
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    risk_profile: str | None = None


class BacktestAccepted(BaseModel):
    backtest_id: str
    model_id: str
    job_id: str
    status: str = Field(description="running or queued")
    queue_position: int
    metrics: dict[str, Any] | None = None
    estimated_completion: Timestamp | None = None


class Backtest(BaseModel):
    backtest_id: str
    model_id: str
    status: str
    risk_profile: str | None = None
    matrix_sha: str | None = None
    config: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    folds: list[dict[str, Any]] | dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    error: str | None = None
    created_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    estimated_completion: Timestamp | None = None
    export_url: str | None = None
    series_url: str | None = None
