"""Pure rendering of results: JSON-able dicts and rich renderables. No I/O, no emulation."""
