"""The Model Lab service: models, content-addressed matrices, training and backtest jobs.

``services.lab.service`` is the glue between the catalog, the artifact store and ``compute``
(packs, features, trainers, walk-forward backtests, gates); ``services.lab.jobs`` declares the
``lab.train`` and ``lab.backtest`` job kinds; ``services.lab.export`` renders fill logs.
"""
