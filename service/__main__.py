"""`python -m kerasserve.service` runs the kerasserve CLI."""

from kerasserve.service.cli import main

raise SystemExit(main())
