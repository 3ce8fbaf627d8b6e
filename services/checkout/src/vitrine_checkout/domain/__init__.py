"""Checkout's rules, free of SQL and HTTP: what an order may contain, how it is priced and
attributed, and how much of it may be refunded."""
