"""The command line: one thin module per command; `output.py` is the only place that prints."""
