"""Vitrine live: creators' live selling sessions, the products they pin, and the sales
attributed to each session (from order.placed / order.refunded)."""
