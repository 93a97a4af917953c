"""runlog: keep, query and move the run logs of data and ML pipelines.

>>> from runlog import track_this
"""

__version__ = "0.1.0"
