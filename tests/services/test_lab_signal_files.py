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
