"""Signals uploaded as CSV or Parquet become the JSON form; bad rows are named (issue 16)."""

import base64
import io

import pandas as pd
import pytest

from services.lab.common import LabInputError
from services.lab.sources import validate_signal


def test_csv_and_parquet_signals():
    csv = "Date,entry,exit\n2024-07-01,1,0\n2024-07-02,0,0\n2024-07-03,false,true\n"
    got = validate_signal({"csv": csv})
    assert got == {"dates": ["2024-07-01", "2024-07-02", "2024-07-03"], "entries": [True, False, False],
                   "exits": [False, False, True]}
    frame = pd.DataFrame({"score": [0.2, None, 0.9]}, index=pd.DatetimeIndex(["2024-07-01", "2024-07-02", "2024-07-03"],
                                                                           name="date"))
    buf = io.BytesIO()
    frame.to_parquet(buf)
    got = validate_signal({"parquet_base64": base64.b64encode(buf.getvalue()).decode()})
    assert got["dates"] == ["2024-07-01", "2024-07-02", "2024-07-03"] and got["scores"] == [0.2, None, 0.9]


@pytest.mark.parametrize("body, field, reason", [
    ({"csv": "date,score\n2024-07-01,0.5\n2024-07-02,high\n"}, "signal.csv", "row 2: column score: 'high' is not a number"),
    ({"csv": "date,score\n2024-07-01,1.5\n"}, "signal.scores[0]", "must be a number in [0, 1]"),
    ({"csv": "day,score\n2024-07-01,0.5\n"}, "signal.csv", "missing column(s) a date column"),
    ({"csv": "date,entry,exit\n2024-07-01,maybe,0\n"}, "signal.csv", "row 1: column entry: 'maybe' is not true/false"),
    ({"parquet_base64": "bm90IHBhcnF1ZXQ="}, "signal.parquet_base64", "unreadable file"),
])
def test_bad_signal_files_name_field_row_and_rule(body, field, reason):
    with pytest.raises(LabInputError) as err:
        validate_signal(body)
    assert err.value.field == field and reason in err.value.reason


def test_config_borrow_bps_reaches_the_engine():
    # flat prices, a short from the second bar: 2.52 %/year over 252 bars is 1 bp of the 100,000
    # short notional (costs 0) = 10.00 a bar (issue 16: the borrow-fee setting of POST /backtest)
    from compute import packs
    from services.lab.backtests import backtest_config
    from services.lab.sources import run_source_backtest, validate_signal

    days = pd.date_range("2024-07-01", periods=6, freq="B")
    frame = pd.DataFrame({"timestamp": days.tz_localize("UTC") + pd.Timedelta(hours=13, minutes=30),
                          "session_date": days, "open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0,
                          "hour": 9})
    cfg = backtest_config("swingsigma", {"borrow_bps": 252, "value": 0.6})
    cfg["signal"] = validate_signal({"dates": [d.date().isoformat() for d in days], "scores": [0.1] * 6})
    result, _ = run_source_backtest(frame, cfg, packs.get_pack("swingsigma"), 0.0, 0.0, 252.0)
    assert result.equity.round(9).tolist() == [100_000.0 - 10.0 * k for k in range(6)]
    assert result.open_trade["borrow_fees"] == pytest.approx(50.0)
