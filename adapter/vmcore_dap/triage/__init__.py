"""Many dumps at once: a report per vmcore, a stable crash signature, and dumps clustered by bug.

``vmcore-dap triage`` (:mod:`.command`) finds the vmcores (:mod:`.discovery`), analyses each in a
worker process (:mod:`.analysis`, on the dump layer only: this package never imports the protocol),
caches the results per dump (:mod:`.results_cache`), runs them on a local process pool or a Dask
cluster (:mod:`.runners`), and groups them by signature (:mod:`.signature`, :mod:`.clusters`).
The JSON it writes is described in ``docs/triage.md`` (:data:`.report.SCHEMA_VERSION`).
"""
