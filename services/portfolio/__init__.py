"""The portfolio engine's service layer: positions, tags, priced books, uploads, scale-out.

- ``service``: catalog access (portfolios, positions, tags) and ``priced_book`` (cached).
- ``views``: the JSON-ready figures the routes serve (overview, summary, exposures,
  performance, positions listing, Greeks).
- ``upload``: CSV parsing and the all-or-nothing import.
- ``shards``: a book too large for one process, sharded over Ray actors.
- ``jobs``: job kinds (``portfolio.greeks``).
"""
