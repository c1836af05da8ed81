"""The files provider reads a bucket: bars on moto's S3 server, validated like a folder."""

from __future__ import annotations

import pytest

from compute.marketdata import MarketDataError, make_provider
from tests.conftest import s3_client


@pytest.fixture(scope="module")
def bucket(moto_endpoint):
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket="bars")
    good = "timestamp,open,high,low,close,volume\n2024-07-01,100,102,99,101,1000\n2024-07-02,101,103,100,102,1100\n2024-07-03,102,104,101,103,900\n"
    bad = "timestamp,open,high,low,close,volume\n2024-07-01,100,102,99,101,1000\n2024-07-02,101,100.5,100,102,1100\n"
    s3.put_object(Bucket="bars", Key="daily/GOOD.csv", Body=good.encode())
    s3.put_object(Bucket="bars", Key="daily/BAD.csv", Body=bad.encode())
    return moto_endpoint


def _provider(endpoint: str):
    opts = {"endpoint_url": endpoint, "key": "x", "secret": "x"}
    return make_provider("files:s3://bars", storage_options=opts)


def test_daily_bars_from_a_bucket(bucket):
    bars = _provider(bucket).daily_bars("GOOD", "2024-07-01", "2024-07-03")
    assert list(bars["close"]) == [101.0, 102.0, 103.0]
    assert str(bars.index.tz) == "UTC"


def test_invalid_bucket_file_names_file_row_and_rule(bucket):
    with pytest.raises(MarketDataError, match=r"s3://bars/daily/BAD.csv: row 2: column high: high must be >= max\(open, close\)"):
        _provider(bucket).daily_bars("BAD", "2024-07-01", "2024-07-03")
