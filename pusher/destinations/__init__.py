"""Destinations: one module each, one small interface (see base.py)."""
