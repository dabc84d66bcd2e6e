"""A loopback IB Gateway that speaks the TWS API, driven by the Parquet catalog."""
