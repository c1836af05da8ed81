"""The domain: Lab, Portfolio and Risk services between the HTTP edge and the platform.

Arrows point one way: ``serve_app -> services -> cluster -> compute`` (``tuning -> services``).
"""
