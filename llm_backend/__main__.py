import sys

from llm_backend.cli import main

sys.exit(main())
