import sys

from vitrine_stack.cli import main

sys.exit(main())
