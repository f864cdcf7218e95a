#!/usr/bin/env python3
"""net-hub.py: one Ethernet segment for several QEMU guests, over UDP on loopback.

    python3 vm-tests/net-hub.py HUB-PORT GUEST-PORT...

Each guest joins with `vm-tests/run.sh --net-hub HUB-PORT:GUEST-PORT`, that is
`-netdev socket,udp=127.0.0.1:HUB-PORT,localaddr=127.0.0.1:GUEST-PORT`: QEMU sends
every frame the guest puts on the wire to the hub as one datagram and takes the
datagrams arriving at GUEST-PORT as frames off the wire. The hub repeats each frame
to every other guest port, as a hub does (no learning, no filtering): the guests see
one shared segment, which QEMU's point-to-point socket network is not, and need no
multicast on the host's loopback (this machine's has none).

Standard library only. Ends on SIGTERM or SIGINT, or when the process named by
--watch PID is gone (checked every second); counts frames on stderr at the end.
"""

import argparse
import os
import select
import signal
import socket
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hub_port", type=int)
    ap.add_argument("guest_ports", type=int, nargs="+")
    ap.add_argument("--watch", type=int, help="end when this process is gone")
    args = ap.parse_args()
    peers = [("127.0.0.1", p) for p in args.guest_ports]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", args.hub_port))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    frames = dropped = 0
    while not stop:
        if args.watch is not None:
            try:
                os.kill(args.watch, 0)
            except ProcessLookupError:
                break
        try:
            ready, _, _ = select.select([s], [], [], 1.0)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            data, src = s.recvfrom(65536)
        except OSError:
            continue
        if src not in peers:
            dropped += 1
            continue
        frames += 1
        for p in peers:
            if p != src:
                try:
                    s.sendto(data, p)
                except OSError:
                    dropped += 1  # that guest is not up (yet): a lost frame, as on a wire
    print(f"net-hub: {frames} frames repeated, {dropped} dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
