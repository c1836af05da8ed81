"""The Model Lab service: models, content-addressed matrices, training and backtest jobs.

``cluster.lab.service`` is the glue between the catalog, the artifact store and ``compute``
(packs, features, trainers, walk-forward backtests, gates); ``cluster.lab.jobs`` declares the
``lab.train`` and ``lab.backtest`` job kinds; ``cluster.lab.export`` renders fill logs.
"""
