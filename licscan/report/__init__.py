"""Renderers: facts and findings in, text out. They never judge or read input (DESIGN A1)."""
