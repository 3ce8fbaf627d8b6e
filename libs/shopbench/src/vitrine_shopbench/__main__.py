import sys

from vitrine_shopbench.cli import main

sys.exit(main())
