"""`python -m vitrine_live`: run the service (the embedded platform starts it this way)."""

from vitrine_live.app import main

main()
