"""Vitrine commission service: splits every sale and refund in a double-entry ledger."""
