"""What the instance agent, the laptop app and the installer share.

Plain Python: nothing here imports Qt, and nothing does work at import time.
"""
