"""`python -m vitrine_checkout`: run the service (the embedded platform starts it this way)."""

from vitrine_checkout.app import main

main()
