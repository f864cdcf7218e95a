#!/usr/bin/env python3
"""Generate docs/openapi.json: the OpenAPI 3.1 document of everything hearthd serves.

The routes are the one `match` in src/api/router.rs (documented in their
`/v3/{project_id}/...` form; hearthd also accepts them without the project segment),
plus the version documents (`/`, `/v3/`), `/metrics` and `/openapi.json` itself
(src/api/mod.rs). Request bodies follow what the handlers in src/api/*.rs read;
response bodies follow src/api/views.rs and the handlers.

Response schemas are meant to hold real responses to account without being brittle:
a field is `required` only when hearthd always sends it (at any microversion), and
objects allow further properties (newer microversions add fields). Every error is
Cinder's fault body `{"<faultName>": {"code": int, "message": str}}` (`Reply::error`
in src/api/mod.rs, `Error::fault_name` in src/error.rs).

    scripts/openapi/gen.py            # rewrite docs/openapi.json
    scripts/openapi/gen.py --check    # exit 1 when docs/openapi.json is not current

Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "openapi.json"

# --- schema helpers -------------------------------------------------------------

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
INT = {"type": "integer"}
NINT = {"type": ["integer", "null"]}
BOOL = {"type": "boolean"}
NULL = {"type": "null"}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# A string of at most 255 characters (names, descriptions, metadata), as hearth checks.
S255 = {"type": "string", "maxLength": 255}
NS255 = {"type": ["string", "null"], "maxLength": 255}
# Metadata in a request: keys 1..255 characters, string values of at most 255.
META_IN = {
    "type": "object",
    "propertyNames": {"minLength": 1, "maxLength": 255},
    "additionalProperties": S255,
}
# Cinder's booleans: JSON booleans, or the strings true/false/yes/no/1/0/on/off.
BOOL_IN = {
    "oneOf": [
        {"type": "boolean"},
        {"type": "string", "enum": ["true", "false", "True", "False", "yes", "no", "1", "0", "on", "off"]},
    ]
}
# A non-negative integer as a JSON number or a string of digits.
UINT_IN = {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]{1,18}$"}]}
POS_UINT_IN = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^0*[1-9][0-9]{0,17}$"}]}
UUID_IN = {"type": "string", "format": "uuid"}
NUUID_IN = {"type": ["string", "null"], "format": "uuid"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict, required: list[str] | tuple = (), extra=True) -> dict:
    """A response object: extra properties allowed unless `extra` is False."""
    o = {"type": "object", "properties": props}
    if required:
        o["required"] = list(required)
    if extra is not True:
        o["additionalProperties"] = extra
    return o


def body_obj(props: dict, required: list[str] | tuple = (), extra=False) -> dict:
    """A request object: hearth refuses unknown keys unless `extra` is True."""
    o = {"type": "object", "properties": props}
    if required:
        o["required"] = list(required)
    if extra is not True:
        o["additionalProperties"] = extra
    return o


def wrap(key: str, schema: dict) -> dict:
    """`{"<key>": schema}`, the key required."""
    return obj({key: schema}, [key])


def arr(items: dict) -> dict:
    return {"type": "array", "items": items}


def one_key_actions(actions: dict[str, dict]) -> dict:
    """An action body: an object naming exactly one of `actions`."""
    return {
        "oneOf": [
            {"type": "object", "properties": {k: v}, "required": [k], "additionalProperties": False}
            for k, v in actions.items()
        ]
    }


# --- components -----------------------------------------------------------------

FAULT_NAMES = [
    "badRequest",
    "unauthorized",
    "forbidden",
    "itemNotFound",
    "badMethod",
    "notAcceptable",
    "conflictingRequest",
    "overLimit",
    "badMediaType",
    "notImplemented",
    "serviceUnavailable",
    "computeFault",
]

SCHEMAS: dict[str, dict] = {
    "Fault": {
        "description": "Cinder's error body: one key, the fault name of the status "
        "(`badRequest` 400, `unauthorized` 401, `forbidden` 403, `itemNotFound` 404, `badMethod` 405, "
        "`notAcceptable` 406, `conflictingRequest` 409, `overLimit` 413, `badMediaType` 415, "
        "`notImplemented` 501, `serviceUnavailable` 503, `computeFault` otherwise).",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"enum": FAULT_NAMES},
        "additionalProperties": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "minimum": 400, "maximum": 599},
                "message": {"type": "string"},
                "retryAfter": {"type": "string", "description": "413 only."},
            },
        },
    },
    "Link": obj({"href": STR, "rel": STR, "type": STR}, ["href", "rel"]),
    "Links": arr(ref("Link")),
    "Metadata": STR_MAP,
    "VersionDocument": obj(
        {
            "versions": arr(
                obj(
                    {
                        "id": STR,
                        "status": STR,
                        "version": STR,
                        "min_version": STR,
                        "updated": STR,
                        "links": arr(ref("Link")),
                        "media-types": arr(obj({"base": STR, "type": STR}, ["base", "type"])),
                    },
                    ["id", "status", "version", "min_version", "links"],
                )
            )
        },
        ["versions"],
    ),
    "VolumeAttachment": obj(
        {
            "id": STR,
            "attachment_id": STR,
            "volume_id": STR,
            "server_id": NSTR,
            "host_name": NSTR,
            "device": NSTR,
            "attached_at": NSTR,
        },
        ["id", "attachment_id", "volume_id", "server_id", "host_name", "device", "attached_at"],
    ),
    "VolumeBrief": obj({"id": STR, "name": NSTR, "links": ref("Links")}, ["id", "name", "links"]),
    "Volume": obj(
        {
            "id": STR,
            "name": NSTR,
            "links": ref("Links"),
            "description": NSTR,
            "size": {"type": "integer", "minimum": 0},
            "status": STR,
            "availability_zone": STR,
            "created_at": STR,
            "updated_at": STR,
            "attachments": arr(ref("VolumeAttachment")),
            "metadata": ref("Metadata"),
            "volume_type": STR,
            "snapshot_id": NSTR,
            "source_volid": NSTR,
            "user_id": STR,
            "bootable": {"type": "string", "enum": ["true", "false"]},
            "encrypted": BOOL,
            "replication_status": NSTR,
            "consistencygroup_id": NSTR,
            "multiattach": BOOL,
            "migration_status": NSTR,
            "group_id": NSTR,
            "provider_id": NSTR,
            "service_uuid": NSTR,
            "shared_targets": BOOL,
            "cluster_name": NSTR,
            "volume_type_id": STR,
            "encryption_key_id": NSTR,
            "consumes_quota": BOOL,
            "os-vol-tenant-attr:tenant_id": STR,
            "os-vol-host-attr:host": NSTR,
            "os-vol-mig-status-attr:migstat": NSTR,
            "os-vol-mig-status-attr:name_id": NSTR,
        },
        [
            "id",
            "name",
            "links",
            "description",
            "size",
            "status",
            "availability_zone",
            "created_at",
            "updated_at",
            "attachments",
            "metadata",
            "volume_type",
            "snapshot_id",
            "source_volid",
            "user_id",
            "bootable",
            "encrypted",
            "multiattach",
        ],
    ),
    "Snapshot": obj(
        {
            "id": STR,
            "name": NSTR,
            "description": NSTR,
            "volume_id": STR,
            "size": INT,
            "status": STR,
            "metadata": ref("Metadata"),
            "created_at": STR,
            "updated_at": NSTR,
            "group_snapshot_id": NSTR,
            "user_id": STR,
            "consumes_quota": BOOL,
            "os-extended-snapshot-attributes:progress": NSTR,
            "os-extended-snapshot-attributes:project_id": STR,
        },
        ["id", "name", "description", "volume_id", "size", "status", "metadata", "created_at"],
    ),
    "ConnectionInfo": obj({"driver_volume_type": STR, "data": {"type": "object"}}, ["driver_volume_type"]),
    "Attachment": obj(
        {
            "id": STR,
            "status": STR,
            "instance": NSTR,
            "volume_id": STR,
            "attach_mode": STR,
            "attached_at": STR,
            "detached_at": STR,
            "connection_info": {"type": "object", "properties": {"driver_volume_type": NSTR}},
        },
        ["id", "status", "instance", "volume_id"],
    ),
    "BackupSummary": obj({"id": STR, "name": NSTR, "links": ref("Links")}, ["id", "name", "links"]),
    "Backup": obj(
        {
            "id": STR,
            "name": NSTR,
            "links": ref("Links"),
            "status": STR,
            "size": INT,
            "object_count": INT,
            "availability_zone": NSTR,
            "container": NSTR,
            "created_at": STR,
            "updated_at": NSTR,
            "description": NSTR,
            "fail_reason": NSTR,
            "volume_id": STR,
            "is_incremental": BOOL,
            "has_dependent_backups": BOOL,
            "snapshot_id": NSTR,
            "data_timestamp": STR,
            "metadata": ref("Metadata"),
            "os-backup-project-attr:project_id": STR,
            "user_id": STR,
            "progress": {"type": "string", "pattern": "^[0-9]{1,3}%$"},
        },
        ["id", "name", "links", "status", "size", "created_at", "volume_id", "is_incremental"],
    ),
    "TransferSummary": obj(
        {"id": STR, "volume_id": STR, "name": NSTR, "links": ref("Links")}, ["id", "volume_id", "name", "links"]
    ),
    "Transfer": obj(
        {
            "id": STR,
            "volume_id": STR,
            "name": NSTR,
            "links": ref("Links"),
            "created_at": STR,
            "auth_key": STR,
            "no_snapshots": BOOL,
            "source_project_id": NSTR,
            "destination_project_id": NSTR,
            "accepted": BOOL,
        },
        ["id", "volume_id", "name", "links", "created_at"],
    ),
    "VolumeType": obj(
        {
            "id": STR,
            "name": STR,
            "description": NSTR,
            "is_public": BOOL,
            "extra_specs": ref("Metadata"),
            "qos_specs_id": NSTR,
            "os-volume-type-access:is_public": BOOL,
        },
        ["id", "name", "description", "is_public"],
    ),
    "TypeEncryption": obj(
        {
            "volume_type_id": STR,
            "encryption_id": STR,
            "provider": STR,
            "cipher": NSTR,
            "key_size": NINT,
            "control_location": {"type": "string", "enum": ["front-end", "back-end"]},
            "deleted": BOOL,
            "created_at": STR,
            "updated_at": NSTR,
            "deleted_at": NSTR,
        }
    ),
    "QosSpecs": obj(
        {
            "id": STR,
            "name": STR,
            "consumer": {"type": "string", "enum": ["back-end", "front-end", "both"]},
            "specs": {"type": "object", "additionalProperties": NSTR},
        },
        ["id", "name", "consumer", "specs"],
    ),
    "Message": obj(
        {
            "id": STR,
            "event_id": STR,
            "user_message": STR,
            "message_level": STR,
            "created_at": STR,
            "guaranteed_until": STR,
            "request_id": STR,
            "links": ref("Links"),
            "resource_type": STR,
            "resource_uuid": STR,
        },
        ["id", "event_id", "user_message", "message_level", "created_at", "guaranteed_until", "request_id"],
    ),
    "GroupType": obj(
        {"id": STR, "name": STR, "description": NSTR, "is_public": BOOL, "group_specs": ref("Metadata")},
        ["id", "name", "description", "is_public"],
    ),
    "GroupSummary": obj({"id": STR, "name": NSTR}, ["id", "name"]),
    "Group": obj(
        {
            "id": STR,
            "status": STR,
            "availability_zone": STR,
            "created_at": STR,
            "name": NSTR,
            "description": NSTR,
            "group_type": STR,
            "volume_types": arr(STR),
            "group_snapshot_id": NSTR,
            "source_group_id": NSTR,
            "volumes": arr(STR),
            "replication_status": NSTR,
            "project_id": STR,
        },
        ["id", "status", "availability_zone", "created_at", "name", "description", "group_type", "volume_types"],
    ),
    "GroupSnapshotSummary": obj({"id": STR, "name": NSTR, "group_type_id": STR}, ["id", "name"]),
    "GroupSnapshot": obj(
        {
            "id": STR,
            "group_id": STR,
            "group_type_id": STR,
            "status": STR,
            "created_at": STR,
            "name": NSTR,
            "description": NSTR,
            "project_id": STR,
        },
        ["id", "group_id", "group_type_id", "status", "created_at", "name", "description"],
    ),
    "QuotaSet": {
        "description": "Limits by resource (`volumes`, `gigabytes`, `snapshots`, `backups`, "
        "`backup_gigabytes`, `per_volume_gigabytes`, `groups`, and the per-type keys), plus the `id` "
        "asked for; with `usage=true` each limit is an object.",
        "type": "object",
        "properties": {"id": STR},
        "additionalProperties": {
            "oneOf": [
                {"type": "integer"},
                obj(
                    {"limit": INT, "in_use": INT, "reserved": INT, "allocated": INT},
                    ["limit", "in_use", "reserved"],
                ),
            ]
        },
    },
    "Service": obj(
        {
            "binary": STR,
            "host": STR,
            "zone": STR,
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
            "state": {"type": "string", "enum": ["up", "down"]},
            "updated_at": NSTR,
            "disabled_reason": NSTR,
            "cluster": NSTR,
            "replication_status": NSTR,
            "active_backend_id": NSTR,
            "frozen": BOOL,
            "backend_state": {"type": "string", "enum": ["up", "down"]},
        },
        ["binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"],
    ),
    "Pool": obj({"name": STR, "capabilities": {"type": "object"}}, ["name"]),
    "DefaultType": obj({"project_id": STR, "volume_type_id": STR}, ["project_id", "volume_type_id"]),
}

# --- parameters and responses ------------------------------------------------------

PARAMETERS = {
    "project_id": {
        "name": "project_id",
        "in": "path",
        "required": True,
        "description": "The project. With `noauth` it names the project acted in; with Keystone and "
        "HTTP basic it must be the token's project. The paths are also served without this segment.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    },
    "microversion": {
        "name": "OpenStack-API-Version",
        "in": "header",
        "required": False,
        "description": "`volume 3.N` with N from 0 to 67, or `volume latest`; none means 3.0. "
        "Echoed on every response.",
        "schema": {"type": "string", "pattern": "^volume (3\\.([0-9]|[1-5][0-9]|6[0-7])|latest)$"},
    },
}


def path_param(name: str, description: str = "") -> dict:
    p = {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    if description:
        p["description"] = description
    return p


def query(name: str, schema: dict, description: str = "") -> dict:
    p = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        p["description"] = description
    return p


FLAG_Q = {"type": "string", "enum": ["true", "false", "True", "False", "1", "0"]}
PAGING = [
    query("limit", {"type": "integer", "minimum": 0}, "At most this many (capped at `osapi_max_limit`)."),
    query("marker", STR, "The id of the last item of the previous page."),
    query("offset", {"type": "integer", "minimum": 0}),
    query("sort", STR, "`key[:asc|desc],...`; not with `sort_key`/`sort_dir`."),
    query("sort_key", STR),
    query("sort_dir", {"type": "string", "enum": ["asc", "desc"]}),
]
ALL_TENANTS = query("all_tenants", FLAG_Q, "Admins: every project's.")
WITH_COUNT = query("with_count", FLAG_Q, "3.45: add `count`.")

ERRORS = {
    400: ("badRequest", "Invalid request: the body, a parameter, the URL's project or the object's state."),
    401: ("unauthorized", "No valid credentials."),
    403: ("forbidden", "Policy does not allow this."),
    404: ("itemNotFound", "No such object (or route at this microversion)."),
    405: ("badMethod", "The path does not have this method."),
    406: ("notAcceptable", "The microversion is outside 3.0..3.67."),
    408: ("computeFault", "The request was not received in time."),
    409: (
        "conflictingRequest",
        "A conflicting object exists (a name already taken), or the object is on a pool of another node "
        "that does not share this node's store.",
    ),
    413: ("overLimit", "Over quota, or the request is too large."),
    415: ("badMediaType", "The body is not JSON (`Content-Type`)."),
    500: ("computeFault", "An internal failure."),
    501: ("notImplemented", "Not provided by hearth."),
    503: (
        "serviceUnavailable",
        "The store's filesystem is full, the daemon is shutting down, or the fleet's node that owns the "
        "object's pool is down or did not take the request in time.",
    ),
    504: ("computeFault", "The fleet's node that owns the object's pool took the request and did not answer in time."),
}
RESPONSES = {
    str(code): {
        "description": f"{desc} Cinder's fault body, `{name}`.",
        "content": {"application/json": {"schema": ref("Fault")}},
    }
    for code, (name, desc) in ERRORS.items()
}

# Statuses any authenticated API request may get.
COMMON_ERRORS = [400, 401, 403, 404, 406, 408, 409, 413, 415, 500, 503, 504]


def op(
    summary: str,
    ok: dict[int, dict | None],
    *,
    params: list | None = None,
    body: dict | None = None,
    body_required: bool = True,
    errors: list[int] = (),
    tag: str,
    auth: bool = True,
    description: str = "",
) -> dict:
    """One operation. `ok` maps success statuses to a JSON body schema (None: no body)."""
    o: dict = {"summary": summary, "tags": [tag]}
    if description:
        o["description"] = description
    ps = list(params or [])
    if auth:
        ps.append({"$ref": "#/components/parameters/microversion"})
    if ps:
        o["parameters"] = ps
    if body is not None:
        o["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    resps: dict = {}
    for code, schema in ok.items():
        r: dict = {"description": "OK." if code < 300 else "Multiple choices."}
        if schema is not None:
            r["content"] = {"application/json": {"schema": schema}}
        resps[str(code)] = r
    if auth:
        for code in sorted(set(COMMON_ERRORS) | set(errors)):
            resps[str(code)] = {"$ref": f"#/components/responses/{code}"}
    else:
        o["security"] = []
    o["responses"] = resps
    return o


# --- request bodies ---------------------------------------------------------------

VOLUME_CREATE = wrap(
    "volume",
    body_obj(
        {
            "size": POS_UINT_IN,
            "name": NS255,
            "display_name": NS255,
            "description": NS255,
            "display_description": NS255,
            "volume_type": NS255,
            "availability_zone": NS255,
            "metadata": META_IN,
            "snapshot_id": NS255,
            "source_volid": NS255,
            "group_id": NS255,
            "backup_id": NS255,
            "multiattach": {"enum": [False, None]},
        },
        extra=True,
    ),
)
VOLUME_CREATE["description"] = (
    "`size` in GiB (optional with a snapshot, source volume or backup); `group_id` from 3.13, "
    "`backup_id` from 3.47. `imageRef` and `consistencygroup_id` are refused; `multiattach` comes "
    "from the volume type. Other keys are ignored."
)
VOLUME_UPDATE = wrap(
    "volume",
    body_obj(
        {
            "name": NS255,
            "description": NS255,
            "display_name": NS255,
            "display_description": NS255,
            "metadata": META_IN,
        }
    ),
)
CONNECTOR = {"type": "object", "description": "An os-brick connector (`initiator`, `host`, ...)."}
EMPTY_ACTION = {"type": ["object", "null"]}
VOLUME_ACTION = one_key_actions(
    {
        "os-extend": body_obj({"new_size": POS_UINT_IN}, ["new_size"], extra=True),
        "os-reset_status": body_obj({"status": S255, "attach_status": S255, "migration_status": S255}, extra=True),
        "os-force_delete": EMPTY_ACTION,
        "os-update_readonly_flag": body_obj({"readonly": BOOL_IN}, ["readonly"], extra=True),
        "os-set_bootable": body_obj({"bootable": BOOL_IN}, ["bootable"], extra=True),
        "os-reserve": EMPTY_ACTION,
        "os-unreserve": EMPTY_ACTION,
        "os-begin_detaching": EMPTY_ACTION,
        "os-roll_detaching": EMPTY_ACTION,
        "os-initialize_connection": body_obj({"connector": CONNECTOR}, ["connector"], extra=True),
        "os-terminate_connection": body_obj({"connector": CONNECTOR}, ["connector"], extra=True),
        "os-attach": body_obj(
            {
                "instance_uuid": NS255,
                "host_name": NS255,
                "mountpoint": NS255,
                "mode": {"type": "string", "enum": ["rw", "ro"]},
            },
            extra=True,
        ),
        "os-detach": {"type": ["object", "null"], "properties": {"attachment_id": NS255}},
        "os-force_detach": {
            "type": ["object", "null"],
            "properties": {"attachment_id": NS255, "connector": {"type": ["object", "null"]}},
        },
        "os-retype": body_obj(
            {"new_type": {"type": "string", "minLength": 1, "maxLength": 255}, "migration_policy": NS255},
            ["new_type"],
            extra=True,
        ),
        "revert": body_obj(
            {"snapshot_id": {"type": "string", "minLength": 1, "maxLength": 255}}, ["snapshot_id"], extra=True
        ),
        "os-migrate_volume": {"type": ["object", "null"]},
        "os-migrate_volume_completion": {"type": ["object", "null"]},
        "os-volume_upload_image": {"type": ["object", "null"]},
        "os-reimage": {"type": ["object", "null"]},
        "os-extend_volume_completion": {"type": ["object", "null"]},
    }
)
VOLUME_ACTION["description"] = (
    "Exactly one action. `revert` from 3.40. `os-migrate_volume`, `os-migrate_volume_completion`, "
    "`os-volume_upload_image`, `os-reimage` and `os-extend_volume_completion` answer 501."
)
METADATA_BODY = wrap("metadata", META_IN)
META_ONE_BODY = wrap("meta", {**META_IN, "minProperties": 1, "maxProperties": 1})

SNAPSHOT_CREATE = wrap(
    "snapshot",
    body_obj(
        {
            "volume_id": {"type": "string", "minLength": 1, "maxLength": 255},
            "name": NS255,
            "display_name": NS255,
            "description": NS255,
            "display_description": NS255,
            "force": BOOL_IN,
            "metadata": META_IN,
        },
        ["volume_id"],
        extra=True,
    ),
)
SNAPSHOT_UPDATE = wrap(
    "snapshot",
    body_obj({"name": NS255, "description": NS255, "display_name": NS255, "display_description": NS255}),
)
SNAPSHOT_ACTION = one_key_actions(
    {
        "os-reset_status": body_obj({"status": S255}, ["status"], extra=True),
        "os-force_delete": EMPTY_ACTION,
        "os-update_snapshot_status": body_obj({"status": S255, "progress": NS255}, ["status"], extra=True),
    }
)

ATTACHMENT_CREATE = wrap(
    "attachment",
    body_obj(
        {
            "volume_uuid": {"type": "string", "minLength": 1, "maxLength": 255},
            "instance_uuid": NS255,
            "connector": {"type": ["object", "null"]},
            "mode": {"type": "string", "enum": ["rw", "ro"], "description": "3.54."},
        },
        ["volume_uuid"],
        extra=True,
    ),
)
ATTACHMENT_UPDATE = wrap("attachment", body_obj({"connector": CONNECTOR}, ["connector"], extra=True))
ATTACHMENT_ACTION = one_key_actions({"os-complete": {"type": ["object", "null"]}})

BACKUP_CREATE = wrap(
    "backup",
    body_obj(
        {
            "volume_id": UUID_IN,
            "snapshot_id": NUUID_IN,
            "name": NS255,
            "description": NS255,
            "container": NS255,
            "incremental": BOOL_IN,
            "force": BOOL_IN,
            "metadata": {**META_IN, "description": "3.43."},
            "availability_zone": {**NS255, "description": "3.51."},
        },
        ["volume_id"],
    ),
)
BACKUP_CREATE["additionalProperties"] = False
BACKUP_UPDATE = obj(
    {
        "backup": {
            "type": ["object", "null"],
            "properties": {"name": NS255, "description": NS255, "metadata": META_IN},
            "additionalProperties": False,
        }
    },
    ["backup"],
    extra=False,
)
BACKUP_RESTORE = obj(
    {
        "restore": {
            "type": ["object", "null"],
            "properties": {"volume_id": NUUID_IN, "name": NS255},
            "additionalProperties": False,
        }
    },
    ["restore"],
    extra=False,
)
BACKUP_IMPORT = obj(
    {
        "backup-record": body_obj(
            {"backup_service": S255, "backup_url": {"type": "string", "minLength": 1}},
            ["backup_service", "backup_url"],
        )
    },
    ["backup-record"],
    extra=False,
)
BACKUP_ACTION = one_key_actions(
    {
        "os-reset_status": body_obj({"status": {"type": "string", "enum": ["available", "error"]}}, ["status"]),
        "os-force_delete": EMPTY_ACTION,
        "os-verify": EMPTY_ACTION,
    }
)

TRANSFER_NAME = {"type": ["string", "null"], "minLength": 1, "maxLength": 255, "pattern": "\\S"}
TRANSFER_CREATE_EXT = obj(
    {"transfer": body_obj({"volume_id": UUID_IN, "name": TRANSFER_NAME}, ["volume_id"])}, ["transfer"], extra=False
)
TRANSFER_CREATE = obj(
    {"transfer": body_obj({"volume_id": UUID_IN, "name": TRANSFER_NAME, "no_snapshots": BOOL_IN}, ["volume_id"])},
    ["transfer"],
    extra=False,
)
TRANSFER_ACCEPT = obj(
    {"accept": body_obj({"auth_key": {"type": ["string", "integer"]}}, ["auth_key"])}, ["accept"], extra=False
)

NAME_REQ = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"}
TYPE_CREATE = wrap(
    "volume_type",
    body_obj(
        {
            "name": NAME_REQ,
            "description": NS255,
            "is_public": BOOL_IN,
            "os-volume-type-access:is_public": BOOL_IN,
            "extra_specs": META_IN,
        },
        ["name"],
    ),
)
TYPE_UPDATE = wrap(
    "volume_type",
    {
        **body_obj(
            {
                "name": {"type": ["string", "null"], "maxLength": 255, "pattern": "\\S"},
                "description": NS255,
                "is_public": BOOL_IN,
                "os-volume-type-access:is_public": BOOL_IN,
            }
        ),
        "minProperties": 1,
    },
)
EXTRA_SPECS_BODY = wrap("extra_specs", META_IN)
ONE_SPEC_BODY = {
    **META_IN,
    "minProperties": 1,
    "maxProperties": 1,
    "description": '`{"<key>": "<value>"}`, the key of the URL.',
}
TYPE_ACTION = one_key_actions(
    {
        "addProjectAccess": body_obj({"project": NAME_REQ}, ["project"], extra=True),
        "removeProjectAccess": body_obj({"project": NAME_REQ}, ["project"], extra=True),
    }
)
ENCRYPTION_FIELDS = {
    "provider": S255,
    "cipher": NS255,
    "key_size": {
        "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]{1,18}$"}, {"type": "null"}]
    },
    "control_location": {"type": "string", "enum": ["front-end", "back-end"]},
}
ENCRYPTION_CREATE = obj(
    {"encryption": body_obj(ENCRYPTION_FIELDS, ["provider"], extra=True)}, ["encryption"], extra=False
)
ENCRYPTION_UPDATE = obj({"encryption": body_obj(ENCRYPTION_FIELDS, extra=True)}, ["encryption"], extra=False)

QOS_KEY = {"minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9_:. /-]+$"}
QOS_CREATE = obj(
    {
        "qos_specs": {
            "type": "object",
            "properties": {
                "name": NAME_REQ,
                "consumer": {"type": "string", "enum": ["back-end", "front-end", "both"]},
            },
            "required": ["name"],
            "propertyNames": {"minLength": 1, "maxLength": 255},
            "additionalProperties": NS255,
        },
        "type": {},
    },
    ["qos_specs"],
    extra=False,
)
QOS_UPDATE = obj(
    {
        "qos_specs": {
            "type": "object",
            "properties": {"consumer": {"type": "string", "enum": ["back-end", "front-end", "both"]}},
            "propertyNames": QOS_KEY,
            "additionalProperties": NS255,
        }
    },
    ["qos_specs"],
    extra=False,
)
QOS_DELETE_KEYS = obj(
    {"keys": {"type": "array", "uniqueItems": True, "items": {"type": "string", "minLength": 1, "maxLength": 255}}},
    ["keys"],
    extra=False,
)

GROUP_SPEC_KEY = {"minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9_:.-]+$"}
GROUP_SPECS_IN = {"type": "object", "propertyNames": GROUP_SPEC_KEY, "additionalProperties": S255}
GROUP_TYPE_CREATE = wrap(
    "group_type",
    body_obj({"name": NAME_REQ, "description": NS255, "is_public": BOOL_IN, "group_specs": GROUP_SPECS_IN}, ["name"]),
)
GROUP_TYPE_UPDATE = wrap(
    "group_type",
    {
        **body_obj(
            {
                "name": {"type": ["string", "null"], "maxLength": 255, "pattern": "\\S"},
                "description": NS255,
                "is_public": BOOL_IN,
            }
        ),
        "minProperties": 1,
    },
)
GROUP_SPECS_BODY = obj({"group_specs": GROUP_SPECS_IN}, ["group_specs"], extra=False)
ONE_GROUP_SPEC_BODY = {**GROUP_SPECS_IN, "minProperties": 1, "maxProperties": 1}

GROUP_CREATE = wrap(
    "group",
    body_obj(
        {
            "name": NS255,
            "description": NS255,
            "group_type": {"type": "string", "minLength": 1, "maxLength": 255},
            "volume_types": {"type": "array", "minItems": 1, "items": S255},
            "availability_zone": NS255,
        },
        ["group_type", "volume_types"],
    ),
)
GROUP_UPDATE = wrap(
    "group",
    {
        **body_obj(
            {
                "name": NS255,
                "description": NS255,
                "add_volumes": {**NS255, "description": "Comma-separated volume ids."},
                "remove_volumes": {**NS255, "description": "Comma-separated volume ids."},
            }
        ),
        "minProperties": 1,
    },
)
GROUP_COLLECTION_ACTION = one_key_actions(
    {
        "create-from-src": body_obj(
            {"name": NS255, "description": NS255, "group_snapshot_id": NUUID_IN, "source_group_id": NUUID_IN}
        )
    }
)
GROUP_COLLECTION_ACTION["description"] = "3.14. Exactly one of `group_snapshot_id` and `source_group_id`."
GROUP_ACTION = one_key_actions(
    {
        "delete": {
            "type": ["object", "null"],
            "properties": {"delete-volumes": BOOL_IN},
            "additionalProperties": False,
        },
        "reset_status": body_obj({"status": S255}, ["status"]),
        "enable_replication": {"type": ["object", "null"]},
        "disable_replication": {"type": ["object", "null"]},
        "failover_replication": {"type": ["object", "null"]},
        "list_replication_targets": {"type": ["object", "null"]},
    }
)
GROUP_ACTION["description"] = "`reset_status` from 3.20; the replication actions (3.38) answer 501."
GROUP_SNAPSHOT_CREATE = wrap(
    "group_snapshot", body_obj({"group_id": UUID_IN, "name": NS255, "description": NS255}, ["group_id"])
)
GROUP_SNAPSHOT_ACTION = one_key_actions({"reset_status": body_obj({"status": S255}, ["status"])})

QUOTA_VALUE = {
    "oneOf": [
        {"type": "integer", "minimum": -1, "maximum": 2147483647},
        {"type": "string", "pattern": "^(-1|[0-9]{1,10})$"},
    ]
}
QUOTA_SET_BODY = wrap(
    "quota_set",
    {"type": "object", "properties": {"tenant_id": {}, "id": {}}, "additionalProperties": QUOTA_VALUE},
)
QUOTA_CLASS_BODY = wrap(
    "quota_class_set",
    {"type": "object", "properties": {"tenant_id": {}, "id": {}}, "additionalProperties": QUOTA_VALUE},
)
SERVICE_BODY = body_obj({"host": NAME_REQ, "binary": NS255, "disabled_reason": NAME_REQ}, ["host"], extra=True)
DEFAULT_TYPE_BODY = wrap("default_type", body_obj({"volume_type": NAME_REQ}, ["volume_type"], extra=True))

# --- responses --------------------------------------------------------------------


def with_links(key: str, item: dict, count: bool = False) -> dict:
    props = {key: arr(item), f"{key}_links": ref("Links")}
    if count:
        props["count"] = INT
    return obj(props, [key])


# --- paths ------------------------------------------------------------------------

P = "/v3/{project_id}"
PROJECT = {"$ref": "#/components/parameters/project_id"}
PATHS: dict[str, dict] = {}


def route(path: str, params: list, **ops) -> None:
    item = dict(ops)
    if params:
        item["parameters"] = params
    PATHS[path] = item


NO_CONTENT = None
VOL = path_param("volume_id")
SNAP = path_param("snapshot_id")
KEY = path_param("key")

# Version documents, metrics, this document.
route(
    "/",
    [],
    get=op(
        "The version document (300 Multiple Choices, as Cinder).",
        {300: ref("VersionDocument")},
        tag="versions",
        auth=False,
    ),
)
route(
    "/v3/",
    [],
    get=op("The v3 version document.", {200: ref("VersionDocument")}, tag="versions", auth=False),
)
route(
    "/v3",
    [],
    get=op("The v3 version document (as `/v3/`).", {200: ref("VersionDocument")}, tag="versions", auth=False),
)
route(
    "/openapi.json",
    [],
    get=op(
        "This document.",
        {
            200: obj(
                {"openapi": {"const": "3.1.0"}, "info": {"type": "object"}, "paths": {"type": "object"}},
                ["openapi", "info", "paths"],
            )
        },
        tag="versions",
        auth=False,
    ),
)
_metrics = op(
    "Prometheus/OpenMetrics text of the daemon's metrics (admins: `hearth:metrics`).",
    {200: NO_CONTENT},
    tag="metrics",
    errors=[],
)
_metrics["responses"]["200"]["content"] = {
    "application/openmetrics-text; version=1.0.0; charset=utf-8": {"schema": {"type": "string"}}
}
route("/metrics", [], get=_metrics)

# Volumes.
VOLUME_FILTERS = [
    query(k, STR)
    for k in [
        "name",
        "status",
        "metadata",
        "bootable",
        "availability_zone",
        "size",
        "created_at",
        "updated_at",
        "group_id",
    ]
]
route(
    f"{P}/volumes",
    [PROJECT],
    get=op(
        "List volumes (id, name, links).",
        {200: with_links("volumes", ref("VolumeBrief"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT] + VOLUME_FILTERS,
        tag="volumes",
    ),
    post=op("Create a volume.", {202: wrap("volume", ref("Volume"))}, body=VOLUME_CREATE, tag="volumes"),
)
route(
    f"{P}/volumes/detail",
    [PROJECT],
    get=op(
        "List volumes in full.",
        {200: with_links("volumes", ref("Volume"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT] + VOLUME_FILTERS,
        tag="volumes",
    ),
)
route(
    f"{P}/volumes/summary",
    [PROJECT],
    get=op(
        "Volume count and size (3.12; `metadata` from 3.36).",
        {
            200: wrap(
                "volume-summary",
                obj(
                    {
                        "total_size": INT,
                        "total_count": INT,
                        "metadata": {"type": "object", "additionalProperties": arr(STR)},
                    },
                    ["total_size", "total_count"],
                ),
            )
        },
        params=[ALL_TENANTS],
        tag="volumes",
    ),
)
route(
    f"{P}/volumes/{{volume_id}}",
    [PROJECT, VOL],
    get=op("Show a volume.", {200: wrap("volume", ref("Volume"))}, tag="volumes"),
    put=op(
        "Update a volume's name, description or metadata.",
        {200: wrap("volume", ref("Volume"))},
        body=VOLUME_UPDATE,
        tag="volumes",
    ),
    delete=op(
        "Delete a volume.",
        {202: NO_CONTENT},
        params=[query("cascade", FLAG_Q, "Delete its snapshots too."), query("force", FLAG_Q, "3.23.")],
        tag="volumes",
    ),
)
route(
    f"{P}/volumes/{{volume_id}}/action",
    [PROJECT, VOL],
    post=op(
        "A volume action.",
        {
            200: {
                "description": "`os-initialize_connection` answers `connection_info`; `os-set_bootable` "
                "answers 200 with no body.",
                **wrap("connection_info", ref("ConnectionInfo")),
            },
            202: NO_CONTENT,
        },
        body=VOLUME_ACTION,
        errors=[409, 501],
        tag="volumes",
    ),
)
ENC_META = obj(
    {"encryption_key_id": NSTR, "control_location": STR, "cipher": NSTR, "key_size": NINT, "provider": STR},
    ["encryption_key_id"],
)
route(
    f"{P}/volumes/{{volume_id}}/encryption",
    [PROJECT, VOL],
    get=op("A volume's encryption metadata.", {200: ENC_META}, tag="volumes"),
)
route(
    f"{P}/volumes/{{volume_id}}/encryption/{{key}}",
    [PROJECT, VOL, KEY],
    get=op(
        "One item of a volume's encryption metadata (the bare value).",
        {200: {"type": ["string", "integer", "null"]}},
        tag="volumes",
    ),
)
for kind, idp, tag in [("volumes", VOL, "volumes"), ("snapshots", SNAP, "snapshots")]:
    idname = idp["name"]
    route(
        f"{P}/{kind}/{{{idname}}}/metadata",
        [PROJECT, idp],
        get=op("Show the metadata.", {200: wrap("metadata", ref("Metadata"))}, tag=tag),
        post=op("Merge into the metadata.", {200: wrap("metadata", ref("Metadata"))}, body=METADATA_BODY, tag=tag),
        put=op("Replace the metadata.", {200: wrap("metadata", ref("Metadata"))}, body=METADATA_BODY, tag=tag),
    )
    route(
        f"{P}/{kind}/{{{idname}}}/metadata/{{key}}",
        [PROJECT, idp, KEY],
        get=op("Show one metadata item.", {200: wrap("meta", ref("Metadata"))}, tag=tag),
        put=op(
            "Set one metadata item (the body names the key of the URL).",
            {200: wrap("meta", ref("Metadata"))},
            body=META_ONE_BODY,
            tag=tag,
        ),
        delete=op("Delete one metadata item.", {200: NO_CONTENT}, tag=tag),
    )

# Snapshots.
SNAPSHOT_FILTERS = [query(k, STR) for k in ["name", "status", "volume_id", "metadata"]]
route(
    f"{P}/snapshots",
    [PROJECT],
    get=op(
        "List snapshots.",
        {200: with_links("snapshots", ref("Snapshot"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT] + SNAPSHOT_FILTERS,
        tag="snapshots",
    ),
    post=op("Create a snapshot.", {202: wrap("snapshot", ref("Snapshot"))}, body=SNAPSHOT_CREATE, tag="snapshots"),
)
route(
    f"{P}/snapshots/detail",
    [PROJECT],
    get=op(
        "List snapshots in full.",
        {200: with_links("snapshots", ref("Snapshot"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT] + SNAPSHOT_FILTERS,
        tag="snapshots",
    ),
)
route(
    f"{P}/snapshots/{{snapshot_id}}",
    [PROJECT, SNAP],
    get=op("Show a snapshot.", {200: wrap("snapshot", ref("Snapshot"))}, tag="snapshots"),
    put=op(
        "Update a snapshot's name or description.",
        {200: wrap("snapshot", ref("Snapshot"))},
        body=SNAPSHOT_UPDATE,
        tag="snapshots",
    ),
    delete=op("Delete a snapshot.", {202: NO_CONTENT}, tag="snapshots"),
)
route(
    f"{P}/snapshots/{{snapshot_id}}/action",
    [PROJECT, SNAP],
    post=op("A snapshot action.", {202: NO_CONTENT}, body=SNAPSHOT_ACTION, tag="snapshots"),
)

# Attachments (3.27).
ATT = path_param("attachment_id")
ATTACHMENT_FILTERS = [query(k, STR) for k in ["volume_id", "instance_id", "status", "attach_status"]]
route(
    f"{P}/attachments",
    [PROJECT],
    get=op(
        "List attachments (3.27).",
        {200: wrap("attachments", arr(ref("Attachment")))},
        params=PAGING[:3] + [ALL_TENANTS] + ATTACHMENT_FILTERS,
        tag="attachments",
    ),
    post=op(
        "Create an attachment (3.27).",
        {200: wrap("attachment", ref("Attachment"))},
        body=ATTACHMENT_CREATE,
        tag="attachments",
    ),
)
route(
    f"{P}/attachments/detail",
    [PROJECT],
    get=op(
        "List attachments in full (3.27).",
        {200: wrap("attachments", arr(ref("Attachment")))},
        params=PAGING[:3] + [ALL_TENANTS] + ATTACHMENT_FILTERS,
        tag="attachments",
    ),
)
route(
    f"{P}/attachments/{{attachment_id}}",
    [PROJECT, ATT],
    get=op("Show an attachment.", {200: wrap("attachment", ref("Attachment"))}, tag="attachments"),
    put=op(
        "Update an attachment with a connector.",
        {200: wrap("attachment", ref("Attachment"))},
        body=ATTACHMENT_UPDATE,
        tag="attachments",
    ),
    delete=op(
        "Delete an attachment; answers the volume's remaining attachments.",
        {200: wrap("attachments", arr(ref("Attachment")))},
        tag="attachments",
    ),
)
route(
    f"{P}/attachments/{{attachment_id}}/action",
    [PROJECT, ATT],
    post=op(
        "Complete an attachment (`os-complete`, 3.44).", {204: NO_CONTENT}, body=ATTACHMENT_ACTION, tag="attachments"
    ),
)

# Backups.
BK = path_param("backup_id")
BACKUP_FILTERS = [query(k, STR) for k in ["name", "status", "volume_id"]]
WITH_PROGRESS = query("with_progress", FLAG_Q, "hearth: add `progress`.")
route(
    f"{P}/backups",
    [PROJECT],
    get=op(
        "List backups.",
        {200: with_links("backups", ref("BackupSummary"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT] + BACKUP_FILTERS,
        tag="backups",
    ),
    post=op("Create a backup.", {202: wrap("backup", ref("BackupSummary"))}, body=BACKUP_CREATE, tag="backups"),
)
route(
    f"{P}/backups/detail",
    [PROJECT],
    get=op(
        "List backups in full.",
        {200: with_links("backups", ref("Backup"), True)},
        params=PAGING + [ALL_TENANTS, WITH_COUNT, WITH_PROGRESS] + BACKUP_FILTERS,
        tag="backups",
    ),
)
route(
    f"{P}/backups/import_record",
    [PROJECT],
    post=op(
        "Import a backup record.",
        {201: wrap("backup", ref("BackupSummary"))},
        body=BACKUP_IMPORT,
        errors=[409],
        tag="backups",
    ),
)
route(
    f"{P}/backups/{{backup_id}}",
    [PROJECT, BK],
    get=op("Show a backup.", {200: wrap("backup", ref("Backup"))}, params=[WITH_PROGRESS], tag="backups"),
    put=op("Update a backup (3.9).", {200: wrap("backup", ref("BackupSummary"))}, body=BACKUP_UPDATE, tag="backups"),
    delete=op("Delete a backup.", {202: NO_CONTENT}, tag="backups"),
)
route(
    f"{P}/backups/{{backup_id}}/restore",
    [PROJECT, BK],
    post=op(
        "Restore a backup to a new or an existing volume.",
        {
            202: wrap(
                "restore", obj({"backup_id": STR, "volume_id": STR, "volume_name": NSTR}, ["backup_id", "volume_id"])
            )
        },
        body=BACKUP_RESTORE,
        tag="backups",
    ),
)
route(
    f"{P}/backups/{{backup_id}}/export_record",
    [PROJECT, BK],
    get=op(
        "Export a backup record.",
        {200: wrap("backup-record", obj({"backup_service": STR, "backup_url": STR}, ["backup_service", "backup_url"]))},
        tag="backups",
    ),
)
route(
    f"{P}/backups/{{backup_id}}/action",
    [PROJECT, BK],
    post=op(
        "A backup action (`os-verify` is hearth's: it answers a report).",
        {200: wrap("verify", {"type": "object"}), 202: NO_CONTENT},
        body=BACKUP_ACTION,
        tag="backups",
    ),
)

# Transfers: the extension route and the versioned one (3.55).
TR = path_param("transfer_id")
TRANSFER_FILTERS = [query(k, STR) for k in ["name", "id", "volume_id", "source_project_id", "project_id"]] + [
    query("no_snapshots", FLAG_Q),
    query("accepted", FLAG_Q),
]
for base, body, note in [
    ("os-volume-transfer", TRANSFER_CREATE_EXT, ""),
    ("volume-transfers", TRANSFER_CREATE, " (3.55)"),
]:
    route(
        f"{P}/{base}",
        [PROJECT],
        get=op(
            f"List transfers{note}.",
            {200: with_links("transfers", ref("TransferSummary"))},
            params=PAGING + [ALL_TENANTS] + TRANSFER_FILTERS,
            tag="transfers",
        ),
        post=op(
            f"Offer a volume for transfer{note}; the answer has the `auth_key`.",
            {202: wrap("transfer", ref("Transfer"))},
            body=body,
            tag="transfers",
        ),
    )
    route(
        f"{P}/{base}/detail",
        [PROJECT],
        get=op(
            f"List transfers in full{note}.",
            {200: with_links("transfers", ref("Transfer"))},
            params=PAGING + [ALL_TENANTS] + TRANSFER_FILTERS,
            tag="transfers",
        ),
    )
    route(
        f"{P}/{base}/{{transfer_id}}",
        [PROJECT, TR],
        get=op(f"Show a transfer{note}.", {200: wrap("transfer", ref("Transfer"))}, tag="transfers"),
        delete=op(f"Cancel a transfer{note}.", {202: NO_CONTENT}, tag="transfers"),
    )
    route(
        f"{P}/{base}/{{transfer_id}}/accept",
        [PROJECT, TR],
        post=op(
            f"Accept a transfer{note}.",
            {202: wrap("transfer", ref("TransferSummary"))},
            body=TRANSFER_ACCEPT,
            tag="transfers",
        ),
    )

# Volume types, extra specs, access, encryption.
TY = path_param("volume_type_id")
route(
    f"{P}/types",
    [PROJECT],
    get=op(
        "List volume types.",
        {200: wrap("volume_types", arr(ref("VolumeType")))},
        params=[
            query("is_public", {"type": "string", "enum": ["true", "false", "none", "None"]}),
            query("name", STR),
            query("extra_specs", STR, "3.52: a JSON object."),
        ],
        tag="types",
    ),
    post=op(
        "Create a volume type.",
        {200: wrap("volume_type", ref("VolumeType"))},
        body=TYPE_CREATE,
        errors=[409],
        tag="types",
    ),
)
route(
    f"{P}/types/default",
    [PROJECT],
    get=op("The default volume type.", {200: wrap("volume_type", ref("VolumeType"))}, tag="types"),
)
route(
    f"{P}/types/{{volume_type_id}}",
    [PROJECT, TY],
    get=op("Show a volume type.", {200: wrap("volume_type", ref("VolumeType"))}, tag="types"),
    put=op(
        "Update a volume type.",
        {200: wrap("volume_type", ref("VolumeType"))},
        body=TYPE_UPDATE,
        errors=[409],
        tag="types",
    ),
    delete=op("Delete a volume type.", {202: NO_CONTENT}, tag="types"),
)
route(
    f"{P}/types/{{volume_type_id}}/extra_specs",
    [PROJECT, TY],
    get=op("A type's extra specs.", {200: wrap("extra_specs", ref("Metadata"))}, tag="types"),
    post=op("Set extra specs.", {200: wrap("extra_specs", ref("Metadata"))}, body=EXTRA_SPECS_BODY, tag="types"),
)
route(
    f"{P}/types/{{volume_type_id}}/extra_specs/{{key}}",
    [PROJECT, TY, KEY],
    get=op('One extra spec: `{"<key>": "<value>"}`.', {200: {**ref("Metadata"), "minProperties": 1}}, tag="types"),
    put=op("Set one extra spec.", {200: ref("Metadata")}, body=ONE_SPEC_BODY, tag="types"),
    delete=op("Delete one extra spec.", {202: NO_CONTENT}, tag="types"),
)
route(
    f"{P}/types/{{volume_type_id}}/action",
    [PROJECT, TY],
    post=op(
        "Grant or revoke a project's access to a private type.",
        {202: NO_CONTENT},
        body=TYPE_ACTION,
        errors=[409],
        tag="types",
    ),
)
route(
    f"{P}/types/{{volume_type_id}}/os-volume-type-access",
    [PROJECT, TY],
    get=op(
        "The projects with access to a private type.",
        {
            200: wrap(
                "volume_type_access",
                arr(obj({"volume_type_id": STR, "project_id": STR}, ["volume_type_id", "project_id"])),
            )
        },
        tag="types",
    ),
)
route(
    f"{P}/types/{{volume_type_id}}/encryption",
    [PROJECT, TY],
    get=op("A type's encryption (`{}` when it has none).", {200: ref("TypeEncryption")}, tag="types"),
    post=op(
        "Make a type encrypted.",
        {200: wrap("encryption", ref("TypeEncryption"))},
        body=ENCRYPTION_CREATE,
        errors=[409],
        tag="types",
    ),
)
route(
    f"{P}/types/{{volume_type_id}}/encryption/{{key}}",
    [PROJECT, TY, path_param("key", "GET: a field of the encryption; PUT and DELETE: the encryption id.")],
    get=op(
        'One field of a type\'s encryption: `{"<key>": value}`.',
        {200: {"type": "object", "minProperties": 1}},
        tag="types",
    ),
    put=op(
        "Update a type's encryption; answers the fields given.",
        {200: wrap("encryption", ref("TypeEncryption"))},
        body=ENCRYPTION_UPDATE,
        tag="types",
    ),
    delete=op("Remove a type's encryption.", {202: NO_CONTENT}, tag="types"),
)

# QoS specs.
QS = path_param("qos_id")
VOL_TYPE_Q = query("vol_type_id", {"type": "string", "minLength": 1}, "The volume type.")
QOS_ONE = obj({"qos_specs": ref("QosSpecs"), "links": ref("Links")}, ["qos_specs", "links"])
route(
    f"{P}/qos-specs",
    [PROJECT],
    get=op(
        "List QoS specs.",
        {200: with_links("qos_specs", ref("QosSpecs"))},
        params=PAGING + [query("id", STR), query("name", STR), query("consumer", STR)],
        tag="qos",
    ),
    post=op("Create QoS specs.", {200: QOS_ONE}, body=QOS_CREATE, errors=[409], tag="qos"),
)
route(
    f"{P}/qos-specs/{{qos_id}}",
    [PROJECT, QS],
    get=op("Show QoS specs.", {200: QOS_ONE}, tag="qos"),
    put=op(
        "Set keys (and the consumer); answers what was given.",
        {200: wrap("qos_specs", {"type": "object"})},
        body=QOS_UPDATE,
        tag="qos",
    ),
    delete=op(
        "Delete QoS specs.", {202: NO_CONTENT}, params=[query("force", FLAG_Q, "Even when associated.")], tag="qos"
    ),
)
route(
    f"{P}/qos-specs/{{qos_id}}/delete_keys",
    [PROJECT, QS],
    put=op("Delete keys.", {202: NO_CONTENT}, body=QOS_DELETE_KEYS, tag="qos"),
)
route(
    f"{P}/qos-specs/{{qos_id}}/associations",
    [PROJECT, QS],
    get=op(
        "The volume types associated.",
        {
            200: wrap(
                "qos_associations",
                arr(obj({"association_type": STR, "name": STR, "id": STR}, ["association_type", "name", "id"])),
            )
        },
        tag="qos",
    ),
)
route(
    f"{P}/qos-specs/{{qos_id}}/associate",
    [PROJECT, QS],
    get=op("Associate with a volume type.", {202: NO_CONTENT}, params=[VOL_TYPE_Q], tag="qos"),
)
route(
    f"{P}/qos-specs/{{qos_id}}/disassociate",
    [PROJECT, QS],
    get=op("Disassociate from a volume type.", {202: NO_CONTENT}, params=[VOL_TYPE_Q], tag="qos"),
)
route(
    f"{P}/qos-specs/{{qos_id}}/disassociate_all",
    [PROJECT, QS],
    get=op("Disassociate from every volume type.", {202: NO_CONTENT}, tag="qos"),
)

# Messages (3.3).
MSG = path_param("message_id")
route(
    f"{P}/messages",
    [PROJECT],
    get=op(
        "List user messages (3.3; paging, sorting and filters from 3.5).",
        {200: with_links("messages", ref("Message"))},
        params=PAGING
        + [query(k, STR) for k in ["resource_uuid", "resource_type", "event_id", "request_id", "message_level"]],
        tag="messages",
    ),
)
route(
    f"{P}/messages/{{message_id}}",
    [PROJECT, MSG],
    get=op("Show a message.", {200: wrap("message", ref("Message"))}, tag="messages"),
    delete=op("Delete a message.", {204: NO_CONTENT}, tag="messages"),
)

# Default types (3.62).
TP = path_param("target_project_id", "The project whose default type this is.")
route(
    f"{P}/default-types",
    [PROJECT],
    get=op(
        "Every project's default type (3.62).",
        {200: wrap("default_types", arr(ref("DefaultType")))},
        tag="default-types",
    ),
)
route(
    f"{P}/default-types/{{target_project_id}}",
    [PROJECT, TP],
    get=op("A project's default type (3.62).", {200: wrap("default_type", ref("DefaultType"))}, tag="default-types"),
    put=op(
        "Set a project's default type (3.62).",
        {200: wrap("default_type", ref("DefaultType"))},
        body=DEFAULT_TYPE_BODY,
        tag="default-types",
    ),
    delete=op("Unset a project's default type (3.62).", {204: NO_CONTENT}, tag="default-types"),
)

# Group types (3.11).
GT = path_param("group_type_id")
route(
    f"{P}/group_types",
    [PROJECT],
    get=op(
        "List group types (3.11).",
        {200: with_links("group_types", ref("GroupType"))},
        params=PAGING + [query("is_public", {"type": "string", "enum": ["true", "false", "none", "None"]})],
        tag="group-types",
    ),
    post=op(
        "Create a group type.",
        {202: wrap("group_type", ref("GroupType"))},
        body=GROUP_TYPE_CREATE,
        errors=[409],
        tag="group-types",
    ),
)
route(
    f"{P}/group_types/default",
    [PROJECT],
    get=op("The default group type.", {200: wrap("group_type", ref("GroupType"))}, tag="group-types"),
)
route(
    f"{P}/group_types/{{group_type_id}}",
    [PROJECT, GT],
    get=op("Show a group type.", {200: wrap("group_type", ref("GroupType"))}, tag="group-types"),
    put=op(
        "Update a group type.",
        {200: wrap("group_type", ref("GroupType"))},
        body=GROUP_TYPE_UPDATE,
        errors=[409],
        tag="group-types",
    ),
    delete=op("Delete a group type.", {202: NO_CONTENT}, tag="group-types"),
)
route(
    f"{P}/group_types/{{group_type_id}}/group_specs",
    [PROJECT, GT],
    get=op("A group type's specs.", {200: wrap("group_specs", ref("Metadata"))}, tag="group-types"),
    post=op("Set group specs.", {202: wrap("group_specs", ref("Metadata"))}, body=GROUP_SPECS_BODY, tag="group-types"),
)
route(
    f"{P}/group_types/{{group_type_id}}/group_specs/{{key}}",
    [PROJECT, GT, KEY],
    get=op(
        'One group spec: `{"<key>": "<value>"}`.', {200: {**ref("Metadata"), "minProperties": 1}}, tag="group-types"
    ),
    put=op("Set one group spec.", {200: ref("Metadata")}, body=ONE_GROUP_SPEC_BODY, tag="group-types"),
    delete=op("Delete one group spec.", {202: NO_CONTENT}, tag="group-types"),
)

# Groups (3.13).
GR = path_param("group_id")
GROUP_LIST_PARAMS = PAGING + [ALL_TENANTS, query("name", STR), query("list_volume", FLAG_Q, "3.25: add `volumes`.")]
route(
    f"{P}/groups",
    [PROJECT],
    get=op(
        "List groups (3.13).", {200: with_links("groups", ref("GroupSummary"))}, params=GROUP_LIST_PARAMS, tag="groups"
    ),
    post=op("Create a group.", {202: wrap("group", ref("GroupSummary"))}, body=GROUP_CREATE, tag="groups"),
)
PATHS[f"{P}/groups"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = obj(
    {"groups": arr(ref("GroupSummary")), "group_links": ref("Links")}, ["groups"]
)
route(
    f"{P}/groups/detail",
    [PROJECT],
    get=op(
        "List groups in full.",
        {200: obj({"groups": arr(ref("Group")), "group_links": ref("Links")}, ["groups"])},
        params=GROUP_LIST_PARAMS,
        tag="groups",
    ),
)
route(
    f"{P}/groups/action",
    [PROJECT],
    post=op(
        "Create a group from a group snapshot or another group (3.14).",
        {202: wrap("group", ref("GroupSummary"))},
        body=GROUP_COLLECTION_ACTION,
        tag="groups",
    ),
)
route(
    f"{P}/groups/{{group_id}}",
    [PROJECT, GR],
    get=op(
        "Show a group.",
        {200: wrap("group", ref("Group"))},
        params=[query("list_volume", FLAG_Q, "3.25: add `volumes`.")],
        tag="groups",
    ),
    put=op("Update a group (name, description, volumes).", {202: NO_CONTENT}, body=GROUP_UPDATE, tag="groups"),
)
route(
    f"{P}/groups/{{group_id}}/action",
    [PROJECT, GR],
    post=op("A group action.", {202: NO_CONTENT}, body=GROUP_ACTION, errors=[501], tag="groups"),
)

# Group snapshots (3.14).
GS = path_param("group_snapshot_id")
GS_LIST_PARAMS = PAGING + [ALL_TENANTS] + [query(k, STR) for k in ["name", "status", "group_id"]]
GS_LIST_BRIEF = obj(
    {"group_snapshots": arr(ref("GroupSummary")), "group_snapshot_links": ref("Links")}, ["group_snapshots"]
)
GS_LIST = obj({"group_snapshots": arr(ref("GroupSnapshot")), "group_snapshot_links": ref("Links")}, ["group_snapshots"])
route(
    f"{P}/group_snapshots",
    [PROJECT],
    get=op(
        "List group snapshots (3.14; filters from 3.29).",
        {200: GS_LIST_BRIEF},
        params=GS_LIST_PARAMS,
        tag="group-snapshots",
    ),
    post=op(
        "Create a group snapshot.",
        {202: wrap("group_snapshot", ref("GroupSnapshotSummary"))},
        body=GROUP_SNAPSHOT_CREATE,
        tag="group-snapshots",
    ),
)
route(
    f"{P}/group_snapshots/detail",
    [PROJECT],
    get=op("List group snapshots in full.", {200: GS_LIST}, params=GS_LIST_PARAMS, tag="group-snapshots"),
)
route(
    f"{P}/group_snapshots/{{group_snapshot_id}}",
    [PROJECT, GS],
    get=op("Show a group snapshot.", {200: wrap("group_snapshot", ref("GroupSnapshot"))}, tag="group-snapshots"),
    delete=op("Delete a group snapshot.", {202: NO_CONTENT}, tag="group-snapshots"),
)
route(
    f"{P}/group_snapshots/{{group_snapshot_id}}/action",
    [PROJECT, GS],
    post=op(
        "Reset a group snapshot's status (3.19).", {202: NO_CONTENT}, body=GROUP_SNAPSHOT_ACTION, tag="group-snapshots"
    ),
)

# Limits, quotas.
route(
    f"{P}/resource_filters",
    [PROJECT],
    get=op(
        "The filters non-admins may use, by resource (3.33).",
        {200: wrap("resource_filters", arr(obj({"resource": STR, "filters": arr(STR)}, ["resource", "filters"])))},
        params=[query("resource", STR)],
        tag="admin",
    ),
)
LIMIT_KEYS = [
    "maxTotalVolumes",
    "maxTotalSnapshots",
    "maxTotalVolumeGigabytes",
    "maxTotalBackups",
    "maxTotalBackupGigabytes",
    "totalVolumesUsed",
    "totalSnapshotsUsed",
    "totalGigabytesUsed",
    "totalBackupsUsed",
    "totalBackupGigabytesUsed",
]
route(
    f"{P}/limits",
    [PROJECT],
    get=op(
        "The project's absolute limits and use.",
        {
            200: wrap(
                "limits",
                obj({"rate": arr({}), "absolute": obj({k: INT for k in LIMIT_KEYS}, LIMIT_KEYS)}, ["rate", "absolute"]),
            )
        },
        params=[query("project_id", STR, "3.39, admins: another project's.")],
        tag="quotas",
    ),
)
route(
    f"{P}/os-quota-sets/{{target_project_id}}",
    [PROJECT, TP],
    get=op(
        "A project's quotas.",
        {200: wrap("quota_set", ref("QuotaSet"))},
        params=[query("usage", FLAG_Q, "Limits with use.")],
        tag="quotas",
    ),
    put=op(
        "Set a project's quotas.",
        {200: wrap("quota_set", ref("QuotaSet"))},
        body=QUOTA_SET_BODY,
        params=[query("skip_validation", FLAG_Q)],
        tag="quotas",
    ),
    delete=op("Reset a project's quotas to the defaults.", {200: NO_CONTENT}, tag="quotas"),
)
route(
    f"{P}/os-quota-sets/{{target_project_id}}/defaults",
    [PROJECT, TP],
    get=op("The default quotas.", {200: wrap("quota_set", ref("QuotaSet"))}, tag="quotas"),
)
route(
    f"{P}/os-quota-class-sets/{{quota_class_name}}",
    [PROJECT, path_param("quota_class_name", "Only `default`.")],
    get=op("A quota class.", {200: wrap("quota_class_set", ref("QuotaSet"))}, tag="quotas"),
    put=op("Set a quota class.", {200: wrap("quota_class_set", ref("QuotaSet"))}, body=QUOTA_CLASS_BODY, tag="quotas"),
)

# Scheduler, zones, services, hosts, capabilities, extensions.
route(
    f"{P}/scheduler-stats/get_pools",
    [PROJECT],
    get=op(
        "The backend pools (admins).",
        {200: wrap("pools", arr(ref("Pool")))},
        params=[query("detail", FLAG_Q, "With capabilities."), query("name", STR)],
        tag="admin",
    ),
)
route(
    f"{P}/os-availability-zone",
    [PROJECT],
    get=op(
        "The availability zones.",
        {
            200: wrap(
                "availabilityZoneInfo",
                arr(
                    obj(
                        {"zoneName": STR, "zoneState": obj({"available": BOOL}, ["available"])},
                        ["zoneName", "zoneState"],
                    )
                ),
            )
        },
        tag="admin",
    ),
)
route(
    f"{P}/os-services",
    [PROJECT],
    get=op(
        "The services (admins).",
        {200: wrap("services", arr(ref("Service")))},
        params=[query("host", STR), query("binary", STR)],
        tag="admin",
    ),
)
SERVICE_UPDATED = obj(
    {
        "host": STR,
        "binary": STR,
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled": BOOL,
        "disabled_reason": NSTR,
    },
    ["host", "binary", "status", "disabled"],
)
for action, summary in [("enable", "Enable a service."), ("disable", "Disable a service.")]:
    route(
        f"{P}/os-services/{action}",
        [PROJECT],
        put=op(
            summary,
            {200: SERVICE_UPDATED},
            body={
                **SERVICE_BODY,
                "properties": {k: v for k, v in SERVICE_BODY["properties"].items() if k != "disabled_reason"},
            },
            tag="admin",
        ),
    )
route(
    f"{P}/os-services/disable-log-reason",
    [PROJECT],
    put=op(
        "Disable a service with a reason.",
        {200: SERVICE_UPDATED},
        body={**SERVICE_BODY, "required": ["host", "disabled_reason"]},
        tag="admin",
    ),
)
for action, summary in [("freeze", "Freeze a volume host."), ("thaw", "Thaw a volume host.")]:
    route(
        f"{P}/os-services/{action}",
        [PROJECT],
        put=op(summary, {200: NO_CONTENT}, body=body_obj({"host": NAME_REQ}, ["host"], extra=True), tag="admin"),
    )
route(
    f"{P}/os-services/set-log",
    [PROJECT],
    put=op(
        "Set the daemon's log level (3.32).",
        {202: NO_CONTENT},
        body=body_obj(
            {
                "level": {
                    "type": "string",
                    "enum": [
                        "DEBUG",
                        "INFO",
                        "WARNING",
                        "WARN",
                        "ERROR",
                        "CRITICAL",
                        "debug",
                        "info",
                        "warning",
                        "error",
                    ],
                }
            },
            ["level"],
            extra=True,
        ),
        tag="admin",
    ),
)
route(
    f"{P}/os-services/get-log",
    [PROJECT],
    put=op(
        "The daemon's log level (3.32).",
        {
            200: wrap(
                "log_levels",
                arr(
                    obj(
                        {"binary": STR, "host": STR, "levels": {"type": "object", "additionalProperties": STR}},
                        ["binary", "host", "levels"],
                    )
                ),
            )
        },
        body={"type": "object"},
        body_required=False,
        tag="admin",
    ),
)
HOST = path_param("host_name", "A volume host (`host@backend`), percent-encoded.")
route(
    f"{P}/os-hosts",
    [PROJECT],
    get=op(
        "The hosts (admins).",
        {
            200: wrap(
                "hosts",
                arr(
                    obj(
                        {
                            "service-status": STR,
                            "service": STR,
                            "zone": STR,
                            "service-state": STR,
                            "host_name": STR,
                            "last-update": NSTR,
                        },
                        ["service-status", "service", "zone", "service-state", "host_name"],
                    )
                ),
            )
        },
        params=[query("zone", STR)],
        tag="admin",
    ),
)
HOST_ROW = obj(
    {
        "resource": obj(
            {
                k: STR
                for k in ["host", "project", "volume_count", "total_volume_gb", "snapshot_count", "total_snapshot_gb"]
            },
            ["host", "project", "volume_count", "total_volume_gb", "snapshot_count", "total_snapshot_gb"],
        )
    },
    ["resource"],
)
route(
    f"{P}/os-hosts/{{host_name}}",
    [PROJECT, HOST],
    get=op("A host's use by project (the first row is the total).", {200: wrap("host", arr(HOST_ROW))}, tag="admin"),
    put=op(
        "Enable or disable a host (`maintenance_mode` is not provided: 501).",
        {200: obj({"host": STR, "status": {"type": "string", "enum": ["enabled", "disabled"]}}, ["host", "status"])},
        body={
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["enable", "disable"]}, "maintenance_mode": {}},
        },
        errors=[501],
        tag="admin",
    ),
)
route(
    f"{P}/capabilities/{{host_name}}",
    [PROJECT, HOST],
    get=op(
        "A backend's capabilities.",
        {
            200: obj(
                {
                    "namespace": STR,
                    "vendor_name": NSTR,
                    "volume_backend_name": NSTR,
                    "pool_name": NSTR,
                    "driver_version": NSTR,
                    "storage_protocol": NSTR,
                    "display_name": NSTR,
                    "description": NSTR,
                    "visibility": NSTR,
                    "replication_targets": arr({}),
                    "properties": {"type": "object"},
                },
                ["namespace", "properties"],
            )
        },
        tag="admin",
    ),
)
route(
    f"{P}/extensions",
    [PROJECT],
    get=op(
        "The API extensions Cinder clients look for.",
        {
            200: wrap(
                "extensions",
                arr(
                    obj(
                        {"alias": STR, "name": STR, "description": STR, "links": arr({}), "updated": STR},
                        ["alias", "name"],
                    )
                ),
            )
        },
        tag="admin",
    ),
)

# Links from each create to the operations on what it made, so that stateful tools
# (schemathesis' stateful phase) reach real objects instead of only 404s.
CREATES = [
    ("volumes", "202", "volume_id", "/volume/id"),
    ("snapshots", "202", "snapshot_id", "/snapshot/id"),
    ("attachments", "200", "attachment_id", "/attachment/id"),
    ("backups", "202", "backup_id", "/backup/id"),
    ("os-volume-transfer", "202", "transfer_id", "/transfer/id"),
    ("volume-transfers", "202", "transfer_id", "/transfer/id"),
    ("types", "200", "volume_type_id", "/volume_type/id"),
    ("qos-specs", "200", "qos_id", "/qos_specs/id"),
    ("group_types", "202", "group_type_id", "/group_type/id"),
    ("groups", "202", "group_id", "/group/id"),
    ("group_snapshots", "202", "group_snapshot_id", "/group_snapshot/id"),
]


def link_name(method: str, path: str) -> str:
    words = [w.strip("{}") for w in path.split("/")[3:]]
    return method.upper() + "_" + "_".join(w.replace("-", "_") for w in words)


for collection, status, id_name, pointer in CREATES:
    base = f"{P}/{collection}"
    prefix = f"{base}/{{{id_name}}}"
    links = {}
    for path, item in PATHS.items():
        if path != prefix and not path.startswith(prefix + "/"):
            continue
        for method in ("get", "put", "post", "delete"):
            if method not in item:
                continue
            links[link_name(method, path)] = {
                "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method,
                "parameters": {"project_id": "$request.path.project_id", id_name: f"$response.body#{pointer}"},
            }
    PATHS[base]["post"]["responses"][status]["links"] = links

DOC = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
    "info": {
        "title": "hearth: OpenStack Block Storage v3 API",
        "version": "3.67",
        "description": "What hearthd serves: the Cinder-compatible Block Storage v3 API (microversions "
        "3.0 to 3.67, negotiated with `OpenStack-API-Version`), its version documents, `/metrics` and "
        "this document. Every path under `/v3/{project_id}/` is also served as `/v3/...` without the "
        "project. Errors are Cinder's fault bodies (`#/components/schemas/Fault`). Every response "
        "carries `OpenStack-API-Version`, `Vary` and `x-openstack-request-id`. Generated by "
        "scripts/openapi/gen.py.",
    },
    "servers": [{"url": "http://127.0.0.1:8776"}],
    "security": [{"token": []}],
    "tags": [
        {"name": n}
        for n in [
            "versions",
            "metrics",
            "volumes",
            "snapshots",
            "attachments",
            "backups",
            "transfers",
            "types",
            "qos",
            "messages",
            "default-types",
            "group-types",
            "groups",
            "group-snapshots",
            "quotas",
            "admin",
        ]
    ],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "parameters": PARAMETERS,
        "responses": RESPONSES,
        "securitySchemes": {
            "token": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": 'A Keystone token; with `auth_strategy = "noauth"` any `user:project` '
                "(the URL's project wins). HTTP basic (`Authorization`) when configured.",
            }
        },
    },
}


def render() -> str:
    return json.dumps(DOC, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when docs/openapi.json is not current")
    args = ap.parse_args()
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is not current: run scripts/openapi/gen.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
