"""gunicorn entry point for Keystone (used by scripts/identity/keystone.sh).

1. Keystone parses sys.argv when its WSGI application is built: under gunicorn it
   would see gunicorn's own arguments (`--bind ...`), exit with "unrecognized
   arguments", and the worker would be restarted in a loop while the master still
   accepts connections. So drop the arguments first, then build the application.
   Keystone finds its config through OS_KEYSTONE_CONFIG_DIR (set by keystone.sh).

2. Keystone's state is one SQLite file, and two requests that write at once (tempest
   creating and deleting projects and users from two workers while logging in) fail
   with "database is locked" (HTTP 500): SQLite refuses the second writer of two
   transactions that both began by reading, without waiting. So requests that may
   write (every method but GET/HEAD/OPTIONS; logins are POSTs) run one at a time,
   while reads, token validation among them, run beside them (the database is in WAL
   mode, so readers and the writer do not block each other).
"""

import sys
import threading

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application as _keystone  # noqa: E402

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_writer = threading.Lock()


def application(environ, start_response):
    if environ.get("REQUEST_METHOD", "GET") in _READS:
        return _keystone(environ, start_response)
    with _writer:
        result = _keystone(environ, start_response)
        try:
            return [b"".join(result)]  # the whole response while holding the lock
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
