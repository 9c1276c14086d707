"""The typed configuration: one schema of dataclasses, validated where values enter."""
