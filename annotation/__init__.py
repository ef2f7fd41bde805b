"""The Point-VOS verification tool (Sec. 3.2, Fig. 4): a web page on which annotators accept, reject or mark as
ambiguous each point candidate of the pipeline's verification tasks, one object at a time.

Modules, one job each: ``store`` (the SQLite file), ``service`` (the rules: leases, order, idempotence), ``app``
(FastAPI routes), ``security`` (token, body limit, headers), ``tokens``, ``images`` (frames and overlays by id),
``export`` (verdict log and release), ``sample_tasks`` (task folders to try it on), ``cli``. It imports ``vng``;
``vng`` never imports it. Start it with ``python -m annotation serve TASK_DIR --db verdicts.sqlite``.
"""
