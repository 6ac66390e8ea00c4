"""One module per step kind, each with `validate_*` (static checks beyond the schema)
and `run_*` (do it, return an `Outcome`). `dispatch.execute` picks the module."""
