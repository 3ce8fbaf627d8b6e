"""`python -m vitrine_commission` runs the service."""

from vitrine_commission.app import main

if __name__ == "__main__":
    main()
