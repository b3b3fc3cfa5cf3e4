"""Systematic reviews of clinical case reports: protocol, search, screening and extraction."""

__version__ = "0.1.0"
