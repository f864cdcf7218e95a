"""What a snapshot, a volume made from it, a clone and a revert contain, read
and written through the path os-brick's LOCAL connector hands out (the file
backend's "local" export: `device_path` is the volume's sparse file).

The volumes are attached the way Nova does it (attachments API with the
connector, os-brick connect_volume, os-complete) for every write and every
read, so the data goes through what a client is given, not through a guessed
path. Hashes are sha256 over the whole volume.
"""

from __future__ import annotations

import os

from support import (GiB, MiB, WAIT_TIMEOUT, LocalAttach, all_zero, read_at, sha256_file,
                     wait_volume_status, write_at)

CHUNK = 8 * MiB
OFF_A = 0                       # the first block
OFF_B = 700 * MiB + 12345       # unaligned, in the middle
OFF_C = GiB - CHUNK             # the last 8 MiB


def _attached_hash(bs, brick, vid, length=None) -> str:
    with LocalAttach(bs, brick, vid) as a:
        return sha256_file(a.path, length)


def test_snapshot_clone_and_revert_contents(sdk, brick):
    bs = sdk.block_storage
    src = wait_volume_status(bs, bs.create_volume(name="src", size=1).id, "available")

    # --- first contents; the snapshot ------------------------------------------------
    a1, b1 = os.urandom(CHUNK), os.urandom(CHUNK)
    with LocalAttach(bs, brick, src.id) as a:
        assert os.path.getsize(a.path) == GiB, a.path
        write_at(a.path, OFF_A, a1)
        write_at(a.path, OFF_B, b1)
        assert read_at(a.path, OFF_A, CHUNK) == a1
        assert read_at(a.path, OFF_B, CHUNK) == b1
        h1 = sha256_file(a.path)

    snap = bs.create_snapshot(volume_id=src.id, name="snap1")
    snap = bs.wait_for_status(snap, status="available", failures=["error"], interval=0.5,
                              wait=WAIT_TIMEOUT)

    # --- different contents in the source after the snapshot -------------------------
    a2, c2 = os.urandom(CHUNK), os.urandom(CHUNK)
    with LocalAttach(bs, brick, src.id) as a:
        write_at(a.path, OFF_A, a2)
        write_at(a.path, OFF_C, c2)
        h2 = sha256_file(a.path)
    assert h2 != h1

    # --- copies: from the snapshot (same size and larger), and a clone of now --------
    from_snap = bs.create_volume(name="from-snap", snapshot_id=snap.id)
    bigger = bs.create_volume(name="from-snap-2g", snapshot_id=snap.id, size=2)
    clone = bs.create_volume(name="clone", source_volume_id=src.id)
    for v in (from_snap, bigger, clone):
        wait_volume_status(bs, v.id, "available", f"{v.name} to become available")

    with LocalAttach(bs, brick, from_snap.id) as a:
        assert os.path.getsize(a.path) == GiB
        assert read_at(a.path, OFF_A, CHUNK) == a1, "the snapshot's copy lacks the first write"
        assert read_at(a.path, OFF_B, CHUNK) == b1
        assert all_zero(a.path, OFF_C, CHUNK), "the snapshot's copy has data written after it"
        assert sha256_file(a.path) == h1, "volume from snapshot != source at snapshot time"
    with LocalAttach(bs, brick, bigger.id) as a:
        assert os.path.getsize(a.path) == 2 * GiB, "a 2 GiB volume from a 1 GiB snapshot"
        assert sha256_file(a.path, GiB) == h1, "2 GiB volume from snapshot: first GiB differs"
        assert all_zero(a.path, GiB, GiB), "2 GiB volume from snapshot: the added GiB is not zero"
    with LocalAttach(bs, brick, clone.id) as a:
        assert read_at(a.path, OFF_A, CHUNK) == a2
        assert read_at(a.path, OFF_C, CHUNK) == c2
        assert sha256_file(a.path) == h2, "clone != source's current contents"

    # --- later writes to the source show in no copy ------------------------------------
    with LocalAttach(bs, brick, src.id) as a:
        write_at(a.path, OFF_B, os.urandom(CHUNK))
        h3 = sha256_file(a.path)
    assert h3 not in (h1, h2)
    assert _attached_hash(bs, brick, from_snap.id) == h1
    assert _attached_hash(bs, brick, clone.id) == h2
    assert _attached_hash(bs, brick, bigger.id, GiB) == h1

    # --- and writes to a copy do not show in the source or the snapshot -------------
    with LocalAttach(bs, brick, clone.id) as a:
        write_at(a.path, OFF_A, os.urandom(CHUNK))
    assert _attached_hash(bs, brick, src.id) == h3

    # --- revert the source to its (latest) snapshot (3.40) ------------------------------
    bs.revert_volume_to_snapshot(src, snap)
    wait_volume_status(bs, src.id, "available", "src to be available after the revert")
    with LocalAttach(bs, brick, src.id) as a:
        assert os.path.getsize(a.path) == GiB
        assert sha256_file(a.path) == h1, "reverted source != its snapshot"

    # the snapshot makes the same copy after the revert; copies outlive snapshot and source
    again = bs.create_volume(name="again", snapshot_id=snap.id)
    wait_volume_status(bs, again.id, "available")
    assert _attached_hash(bs, brick, again.id) == h1
    bs.delete_snapshot(snap)
    bs.wait_for_delete(snap, interval=0.5, wait=WAIT_TIMEOUT)
    bs.delete_volume(src)
    bs.wait_for_delete(src, interval=0.5, wait=WAIT_TIMEOUT)
    assert _attached_hash(bs, brick, from_snap.id) == h1
