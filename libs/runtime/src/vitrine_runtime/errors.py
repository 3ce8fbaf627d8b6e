"""Errors that domain code raises for a bad request; the HTTP layer maps them to 4xx.

Domain code never speaks HTTP: it says what is wrong, the adapter picks the status.
"""


class DomainError(Exception):
    """A request that cannot be carried out as asked. The message is shown to the caller."""

    code = "invalid_request"


class NotFoundError(DomainError):
    code = "not_found"


class ConflictError(DomainError):
    """The request clashes with the current state (out of stock, already refunded, ...)."""

    code = "conflict"


class InvalidRequestError(DomainError):
    code = "invalid_request"
