"""Exposure aggregation against a hand-worked book and pandas groupby; spec 3.6 indicators."""

import numpy as np
import pandas as pd
import pytest

from compute.exposure import (
    COLUMNS,
    Grouping,
    TagMembership,
    aggregate_exposures,
    delta_adjusted_exposure,
    exposure_visuals,
    notional_exposure,
    visual_indicator,
)


def _hand_worked_book():
    # AAPL long 100 @ 200; TSLA short 50 @ 250; 2 SPY calls (delta 0.6, premium 5, spot 500);
    # 3 short QQQ puts (delta -0.4, premium 4, spot 400)
    market_value = np.concatenate(
        [notional_exposure([100, -50], [200.0, 250.0]), notional_exposure([2, -3], [5.0, 4.0], multiplier=100)]
    )
    delta = np.concatenate(
        [
            delta_adjusted_exposure([100, -50], [200.0, 250.0]),
            delta_adjusted_exposure([2, -3], [500.0, 400.0], delta=[0.6, -0.4], multiplier=100),
        ]
    )
    return market_value, delta


def test_hand_worked_book():
    market_value, delta = _hand_worked_book()
    np.testing.assert_allclose(market_value, [20_000.0, -12_500.0, 1_000.0, -1_200.0])
    np.testing.assert_allclose(delta, [20_000.0, -12_500.0, 60_000.0, 48_000.0])
    types = Grouping(codes=np.array([0, 1, 2, 3]), labels=["LONG", "SHORT", "LC", "SP"])
    sector = Grouping.from_values(["Tech", "Auto", None, None])
    tags = TagMembership.from_lists([["core", "tech"], ["hedge"], ["core"], []])
    report = aggregate_exposures(market_value, delta, {"type": types, "sector": sector}, tags)
    assert report.total["notional"] == pytest.approx(
        {"long": 21_000.0, "short": -13_700.0, "gross": 34_700.0, "net": 7_300.0}
    )
    assert report.total["delta"] == pytest.approx(
        {"long": 128_000.0, "short": -12_500.0, "gross": 140_500.0, "net": 115_500.0}
    )
    assert report.total["count"] == 4
    sp = report.group_dict("type")["SP"]
    assert sp["notional"] == pytest.approx({"long": 0.0, "short": -1_200.0, "gross": 1_200.0, "net": -1_200.0})
    assert sp["delta"] == pytest.approx({"long": 48_000.0, "short": 0.0, "gross": 48_000.0, "net": 48_000.0})
    assert list(report.groups["sector"].index) == ["Auto", "Tech"]
    assert report.groups["sector"].loc["Tech", "notional_net"] == 20_000.0
    assert report.groups["sector"]["count"].sum() == 2  # options have no sector here
    core = report.group_dict("tag")["core"]
    assert core["notional"]["net"] == pytest.approx(21_000.0)
    assert core["delta"]["gross"] == pytest.approx(80_000.0)
    assert core["count"] == 2
    assert report.group_dict("tag")["hedge"]["notional"]["short"] == -12_500.0
    assert list(report.groups["tag"].columns) == list(COLUMNS)


def _random_book(n, n_tags, seed):
    rng = np.random.default_rng(seed)
    market_value = rng.normal(0.0, 10_000.0, n)
    delta = market_value * rng.uniform(-1.5, 1.5, n)
    type_codes = rng.integers(0, 6, n)
    strategy_codes = rng.integers(-1, 12, n)  # -1: no strategy
    sector_codes = rng.integers(0, 11, n).astype(np.int32)
    tag_counts = rng.integers(0, 4, n)
    indptr = np.concatenate(([0], np.cumsum(tag_counts)))
    indices = rng.integers(0, n_tags, indptr[-1])
    return market_value, delta, type_codes, strategy_codes, sector_codes, indptr, indices


def _pandas_stats(frame, key):
    values = frame[["mv", "de"]]
    long_ = values.clip(lower=0).groupby(frame[key]).sum()
    short = values.clip(upper=0).groupby(frame[key]).sum()
    return pd.DataFrame(
        {
            "notional_long": long_["mv"], "notional_short": short["mv"],
            "notional_gross": long_["mv"] - short["mv"], "notional_net": long_["mv"] + short["mv"],
            "delta_long": long_["de"], "delta_short": short["de"],
            "delta_gross": long_["de"] - short["de"], "delta_net": long_["de"] + short["de"],
            "count": frame.groupby(key).size(),
        }
    )


def test_matches_pandas_groupby_on_random_book():
    n, n_tags = 200_000, 50
    mv, de, type_codes, strategy_codes, sector_codes, indptr, indices = _random_book(n, n_tags, seed=2)
    groupings = {
        "type": Grouping(type_codes, ["LONG", "SHORT", "LC", "LP", "SC", "SP"]),
        "strategy": Grouping(strategy_codes, [f"strategy{i}" for i in range(12)]),
        "sector": Grouping(sector_codes, [f"sector{i}" for i in range(11)]),
    }
    tag_labels = [f"tag{i:02d}" for i in range(n_tags)]
    report = aggregate_exposures(mv, de, groupings, TagMembership(indptr, indices, tag_labels))
    frame = pd.DataFrame({"mv": mv, "de": de, "type": type_codes, "strategy": strategy_codes, "sector": sector_codes})
    for name, grouping in groupings.items():
        expected = _pandas_stats(frame[frame[name] >= 0], name)
        expected.index = [grouping.labels[c] for c in expected.index]
        np.testing.assert_allclose(report.groups[name].loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-6)
    position_of_tag = np.repeat(np.arange(n), np.diff(indptr))
    exploded = pd.DataFrame({"mv": mv[position_of_tag], "de": de[position_of_tag], "tag": indices})
    expected = _pandas_stats(exploded, "tag")
    expected.index = [tag_labels[c] for c in expected.index]
    np.testing.assert_allclose(report.groups["tag"].loc[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-6)
    totals = _pandas_stats(frame.assign(all=0), "all").iloc[0]
    for measure in ("notional", "delta"):
        for stat in ("long", "short", "gross", "net"):
            # net cancels: compare on the scale of gross
            scale = totals[f"{measure}_gross"]
            assert report.total[measure][stat] == pytest.approx(totals[f"{measure}_{stat}"], abs=1e-12 * scale)


def test_nan_values_add_nothing_and_bad_codes_raise():
    report = aggregate_exposures([100.0, np.nan, -50.0], [100.0, 10.0, np.nan])
    assert report.total["notional"]["gross"] == 150.0
    assert report.total["delta"]["net"] == 110.0
    assert report.groups == {}
    with pytest.raises(ValueError, match="out of range"):
        aggregate_exposures([1.0, 2.0], [1.0, 2.0], {"type": Grouping(np.array([0, 5]), ["LONG", "SHORT"])})
    with pytest.raises(ValueError, match="expected 2 codes"):
        aggregate_exposures([1.0, 2.0], [1.0, 2.0], {"type": Grouping(np.array([0]), ["LONG"])})
    with pytest.raises(ValueError, match="out of range"):
        aggregate_exposures([1.0], [1.0], tags=TagMembership(np.array([0, 1]), np.array([3]), ["a"]))


def test_visual_indicators_reproduce_spec_overview_example():
    # spec 4.1: equity 1.2M; long 1.1M -> 92 %, short -567k -> 47 %, gross 1.667M -> 139 % warning
    # against the 150 % limit, net 533k -> 44 % success inside the 40-60 % target
    total = {"long": 1_100_000.0, "short": -567_000.0, "gross": 1_667_000.0, "net": 533_000.0}
    visuals = exposure_visuals(total, equity=1_200_000.0)
    assert {k: v["percentage"] for k, v in visuals.items()} == {"long": 92, "short": 47, "gross": 139, "net": 44}
    assert {k: v["status"] for k, v in visuals.items()} == {
        "long": "success", "short": "success", "gross": "warning", "net": "success"
    }
    assert visuals["gross"]["limit"] == 1.5
    assert visuals["net"]["target_range"] == [0.4, 0.6]
    assert visuals["net"]["display"] == "44%"
    assert visuals["net"]["color"] == "#4CAF50"


@pytest.mark.parametrize(
    "value, kwargs, status",
    [
        (0.45, {"target_range": (0.4, 0.6)}, "success"),
        (0.35, {"target_range": (0.4, 0.6)}, "warning"),
        (0.25, {"target_range": (0.4, 0.6)}, "danger"),
        (0.72, {"target_range": (0.4, 0.6)}, "danger"),
        (-0.45, {"target_range": (0.4, 0.6)}, "success"),
        (1.0, {"limit": 1.5}, "success"),
        (1.4, {"limit": 1.5}, "warning"),
        (1.6, {"limit": 1.5}, "danger"),
        (0.5, {"limit": 0.45, "target_range": (0.4, 0.6)}, "danger"),
        (0.3, {}, "info"),
    ],
)
def test_visual_indicator_statuses(value, kwargs, status):
    block = visual_indicator(value * 1_000.0, equity=1_000.0, **kwargs)
    assert block["status"] == status
    assert block["value"] == pytest.approx(value)
    assert set(block) == {"value", "display", "percentage", "status", "color", "target_range", "limit"}


def test_visual_indicator_without_equity_is_info():
    block = visual_indicator(100.0, equity=0.0, limit=1.5)
    assert block["status"] == "info" and block["value"] is None and block["percentage"] is None
