"""Policy analysis on the emulated kernel: lint, explain, diff, compile."""
