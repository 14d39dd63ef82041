"""lanelab: find out which billing lane a Claude OAuth request lands in, and why.

Logic lives here; the notebooks under ``notebooks/`` only narrate and call into it.
"""

__version__ = "0.1.0"
