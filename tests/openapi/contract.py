"""docs/openapi.json as a contract: find the operation of a request, validate a response.

Shared by tests/openapi/scenario.py (a live lifecycle) and
tests/openapi/check-recorded.py (the exchanges the Rust API tests recorded).
Needs jsonschema.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "openapi.json"
PREFIX = "/v3/{project_id}"


def load(path: str | Path = DOC_PATH) -> dict:
    return json.loads(Path(path).read_text())


class Contract:
    def __init__(self, doc: dict):
        self.doc = doc
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        # (template, its segments) of every documented path.
        self._templates = [(t, t.strip("/").split("/")) for t in doc["paths"]]

    def resolve(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    # --- requests -> operations ---------------------------------------------------

    def match(self, method: str, path: str) -> tuple[str | None, bool]:
        """(template, has the method) of a concrete path (query ignored): the template
        with the most literal segments wins (`/volumes/detail` over `/volumes/{id}`).
        Paths served without the project segment (`/v3/volumes`) match their
        `/v3/{project_id}/...` template. (None, False) when no path matches."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        segs = path.strip("/").split("/")
        tries = [segs]
        if len(segs) >= 2 and segs[0] == "v3":
            tries.append(["v3", "\0"] + segs[1:])  # without the project segment
        best: tuple[int, str] | None = None
        for cand in tries:
            for template, tsegs in self._templates:
                if len(tsegs) != len(cand):
                    continue
                literal = 0
                for t, c in zip(tsegs, cand):
                    if t.startswith("{") and t.endswith("}"):
                        if c == "" or (c == "\0" and t != "{project_id}"):
                            break
                    elif t == c:
                        literal += 1
                    else:
                        break
                else:
                    # The trailing slash of `/v3/` is significant.
                    if template.endswith("/") != path.endswith("/") and template != "/":
                        continue
                    key = (literal, template)
                    if best is None or key > best:
                        best = key
        if best is None:
            return None, False
        template = best[1]
        return template, method.lower() in self.doc["paths"][template]

    # --- responses ------------------------------------------------------------------

    def response(self, method: str, template: str, status: int) -> tuple[bool, dict | None, str | None]:
        """(documented, JSON schema or None, content type) of a response; a `4XX`/`5XX`
        range or `default` covers a status not listed itself."""
        responses = self.doc["paths"][template][method.lower()]["responses"]
        resp = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
        if resp is None:
            return False, None, None
        return (True, *self.content(resp))

    def content(self, resp: dict) -> tuple[dict | None, str | None]:
        content = self.resolve(resp).get("content") or {}
        for ctype, media in content.items():
            return media.get("schema"), ctype
        return None, None

    def fault(self) -> tuple[dict | None, str | None]:
        """The schema of an error (any of the shared responses: all are Cinder's fault)."""
        return self.content(self.doc["components"]["responses"]["404"])

    def validator(self, schema: dict) -> jsonschema.Draft202012Validator:
        # `#/components/...` references resolve against the root: give it the components.
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator({**schema, "components": self.doc["components"]})
            self._validators[key] = v
        return v

    def errors(self, schema: dict, value) -> list[jsonschema.ValidationError]:
        return sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.path))


def describe(e: jsonschema.ValidationError) -> str:
    return f"{'/'.join(map(str, e.path)) or '(body)'}: {e.message[:200]}"
