import sys

from masqctl.agent.main import main

sys.exit(main())
