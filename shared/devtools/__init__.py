"""Throwaway local services for the demo, the tests and the benchmarks.

Real parts, not fakes: an actual PostgreSQL cluster made with initdb/pg_ctl in a
temporary folder, and moto's AWS server on 127.0.0.1.
"""
