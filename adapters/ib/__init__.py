"""Interactive Brokers wiring that Nautilus's adapter does not provide: the preflight."""
