"""Filter specs and workloads: YAML with positions -> validated, typed models."""
