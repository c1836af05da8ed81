"""Risk analytics service: factor exposures, VaR, scenarios, overview, attribution, timeline.

Glue between the catalog (portfolios, stored batch results), the market-data provider and the
pure numbers in ``compute`` (factors, var, scenarios, risk, attribution). See
:mod:`services.risk.service`.
"""
