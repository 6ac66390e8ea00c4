"""One module per step kind, each with its model, `validate_step` (checks beyond the
schema), `run_step` (do it, return an `Outcome`) and `describe_step`, exported as `KIND`.
`registry.py` lists them and defines `Step`; `dispatch.py` runs a step through its kind."""
