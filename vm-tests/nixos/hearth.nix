# vm-tests/nixos/hearth.nix: hearth's NixOS VM test (a nixosTest; flake.nix runs it
# with pkgs.testers.runNixOSTest as checks.<system>.vm-thin and vm-thick).
#
# Two machines on two test VLANs:
#   storage  hearth through the NixOS module (services.hearth): an empty 4 GiB disk
#            that the guest sees as /dev/sdb becomes the volume group hearth-volumes
#            on first boot (services.hearth.volumeGroups); the lvm backend, thin or
#            thick, exported with LIO on two portals (192.168.1.x and 192.168.2.x).
#   compute  open-iscsi, multipathd and a Python with os-brick, as a Nova host has.
#
# The scenarios are the project's shared ones (vm-tests/scenarios), the same files the
# QEMU/Debian tier runs, never a copy:
#   lifecycle.sh      on storage: create / extend / snapshot / clone / delete with the
#                     openstack CLI from nixpkgs, checked against lvs;
#   storage_agent.py  on storage, in the background, serving compute.py's requests
#                     through /tmp/shared (the directory the test driver shares);
#   compute.py        on compute: every attach scenario, with os-brick.
# Then what only a NixOS machine shows: the unit is Type=notify and active, its
# hardening is in effect in the running process, and a real reboot of the storage node
# (shutdown, start) brings hearthd, the volume group and the export of an attached
# volume back, and the compute node's iSCSI session recovers with the data intact.
{
  # The module to test (flake.nix passes self.nixosModules.default).
  hearthModule,
  # "thin" or "thick": the backend's lvm_type.
  lvmType ? "thin",
}:

{ lib, ... }:

let
  vg = "hearth-volumes";
  apiPort = 8776;
  # The shared scenarios, copied to the store as a directory.
  scenarios = ../scenarios;
  # The directory the NixOS test driver shares between all machines.
  agentDir = "/tmp/shared/hearth-agent";
  initiator = "iqn.2004-10.org.nixos.hearth-test:compute";
in
{
  name = "hearth-${lvmType}";
  meta.maintainers = [ ];

  nodes = {
    storage =
      { config, pkgs, ... }:
      let
        n = toString config.virtualisation.test.nodeNumber;
      in
      {
        imports = [ hearthModule ];

        virtualisation = {
          memorySize = 2048;
          cores = 2;
          # eth1 192.168.1.n (the primary portal), eth2 192.168.2.n (the second one).
          vlans = [
            1
            2
          ];
          emptyDiskImages = [ 4096 ];
          # SCSI disks instead of virtio: the root disk is /dev/sda and the empty one
          # /dev/sdb, the name the issue, the README and the Debian tier use.
          qemu.diskInterface = "scsi";
        };
        # Scan each SCSI host as it appears, so sda/sdb follow the drive order.
        boot.kernelParams = [ "scsi_mod.scan=sync" ];

        services.hearth = {
          enable = true;
          openFirewall = true;
          volumeGroups.${vg}.devices = [ "/dev/sdb" ];
          settings = {
            listen = "0.0.0.0:${toString apiPort}";
            # A test network: noauth off loopback must be asked for by name.
            noauth_allow_remote = true;
            backends.lvm-1 = {
              driver = "lvm";
              volume_backend_name = "lvm";
              volume_group = vg;
              lvm_type = lvmType;
              # Wiping with zeroes is tested in the Debian tier; here it only costs time.
              volume_clear = "none";
              target_helper = "lioadm";
              target_ip_address = config.networking.primaryIPAddress;
              target_secondary_ip_addresses = [ "192.168.2.${n}" ];
            };
          };
        };

        environment.systemPackages = [
          (pkgs.writeShellApplication {
            name = "hearth-lifecycle";
            runtimeInputs = [
              pkgs.openstackclient
              pkgs.python3
              config.services.lvm.package
              pkgs.coreutils
              pkgs.gawk
            ];
            text = ''exec ${pkgs.runtimeShell} ${scenarios}/lifecycle.sh "$@"'';
          })
          (pkgs.writeShellApplication {
            name = "hearth-storage-agent";
            runtimeInputs = [
              pkgs.python3
              config.systemd.package
            ];
            text = ''exec python3 ${scenarios}/storage_agent.py "$@"'';
          })
        ];
      };

    compute =
      { pkgs, ... }:
      {
        virtualisation = {
          memorySize = 2048;
          cores = 2;
          vlans = [
            1
            2
          ];
        };

        services.openiscsi = {
          enable = true;
          name = initiator;
        };

        # compute.py's multipath scenario: os-brick logs in to both portals, adds the
        # WWID (multipath -a) and waits for multipathd's map. As in the Debian tier
        # (vm-tests/guest/iscsi-compute.sh): find_multipaths strict, so single-path
        # attachments stay plain /dev/sdX; the selector and ALUA handler modules the
        # maps of LIO disks name.
        services.multipath = {
          enable = true;
          pathGroups = [ ];
          defaults = ''
            user_friendly_names no
            find_multipaths strict
          '';
          blacklist = ''
            device {
              vendor "QEMU"
              product ".*"
            }
          '';
        };
        systemd.services.multipathd.wantedBy = [ "multi-user.target" ];
        boot.kernelModules = [
          "dm_round_robin"
          "scsi_dh_alua"
        ];

        # os-brick asks /lib/udev/scsi_id for a device's WWN when sysfs has none.
        systemd.tmpfiles.rules = [
          "L+ /lib/udev/scsi_id - - - - ${pkgs.systemd}/lib/udev/scsi_id"
        ];

        environment.systemPackages = [
          pkgs.curl
          pkgs.sg3_utils
          pkgs.lsscsi
          (pkgs.writeShellApplication {
            name = "hearth-compute-scenarios";
            runtimeInputs = [ (pkgs.python3.withPackages (ps: [ ps.os-brick ])) ];
            # -W ignore: eventlet's deprecation warnings, as the Debian tier does.
            text = ''exec python3 -W ignore ${scenarios}/compute.py "$@"'';
          })
        ];
      };
  };

  testScript =
    { nodes, ... }:
    let
      storageIp = nodes.storage.networking.primaryIPAddress;
    in
    ''
      import json
      import shlex

      VG = "${vg}"
      ENDPOINT = "http://${storageIp}:${toString apiPort}/v3"
      LOCAL_ENDPOINT = "http://127.0.0.1:${toString apiPort}/v3"
      AGENT_DIR = "${agentDir}"
      INITIATOR = "${initiator}"
      INSTANCE = "0b4f6a54-5a2e-4c53-9d4e-6a0f1d2c3b4a"


      def api(method, path, body=None, version="3.44"):
          """One call to hearthd's API from the compute node, as Nova makes it."""
          cmd = ["curl", "-sS", "--fail-with-body", "-X", method,
                 "-H", "X-Auth-Token: admin:admin", "-H", "Accept: application/json",
                 "-H", f"OpenStack-API-Version: volume {version}"]
          if body is not None:
              cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
          cmd.append(ENDPOINT + path)
          out = compute.succeed(shlex.join(cmd))
          return json.loads(out) if out.strip() else None


      def wait_status(vid, status):
          compute.wait_until_succeeds(
              f"curl -sS -H 'X-Auth-Token: admin:admin' {ENDPOINT}/volumes/{vid}"
              f" | grep -q '\"status\": *\"{status}\"'",
              timeout=300,
          )


      def key_values(text: str, sep: str) -> dict[str, str]:
          """`Key=Value` (systemctl show) or `Key:\tValue` (/proc/PID/status) lines."""
          result: dict[str, str] = {}
          for line in text.splitlines():
              if sep in line:
                  key, value = line.split(sep, 1)
                  result[key] = value.strip()
          return result


      def run_printed(machine, cmd, timeout):
          status, out = machine.execute(cmd, timeout=timeout)
          print(out)
          assert status == 0, f"{cmd!r} exited {status}"
          return out


      start_all()

      with subtest("first boot: the blank /dev/sdb becomes the volume group, hearthd starts"):
          storage.wait_for_unit("hearth-vg-${vg}.service")
          # Type=notify: the unit is active only once hearthd has sent READY=1.
          storage.wait_for_unit("hearth.service")
          storage.wait_for_open_port(${toString apiPort})
          storage.succeed("test $(lsblk -bdno SIZE /dev/sdb) -eq $((4096 << 20))")
          storage.succeed(f"test $(pvs --noheadings -o vg_name /dev/sdb | tr -d ' ') = {VG}")
          storage.succeed("journalctl -u hearth-vg-${vg} | grep -q 'created volume group'")
          compute.wait_for_unit("iscsid.service")
          compute.wait_for_unit("multipathd.service")
          # Through the firewall (openFirewall): the API from the other machine.
          compute.wait_until_succeeds(f"curl -sSf -H 'X-Auth-Token: admin:admin' {ENDPOINT}/volumes")

      with subtest("the unit is Type=notify, active, and its hardening is in effect"):
          props = key_values(storage.succeed(
              "systemctl show hearth.service -p Type -p ActiveState -p Restart"
              " -p StateDirectory -p ProtectSystem -p ProtectHome -p PrivateTmp"
              " -p NoNewPrivileges -p ProtectKernelModules -p RestrictSUIDSGID"
              " -p CapabilityBoundingSet -p MainPID"
          ), "=")
          print(props)
          expected = {
              "Type": "notify", "ActiveState": "active", "Restart": "on-failure",
              "StateDirectory": "hearth", "ProtectSystem": "strict", "ProtectHome": "yes",
              "PrivateTmp": "yes", "NoNewPrivileges": "yes", "ProtectKernelModules": "yes",
              "RestrictSUIDSGID": "yes",
          }
          for key, value in expected.items():
              assert props[key] == value, f"{key}={props[key]}, want {value}"
          caps = set(props["CapabilityBoundingSet"].split())
          assert "cap_sys_admin" in caps, caps
          for absent in ("cap_sys_module", "cap_net_admin", "cap_sys_ptrace", "cap_setuid", "cap_sys_boot"):
              assert absent not in caps, f"{absent} in {caps}"
          storage.succeed("systemctl is-active hearth.service")

          # In the running process, not only in the unit file.
          pid = props["MainPID"]
          fields = key_values(storage.succeed(f"cat /proc/{pid}/status"), ":")
          assert fields["NoNewPrivs"] == "1", fields["NoNewPrivs"]
          bnd = int(fields["CapBnd"], 16)
          CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_NET_ADMIN = 21, 16, 12
          assert bnd & (1 << CAP_SYS_ADMIN), hex(bnd)
          assert not bnd & ((1 << CAP_SYS_MODULE) | (1 << CAP_NET_ADMIN)), hex(bnd)
          ns = f"nsenter --target {pid} --mount --"
          storage.fail(f"{ns} touch /etc/hearth-probe")            # ProtectSystem=strict
          storage.fail(f"{ns} touch /usr/hearth-probe")
          storage.succeed(f"{ns} touch /var/lib/hearth/.probe && {ns} rm /var/lib/hearth/.probe")
          storage.succeed(f"{ns} touch /etc/lvm/backup/.probe && {ns} rm /etc/lvm/backup/.probe")
          storage.succeed(f"{ns} test -w /sys/kernel/config/target")  # LIO stays writable
          storage.succeed("mkdir -p /home/someone && touch /tmp/hearth-host-probe")
          storage.fail(f"{ns} ls /home/someone")                    # ProtectHome=yes
          storage.fail(f"{ns} test -e /tmp/hearth-host-probe")      # PrivateTmp=yes
          # Logs go to the journal.
          storage.succeed("journalctl -u hearth.service | grep -q hearthd")

      with subtest("lifecycle with the openstack CLI, checked against lvs (scenarios/lifecycle.sh)"):
          run_printed(storage, f"hearth-lifecycle --endpoint {LOCAL_ENDPOINT} --vg {VG}", 1800)
          if "${lvmType}" == "thin":
              storage.succeed(f"lvs --noheadings -o lv_name {VG} | grep -qw hearth-thinpool")

      with subtest("attach scenarios from the compute node with os-brick (scenarios/compute.py)"):
          storage.succeed(f"rm -rf {AGENT_DIR}")
          storage.succeed(shlex.join([
              "systemd-run", "--unit=hearth-storage-agent", "--collect",
              f"--property=ExecStopPost=/run/current-system/sw/bin/touch {AGENT_DIR}/storage-exited",
              "/run/current-system/sw/bin/hearth-storage-agent", "--dir", AGENT_DIR, "--vg", VG,
              "--start-cmd", "systemctl start hearth.service",
              "--stop-cmd", "systemctl stop hearth.service",
          ]))
          run_printed(compute, f"hearth-compute-scenarios --dir {AGENT_DIR} --endpoint {ENDPOINT} --vg {VG}", 3600)
          storage.wait_until_fails("systemctl is-active hearth-storage-agent.service")
          storage.succeed("systemctl is-active hearth.service")

      with subtest("attach with iscsiadm from the returned connection_info, write"):
          vol = api("POST", "/volumes", {"volume": {"size": 1, "name": "reboot"}})["volume"]
          vid = vol["id"]
          wait_status(vid, "available")
          ip = compute.succeed("ip -4 -o addr show dev eth1 | awk '{print $4}' | cut -d/ -f1").strip()
          connector = {"initiator": INITIATOR, "ip": ip, "host": "compute", "multipath": False,
                       "platform": "x86_64", "os_type": "linux"}
          # As Nova does: reserve (no connector), then update with the connector.
          att = api("POST", "/attachments", {"attachment": {
              "volume_uuid": vid, "instance_uuid": INSTANCE, "connector": None}})["attachment"]
          att = api("PUT", f"/attachments/{att['id']}", {"attachment": {"connector": connector}})["attachment"]
          info = att["connection_info"]
          assert info["driver_volume_type"] == "iscsi", info
          portal, iqn, lun = info["target_portal"], info["target_iqn"], info["target_lun"]
          node = f"iscsiadm -m node -T {shlex.quote(iqn)} -p {shlex.quote(portal)}"
          compute.succeed(f"{node} -o new")
          for name, value in [
              ("node.session.auth.authmethod", info["auth_method"]),
              ("node.session.auth.username", info["auth_username"]),
              ("node.session.auth.password", info["auth_password"]),
              # Queue I/O, do not fail it, while the storage node reboots.
              ("node.session.timeo.replacement_timeout", "600"),
          ]:
              compute.succeed(f"{node} -o update -n {name} -v {shlex.quote(str(value))}")
          compute.succeed(f"{node} --login")
          dev = f"/dev/disk/by-path/ip-{portal}-iscsi-{iqn}-lun-{lun}"
          compute.wait_until_succeeds(f"test -b {shlex.quote(dev)}", timeout=60)
          api("POST", f"/attachments/{att['id']}/action", {"os-complete": None})
          wait_status(vid, "in-use")
          compute.succeed("dd if=/dev/urandom of=/root/before bs=1M count=4 status=none")
          compute.succeed(f"dd if=/root/before of={shlex.quote(dev)} bs=1M oflag=direct conv=fsync status=none")
          written = compute.succeed("sha256sum < /root/before").split()[0]
          target = f"/sys/kernel/config/target/iscsi/{iqn}/tpgt_1"
          storage.succeed(f"test -d {target}/acls/{INITIATOR}")

      with subtest("reboot of the storage node: hearthd, the export and the session come back"):
          storage.shutdown()
          # The initiator notices (NOP-out timeout) and keeps retrying.
          compute.wait_until_fails("iscsiadm -m session -P 3 | grep -q 'iSCSI Session State: LOGGED_IN'", timeout=120)
          storage.start()
          storage.wait_for_unit("hearth.service")
          storage.succeed("systemctl is-active hearth.service")
          # The volume group was there: nothing created, nothing touched.
          storage.succeed("journalctl -b -u hearth-vg-${vg} | grep -q 'exists; nothing to do'")
          # hearthd rebuilt the export of the attached volume (configfs is empty at boot).
          storage.wait_until_succeeds(f"test -d {target}/acls/{INITIATOR} && grep -qx 1 {target}/enable", timeout=120)
          compute.wait_until_succeeds("iscsiadm -m session -P 3 | grep -q 'iSCSI Session State: LOGGED_IN'", timeout=300)
          got = compute.succeed(f"dd if={shlex.quote(dev)} bs=1M count=4 iflag=direct status=none | sha256sum").split()[0]
          assert got == written, f"read back {got} after the reboot, wrote {written}"
          # A write after the reboot reaches the LV on the storage node.
          compute.succeed("dd if=/dev/urandom of=/root/after bs=1M count=4 status=none")
          compute.succeed(f"dd if=/root/after of={shlex.quote(dev)} bs=1M seek=8 oflag=direct conv=fsync status=none")
          want_after = compute.succeed("sha256sum < /root/after").split()[0]
          got_lv = storage.succeed(
              f"dd if=/dev/{VG}/volume-{vid} bs=1M skip=8 count=4 iflag=direct status=none | sha256sum"
          ).split()[0]
          assert got_lv == want_after, f"the LV holds {got_lv}, the initiator wrote {want_after}"

      with subtest("detach and delete"):
          compute.succeed(f"{node} --logout && {node} -o delete")
          api("DELETE", f"/attachments/{att['id']}")
          wait_status(vid, "available")
          api("DELETE", f"/volumes/{vid}")
          storage.wait_until_fails(f"lvs {VG}/volume-{vid}", timeout=300)
          storage.fail(f"test -e {target}/acls/{INITIATOR}")
          storage.wait_until_fails(f"test -e /sys/kernel/config/target/iscsi/{iqn}", timeout=60)
    '';
}
