"""`python -m kerasserve_client` runs the client commands (`predict`, `features`)."""

from kerasserve_client.cli import main

raise SystemExit(main())
