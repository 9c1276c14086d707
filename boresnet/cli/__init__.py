"""The command line: ``boresnet train | bo | evaluate | plot`` (parsing, one-line errors)."""
