"""The ledger's rules, free of I/O: accounts, postings, the split of sales and refunds."""

from vitrine_commission.domain.accounts import AccountKind, AccountRef, OwnerType, Side
from vitrine_commission.domain.errors import LedgerRuleError
from vitrine_commission.domain.posting import Entry, Posting, UnbalancedPostingError
from vitrine_commission.domain.rules import (
    AttributionPolicy,
    BookedOrder,
    LedgerTransaction,
    Shares,
    TransactionKind,
    book_refund,
    book_sale,
    reverse_refund,
    split_line,
    split_sale,
)

__all__ = [
    "AccountKind",
    "AccountRef",
    "AttributionPolicy",
    "BookedOrder",
    "Entry",
    "LedgerRuleError",
    "LedgerTransaction",
    "OwnerType",
    "Posting",
    "Shares",
    "Side",
    "TransactionKind",
    "UnbalancedPostingError",
    "book_refund",
    "book_sale",
    "reverse_refund",
    "split_line",
    "split_sale",
]
