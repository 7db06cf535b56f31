"""Toolkit version tables (data)."""
