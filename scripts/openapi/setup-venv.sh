#!/usr/bin/env bash
# Create (or refresh) the pinned venv of the OpenAPI contract check at
# <repo>/.venv-openapi (schemathesis, openapi-spec-validator; see requirements.txt
# here) through scripts/setup-venv.sh. Idempotent, quiet on success; prints the
# venv path.
#
#   scripts/openapi/setup-venv.sh
#   HEARTH_OPENAPI_VENV=/some/where scripts/openapi/setup-venv.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEARTH_VENV=${HEARTH_OPENAPI_VENV:-$repo/.venv-openapi} \
    HEARTH_VENV_REQUIREMENTS=$repo/scripts/openapi/requirements.txt \
    HEARTH_VENV_TOOLS="schemathesis" \
    HEARTH_VENV_IMPORT="import openapi_spec_validator, jsonschema, schemathesis" \
    exec "$repo/scripts/setup-venv.sh"
