"""Backups with the real clients: the openstack CLI's `volume backup
create/list/show/set/restore/delete`, the cinder CLI's `backup-create
--incremental`, `backup-export` and `backup-import` (into a second hearthd on the
same backup repository, which restores it), and openstacksdk's backup calls.

The restored volumes hold the bytes the source held when it was backed up
(SHA-256 of the volume files, file backend). hearthd runs noauth, where every
project is an admin: policy is not what these tests check (tests/api_backups.rs
does), the clients' requests and the answers they need are.
"""

from __future__ import annotations

import os

from support import Clients, parse_kv, parse_table, sha256_file, wait_for, write_at

GIB = 1 << 30


def _volume_file(daemon, vid: str) -> str:
    return str(daemon.data_dir / "volumes" / "file" / f"volume-{vid}")


def _fill(daemon, vid: str, seed: int) -> None:
    """Some MiB of data spread over the volume."""
    path = _volume_file(daemon, vid)
    for i in range(6):
        write_at(path, i * 150 * (1 << 20), bytes([(seed + i + j) % 251 for j in range(256)]) * 4096)


def _os_volume(clients, name: str) -> str:
    vid = clients.openstack_json("volume", "create", "--size", "1", name)["id"]
    wait_for(lambda: clients.openstack_json("volume", "show", vid)["status"], lambda s: s == "available",
             f"{name} to become available", bad=lambda s: s.startswith("error"))
    return vid


def _os_backup_status(clients, ref: str) -> str:
    return clients.openstack_json("volume", "backup", "show", ref)["status"]


def _wait_os_backup(clients, ref: str) -> None:
    wait_for(lambda: _os_backup_status(clients, ref), lambda s: s == "available",
             f"backup {ref} to become available", bad=lambda s: s.startswith("error"))


def test_openstack_volume_backup_lifecycle(clients, hearthd):
    vid = _os_volume(clients, "bv1")
    _fill(hearthd, vid, 1)
    sha = sha256_file(_volume_file(hearthd, vid), GIB)

    # --- create, show, list -----------------------------------------------------
    created = clients.openstack_json("volume", "backup", "create", "--name", "ob1", "--description", "first", "bv1")
    bid = created["id"]
    assert created["name"] == "ob1", created
    _wait_os_backup(clients, "ob1")
    wait_for(lambda: clients.openstack_json("volume", "show", vid)["status"], lambda s: s == "available",
             "bv1 to be available again")
    shown = clients.openstack_json("volume", "backup", "show", "ob1")
    assert (shown["id"], shown["volume_id"], shown["description"]) == (bid, vid, "first"), shown
    assert shown["size"] == 1 and shown["is_incremental"] is False, shown
    listed = clients.openstack_json("volume", "backup", "list")
    assert [(b["ID"], b["Name"], b["Status"]) for b in listed] == [(bid, "ob1", "available")], listed
    long = clients.openstack_json("volume", "backup", "list", "--long")
    assert long[0]["Volume"] in (vid, "bv1"), long

    # --- set (3.9; properties 3.43) ---------------------------------------------------
    clients.openstack("--os-volume-api-version", "3.43", "volume", "backup", "set", "--name", "ob1x",
                      "--description", "renamed", "--property", "tier=gold", "ob1")
    shown = clients.openstack_json("--os-volume-api-version", "3.43", "volume", "backup", "show", bid)
    assert (shown["name"], shown["description"]) == ("ob1x", "renamed"), shown
    assert "gold" in str(shown.get("metadata", shown.get("properties"))), shown

    # --- restore into a new volume by name, and into the source with --force -----------
    clients.openstack("volume", "backup", "restore", "ob1x", "restored")
    wait_for(lambda: clients.openstack_json("volume", "show", "restored")["status"], lambda s: s == "available",
             "the restored volume", bad=lambda s: s.startswith("error"))
    rid = clients.openstack_json("volume", "show", "restored")["id"]
    assert sha256_file(_volume_file(hearthd, rid), GIB) == sha
    write_at(_volume_file(hearthd, vid), 0, b"\xff" * 65536)
    clients.openstack("volume", "backup", "restore", "--force", "ob1x", "bv1")
    wait_for(lambda: clients.openstack_json("volume", "show", vid)["status"], lambda s: s == "available",
             "bv1 restored", bad=lambda s: s.startswith("error"))
    assert sha256_file(_volume_file(hearthd, vid), GIB) == sha
    _wait_os_backup(clients, bid)

    # --- delete -------------------------------------------------------------------------
    clients.openstack("volume", "backup", "delete", "ob1x")
    wait_for(lambda: clients.openstack_json("volume", "backup", "list"), lambda l: l == [], "the backup to go")


def _cinder_backup_status(clients, ref: str) -> str:
    return parse_kv(clients.cinder("backup-show", ref).stdout)["status"]


def _wait_cinder_backup(clients, ref: str) -> dict[str, str]:
    wait_for(lambda: _cinder_backup_status(clients, ref), lambda s: s == "available",
             f"backup {ref} to become available", bad=lambda s: s.startswith("error"))
    return parse_kv(clients.cinder("backup-show", ref).stdout)


def _repo_config(tmp_path, name: str, repo) -> str:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f'backup_posix_path = "{repo}"\n\n[backends.file]\ndriver = "file"\n'
                   'volume_backend_name = "file"\n')
    return str(cfg)


def test_cinder_incremental_export_and_import(hearthd_factory, tmp_path):
    repo = tmp_path / "repository"
    first = hearthd_factory(config=_repo_config(tmp_path, "first", repo))
    clients = Clients(first, tmp_path / "home1")
    created = parse_kv(clients.cinder("create", "--name", "cv1", "1").stdout)
    vid = created["id"]
    wait_for(lambda: parse_kv(clients.cinder("show", vid).stdout)["status"], lambda s: s == "available",
             "cv1 to become available", bad=lambda s: s.startswith("error"))
    _fill(first, vid, 2)

    clients.cinder("backup-create", "--name", "full", "cv1")
    full = _wait_cinder_backup(clients, "full")
    assert full["is_incremental"] == "False", full
    write_at(_volume_file(first, vid), 300 * (1 << 20), b"\x5a" * 4096)
    sha = sha256_file(_volume_file(first, vid), GIB)
    clients.cinder("backup-create", "--incremental", "--name", "incr", "cv1")
    incr = _wait_cinder_backup(clients, "incr")
    assert incr["is_incremental"] == "True", incr
    assert parse_kv(clients.cinder("backup-show", "full").stdout)["has_dependent_backups"] == "True"
    rows = parse_table(clients.cinder("backup-list").stdout)
    assert sorted(r["Name"] for r in rows) == ["full", "incr"], rows

    # The parent cannot go while the incremental depends on it.
    res = clients.cinder("backup-delete", "full", expect_fail=True)
    assert "Incremental backups exist" in res.stderr + res.stdout, res.report("no reason given")

    # --- export, import into a second hearthd on the same repository, restore there --
    exported = parse_kv(clients.cinder("backup-export", incr["id"]).stdout)
    assert exported["backup_service"] == "cinder.backup.drivers.posix.PosixBackupDriver", exported
    second = hearthd_factory(config=_repo_config(tmp_path, "second", repo))
    other = Clients(second, tmp_path / "home2")
    imported = parse_kv(other.cinder("backup-import", exported["backup_service"], exported["backup_url"]).stdout)
    assert imported["id"] == incr["id"], imported
    got = _wait_cinder_backup(other, incr["id"])
    assert got["name"] == "incr" and got["volume_id"] == vid, got
    out = parse_kv(other.cinder("backup-restore", incr["id"]).stdout)
    nv = out["volume_id"]
    wait_for(lambda: parse_kv(other.cinder("show", nv).stdout)["status"], lambda s: s == "available",
             "the volume restored on the second hearthd", bad=lambda s: s.startswith("error"))
    assert sha256_file(_volume_file(second, nv), GIB) == sha

    # --- delete: the incremental first, then its parent ------------------------------
    clients.cinder("backup-delete", "incr")
    wait_for(lambda: [r["Name"] for r in parse_table(clients.cinder("backup-list").stdout)], lambda n: n == ["full"],
             "incr to go")
    clients.cinder("backup-delete", "full")
    wait_for(lambda: parse_table(clients.cinder("backup-list").stdout), lambda r: r == [], "full to go")


def test_openstacksdk_backups(sdk, hearthd):
    bs = sdk.block_storage
    vol = bs.create_volume(size=1, name="sdkv")
    bs.wait_for_status(vol, "available", failures=["error"], wait=120)
    _fill(hearthd, vol.id, 3)
    sha = sha256_file(_volume_file(hearthd, vol.id), GIB)
    backup = bs.create_backup(volume_id=vol.id, name="sdkbk")
    backup = bs.wait_for_status(backup, "available", failures=["error"], wait=120)
    assert backup.name == "sdkbk" and backup.volume_id == vol.id
    assert backup.is_incremental is False
    assert "sdkbk" in [b.name for b in bs.backups()]
    # restore into a new volume by name, then into the source volume
    bs.restore_backup(backup, name="sdk-restored")
    restored = bs.find_volume("sdk-restored")
    assert restored is not None
    restored = bs.wait_for_status(restored, "available", failures=["error", "error_restoring"], wait=120)
    assert sha256_file(_volume_file(hearthd, restored.id), GIB) == sha
    bs.wait_for_status(backup, "available", failures=["error"], wait=120)
    bs.restore_backup(backup, volume_id=vol.id)
    bs.wait_for_status(bs.get_volume(vol.id), "available", failures=["error", "error_restoring"], wait=120)
    bs.wait_for_status(backup, "available", failures=["error"], wait=120)
    bs.delete_backup(backup)
    bs.wait_for_delete(backup, wait=120)
    assert os.path.exists(_volume_file(hearthd, restored.id))
