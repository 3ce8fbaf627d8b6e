"""HTTP: read-only views of the ledger (accounts, statements, transactions, trial balance)."""
