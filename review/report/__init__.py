"""The report step: one command turns protocols/ and data/ into a finished, reproducible report."""
