"""market-sync benchmarks: the data path measured against raw PostgreSQL baselines.

``python -m bench [--rows N] [--quick] [--json PATH]`` starts its own PostgreSQL
cluster (fsync on) and moto server on 127.0.0.1, and measures in one run, each
figure against a baseline measured in the same run on the same machine:

(a) a typical daily sync (N new rows + N unchanged overlap rows) vs raw binary COPY;
(b) the worst case (N overlapping rows, 1% diverged) vs raw binary COPY;
(c) the laptop table's size after (a) vs a clean load of the same rows;
(d) dump bytes vs ``pg_dump -Fc`` of the same rows;
(e) the agent's export rows/s vs ``pg_dump -Fc`` rows/s;
(f) peak RSS of the sync process at N/10 and N rows.
"""
