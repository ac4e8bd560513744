"""pusher: keep marketing destinations exactly in step with audiences computed in the warehouse."""

__version__ = "0.1.0"
