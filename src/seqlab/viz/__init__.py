"""Plots (matplotlib, written as PNG files)."""
