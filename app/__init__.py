"""HTTP and wiring: the app, its routes and dependencies, auth, the policy table, the audit
trail, the command line and the scheduler process.

Importing `app` registers every table (`app.models`), and with insurance its settlers and the
cover check, so no entry point has to remember to.
"""

from app import models as _models  # noqa: F401
