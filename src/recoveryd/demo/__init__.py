"""`make run`: the demo round trip (`run`) on a generated population registry (`data`)."""
