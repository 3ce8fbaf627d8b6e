"""The one error the ledger's rules raise."""


class LedgerRuleError(ValueError):
    """An event the ledger cannot book as it is: it would never succeed on a retry."""
