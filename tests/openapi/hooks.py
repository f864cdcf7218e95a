"""schemathesis hooks of tests/openapi/run.sh: where a known hearthd bug would be
excluded, narrowly and with its reason, so that the run stays red for anything new.

None is excluded now. The first one schemathesis found, fixed since: a list's
`offset` above i64::MAX was a 500 (SQLite refused the OFFSET); it is a 400 past
Cinder's bound, 2147483647 (src/api/params.rs, tests/api_volumes.rs).
"""

from __future__ import annotations

import schemathesis  # noqa: F401  (hooks would be registered with @schemathesis.hook)
