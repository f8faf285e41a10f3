"""Architectural facts of the Arm PMU (Arm ARM), as data: registers, fields, versions, events."""
