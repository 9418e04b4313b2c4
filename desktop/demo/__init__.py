"""The demo: the whole chain on this machine (moto, a throwaway PostgreSQL, the agent)."""
