"""Report documents and charts without a server: a PDF made by reportlab read back with
poppler (text, page count, embedded 150 dpi chart images), the HTML self-contained, charts'
numbers against independent references (pandas resampling, numpy percentiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from compute import series
from services.reports import charts, document as d
from tests.serve_app.report_checks import money_after, non_blank, pdf_images, pdf_pages, pdf_text, render_pages


def _returns(n=800, seed=3):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2019-01-02", periods=n, tz="UTC")
    return pd.Series(rng.normal(0.0004, 0.01, n), index=idx)


def test_drawdown_and_monthly_returns_against_pandas():
    r = _returns()
    equity = 100_000 * (1 + r).cumprod()
    dd = series.drawdown(equity.to_numpy())
    assert dd.max() == 0.0 and dd.min() == pytest.approx((equity / equity.cummax() - 1).min(), abs=1e-15)
    table = series.monthly_returns(r)
    ny = r.copy()
    ny.index = ny.index.tz_convert("America/New_York").tz_localize(None)
    ref = (1 + ny).resample("ME").prod() - 1
    for stamp, value in ref.items():
        assert table.loc[stamp.year, stamp.month] == pytest.approx(value, abs=1e-14)
    rs = series.rolling_sharpe(r.to_numpy(), 63)
    window = r.to_numpy()[100 - 62:101]
    assert rs.iloc[100] == pytest.approx(window.mean() / window.std(ddof=1) * np.sqrt(252), rel=1e-10)


def test_pdf_and_html_of_a_document(tmp_path):
    r = _returns()
    equity = 100_000 * (1 + r).cumprod()
    doc = d.Document("Test report", "unit test")
    doc.add(d.Heading("Figures"), d.KeyValues([("Final equity", d.money(equity.iloc[-1])), ("Sharpe", d.number(1.23456, 4))]),
            d.Table(["a", "b"], [["x", d.money(-1234.5)], ["y", d.percent(0.01234)]], "A table"),
            d.Chart(charts.equity_underwater(r.index, equity, r.to_numpy()), "equity"),
            d.Chart(charts.monthly_heatmap(r.index, r.to_numpy()), "monthly"),
            d.Chart(charts.return_distribution(r.to_numpy()), "distribution"))
    pdf, pages = d.render(doc, "pdf")
    text = pdf_text(pdf, tmp_path)
    assert money_after(text, "Final equity") == pytest.approx(round(equity.iloc[-1], 2), abs=0.001)
    assert "$-1,234.50" in text and "1.23%" in text and "Sharpe" in text
    assert pdf_pages(pdf, tmp_path) == pages >= 2
    images = pdf_images(pdf, tmp_path)
    assert len(images) == 3 and all(non_blank(i) for i in images)
    assert all(non_blank(Image.open(p)) for p in render_pages(pdf, tmp_path))
    html, none = d.render(doc, "html")
    assert none is None and html.count(b"data:image/png;base64,") == 3 and b"$-1,234.50" in html


def test_var_line_matches_numpy_percentile():
    r = _returns().to_numpy()
    fig = charts.return_distribution(r, 0.95)
    svg = charts.render(fig, "svg").decode()
    var = np.percentile(r, 5)  # linear interpolation, as the historical VaR
    assert f"VaR 95%: {100 * var:.2f}%" in svg
    png = charts.render(charts.grid_heatmap(pd.DataFrame({"a": [1, 1, 2, 2], "b": [1, 2, 1, 2], "m": [0.1, 0.2, 0.3, 0.4]}),
                                            "a", "b", "m"), "png")
    assert png.startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        charts.render(fig, "gif")
