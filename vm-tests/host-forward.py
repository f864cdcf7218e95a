#!/usr/bin/env python3
"""host-forward.py: one guest TCP connection to a port on the host's loopback.

    python3 vm-tests/host-forward.py PORT

vm-tests/run.sh --host-port PORT makes QEMU's user-mode network run this for every
TCP connection the guest opens to HEARTH_VM_HOST_ADDR:PORT
(`guestfwd=tcp:10.0.2.100:PORT-cmd:...`): QEMU hands the guest's side of the
connection over as stdin/stdout (one socket), and this copies bytes both ways to a
new connection to 127.0.0.1:PORT until both sides are done. A chardev guestfwd
(`-tcp:127.0.0.1:PORT`) would not do: QEMU opens it once at start-up and pours every
guest connection into that one stream.

Standard library only (run with -I -S: starts in ~20 ms); stderr goes nowhere, since
QEMU points it at the guest's connection too.
"""

import os
import socket
import sys
import threading


def main() -> int:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        return 2
    guest = socket.socket(fileno=os.dup(0))
    try:
        host = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    except OSError:
        return 1
    host.settimeout(None)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    up = threading.Thread(target=pump, args=(guest, host), daemon=True)
    up.start()
    pump(host, guest)
    up.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
