# nixos/module.nix: the NixOS module `services.hearth`: hearthd as a systemd service
# (Type=notify, hardened), its TOML configuration rendered from `settings` (RFC 42),
# the kernel modules its backends and exports need, the firewall, and optional
# declarative creation of LVM volume groups on blank disks. flake.nix exports it as
# `nixosModules.default`, with `package` defaulting to the flake's own build.
#
# hearth and nixpkgs' `services.target`: hearthd drives LIO through configfs itself and
# rebuilds its own targets (iqn.2010-10.org.openstack:volume-*) at every start; it never
# reads or writes /etc/target/saveconfig.json, which `services.target` owns. The two can
# run side by side, but `services.target`'s unit runs `targetctl clear` when it stops,
# which removes every target in the kernel, hearth's included; so when both are
# enabled hearth is ordered after it and restarted with it (PartOf=), and puts its
# targets back each time.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:

let
  cfg = config.services.hearth;

  settingsFormat = pkgs.formats.toml { };

  # hearthd refuses unknown keys and has no notion of null: options left at null are
  # omitted, so hearthd's own default applies.
  configFile = settingsFormat.generate "hearth.toml" (
    lib.filterAttrsRecursive (_: v: v != null) cfg.settings
  );

  backends = lib.attrValues cfg.settings.backends;
  lvmBackends = lib.filter (b: b.driver == "lvm") backends;
  usesLvm = lvmBackends != [ ];
  # lvm_type "auto" (hearthd's default) may choose thin.
  usesThin = lib.any (b: b.lvm_type != "thick") lvmBackends;
  lioBackends = lib.filter (b: b.target_helper == "lioadm") backends;
  usesLio = lioBackends != [ ];
  # The file backend is exported through a fileio backstore, LVM through iblock.
  usesFileLio = lib.any (b: b.driver == "file") lioBackends;

  # "127.0.0.1:8776", "[::]:8776": the port is what follows the last colon.
  apiPort = lib.toInt (lib.last (lib.splitString ":" cfg.settings.listen));
  portalPorts = lib.unique (
    map (b: if b.target_port == null then 3260 else b.target_port) lioBackends
  );

  defaultDataDir = "/var/lib/hearth";

  lvmPackage = config.services.lvm.package;

  vgUnit = name: "hearth-vg-${name}.service";

  # Where systemd puts the unit's credentials (LoadCredential=).
  credentialsDir = "/run/credentials/hearth.service";
  deviceUnit = dev: "${utils.escapeSystemdPath dev}.device";

  backendOptions =
    { name, ... }:
    {
      freeformType = settingsFormat.type;

      options = {
        driver = lib.mkOption {
          type = lib.types.enum [
            "file"
            "lvm"
          ];
          example = "lvm";
          description = ''
            The backend implementation: `file` (sparse files in a directory) or `lvm`
            (logical volumes in one volume group, thick or thin).
          '';
        };

        volume_backend_name = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "lvm";
          description = ''
            The name volume types pin with the extra spec `volume_backend_name`.
            `null`: the table's name (`${name}`).
          '';
        };

        volume_group = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "hearth-volumes";
          description = ''
            lvm: the volume group the volumes are carved from (required for `lvm`).
            See {option}`services.hearth.volumeGroups` to create it on first boot.
          '';
        };

        lvm_type = lib.mkOption {
          type = lib.types.nullOr (
            lib.types.enum [
              "thick"
              "thin"
              "auto"
            ]
          );
          default = null;
          example = "thin";
          description = ''
            lvm: thick or thin provisioning. `null`: hearthd's default, `auto` (thin when
            hearth's thin pool exists or the group is empty, else thick).
          '';
        };

        path = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "/srv/hearth/volumes";
          description = ''
            file: the directory holding the volume files. `null`: hearthd's default,
            `<data_dir>/volumes/${name}`.
          '';
        };

        size_gb = lib.mkOption {
          type = lib.types.nullOr lib.types.ints.positive;
          default = null;
          description = "file: the pool's capacity in GiB. `null`: the filesystem's size.";
        };

        target_helper = lib.mkOption {
          type = lib.types.enum [
            "local"
            "lioadm"
          ];
          default = "local";
          description = ''
            How hosts reach the volumes: `local` hands out a path on this host (os-brick's
            LOCAL connector); `lioadm` exports each attached volume over iSCSI through the
            kernel's LIO target, which needs {option}`target_ip_address`.
          '';
        };

        target_ip_address = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          example = "192.0.2.10";
          description = ''
            lioadm: the address initiators log in to (required for `lioadm`); the primary
            iSCSI portal.
          '';
        };

        target_secondary_ip_addresses = lib.mkOption {
          type = lib.types.nullOr (lib.types.listOf lib.types.str);
          default = null;
          example = [ "198.51.100.10" ];
          description = "lioadm: more portal addresses, for multipath. `null`: none.";
        };

        target_port = lib.mkOption {
          type = lib.types.nullOr lib.types.port;
          default = null;
          description = "lioadm: the portals' TCP port. `null`: hearthd's default, 3260.";
        };

        target_prefix = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          description = ''
            lioadm: the IQN prefix of the targets. `null`: hearthd's default,
            `iqn.2010-10.org.openstack:`.
          '';
        };

        configfs_path = lib.mkOption {
          type = lib.types.nullOr lib.types.str;
          default = null;
          description = ''
            lioadm: LIO's configfs directory. `null`: hearthd's default,
            `/sys/kernel/config/target`.
          '';
        };
      };
    };
in
{
  options.services.hearth = {
    enable = lib.mkEnableOption "hearth, a block-storage daemon serving the OpenStack Block Storage v3 API";

    package = lib.mkPackageOption pkgs "hearth" { };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Whether to open the API port (from {option}`services.hearth.settings.listen`)
        and, when a backend exports with `target_helper = "lioadm"`, its iSCSI portal
        port (3260 unless `target_port` says otherwise) in the firewall.
      '';
    };

    settings = lib.mkOption {
      description = ''
        hearthd's configuration, rendered to the TOML file it reads
        (`hearthd --config`). Every key hearthd knows can be set here; the common ones
        have typed options below. Options left at `null` are omitted, so hearthd's
        default applies. hearthd refuses keys it does not know, at start, naming the
        key. See the README's Configuration section for every key.
      '';
      default = { };
      example = lib.literalExpression ''
        {
          listen = "0.0.0.0:8776";
          backends.lvm-1 = {
            driver = "lvm";
            volume_backend_name = "lvm";
            volume_group = "hearth-volumes";
            lvm_type = "thin";
            target_helper = "lioadm";
            target_ip_address = "192.0.2.10";
          };
        }
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;

        options = {
          listen = lib.mkOption {
            type = lib.types.str;
            default = "127.0.0.1:8776";
            example = "0.0.0.0:8776";
            description = "The API's address and port (`[::]:8776` for IPv6).";
          };

          data_dir = lib.mkOption {
            type = lib.types.str;
            default = defaultDataDir;
            description = ''
              Where hearthd keeps its state (the SQLite store, and file volumes by
              default). The default is systemd's `StateDirectory=hearth`.
            '';
          };

          host = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            description = ''
              The host part of pool names `host@backend#pool`. `null`: the hostname.
            '';
          };

          database.connection = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = null;
            example = "postgresql://hearth@db1.example:5432,db2.example:5432/hearth?target_session_attrs=read-write";
            description = ''
              Cinder's `[database] connection`: a PostgreSQL store (libpq's URL syntax;
              several hosts with `target_session_attrs=read-write` follow a failover).
              Several appliances may share one database, a fleet behind one endpoint,
              each with its own `host` (see the repository's
              `fixtures/nixos-fleet.nix`). `null`: the SQLite
              file in `data_dir`. Give the password with
              {option}`services.hearth.databasePasswordFile`, not in the URL (the
              configuration lands in the world-readable Nix store). TLS as libpq's
              parameters ask it, e.g. `?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`;
              an `sslkey` must be a path outside the Nix store.
            '';
          };

          auth_strategy = lib.mkOption {
            type = lib.types.enum [
              "noauth"
              "keystone"
              "http_basic"
            ];
            default = "noauth";
            description = ''
              How callers are authenticated (see the README's "Identity and access").
              `keystone`: tokens validated with Keystone (`keystone_authtoken`; give the
              service user's password with {option}`services.hearth.keystonePasswordFile`,
              never in `settings`, which lands in the world-readable Nix store);
              `http_basic`: an htpasswd file ({option}`services.hearth.htpasswdFile`) and
              `http_basic_users`; `noauth`: Cinder's lab mode, which hearthd refuses off
              loopback unless `noauth_allow_remote = true`.
            '';
          };

          admin_projects = lib.mkOption {
            type = lib.types.nullOr (lib.types.listOf lib.types.str);
            default = null;
            description = "noauth: projects whose callers are admins; `null` or empty: everyone is.";
          };

          backends = lib.mkOption {
            type = lib.types.attrsOf (lib.types.submodule backendOptions);
            default = {
              file = {
                driver = "file";
                volume_backend_name = "file";
              };
            };
            defaultText = lib.literalExpression ''
              { file = { driver = "file"; volume_backend_name = "file"; }; }
            '';
            description = ''
              The backends, one `[backends.NAME]` table each (Cinder's
              `enabled_backends`). The default is hearthd's embedded one: one file
              backend under the data directory. Setting any backend replaces it.
            '';
          };
        };
      };
    };

    keystonePasswordFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/hearth-keystone-password";
      description = ''
        A file (outside the Nix store) holding the password of hearth's Keystone
        service user. It reaches hearthd as a systemd credential, and
        `keystone_authtoken.password_file` points at it.
      '';
    };

    databasePasswordFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/hearth-database-password";
      description = ''
        With `settings.database.connection` (a PostgreSQL store shared by a fleet of
        hearth nodes): a file (outside the Nix store) holding the password of the
        connection's user. It reaches hearthd as a systemd credential, and
        `database.password_file` points at it.
      '';
    };

    htpasswdFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/etc/hearth/htpasswd";
      description = ''
        With `auth_strategy = "http_basic"`: the Apache htpasswd file of bcrypt entries
        (`htpasswd -B`). It reaches hearthd as a systemd credential, and
        `http_basic_auth_user_file` points at it.
      '';
    };

    tlsKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = ''
        The PEM private key of `ssl_cert_file` (HTTPS), outside the Nix store. It
        reaches hearthd as a systemd credential, and `ssl_key_file` points at it.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      internal = true;
      default = configFile;
      defaultText = lib.literalExpression ''(pkgs.formats.toml { }).generate "hearth.toml" config.services.hearth.settings'';
      description = ''
        The configuration file hearthd is started with (flake.nix's `module-config`
        check runs `hearthd check-config` on it).
      '';
    };

    volumeGroups = lib.mkOption {
      default = { };
      example = lib.literalExpression ''
        { hearth-volumes.devices = [ "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4" ]; }
      '';
      description = ''
        LVM volume groups to create from the listed physical devices when they do not
        exist yet, before hearthd starts (a `hearth-vg-NAME` oneshot unit).

        Idempotent and conservative: when the group exists nothing is done (a listed
        device that is not in it is reported, never touched); when it does not, every
        listed device must be blank (no filesystem, partition table, RAID or LVM
        signature, no partitions or holders) or the unit fails without writing
        anything. Nothing is ever wiped.
      '';
      type = lib.types.attrsOf (
        lib.types.submodule {
          options.devices = lib.mkOption {
            type = lib.types.nonEmptyListOf lib.types.path;
            example = [ "/dev/sdb" ];
            description = ''
              The physical devices. Prefer stable names (`/dev/disk/by-id/...`).
            '';
          };
        }
      );
    };
  };

  config = lib.mkIf cfg.enable {
    # Secrets come in as systemd credentials; the settings name where they appear.
    services.hearth.settings = lib.mkMerge [
      (lib.mkIf (cfg.keystonePasswordFile != null) {
        keystone_authtoken.password_file = "${credentialsDir}/keystone-password";
      })
      (lib.mkIf (cfg.htpasswdFile != null) {
        http_basic_auth_user_file = "${credentialsDir}/htpasswd";
      })
      (lib.mkIf (cfg.databasePasswordFile != null) {
        database.password_file = "${credentialsDir}/database-password";
      })
      (lib.mkIf (cfg.tlsKeyFile != null) {
        ssl_key_file = "${credentialsDir}/tls-key";
      })
    ];

    assertions =
      [
        {
          assertion = cfg.settings.backends != { };
          message = "services.hearth.settings.backends: at least one backend must be configured.";
        }
        {
          assertion =
            cfg.settings.database.connection == null
            || builtins.match "[a-z]+://[^/@]*:[^/@]*@.*" cfg.settings.database.connection == null;
          message = "services.hearth.settings.database.connection holds a password, which would be world-readable in the Nix store: use services.hearth.databasePasswordFile.";
        }
        {
          assertion = !((cfg.settings.keystone_authtoken or { }) ? password);
          message = "services.hearth.settings.keystone_authtoken.password would be world-readable in the Nix store: use services.hearth.keystonePasswordFile.";
        }
        {
          assertion =
            cfg.settings.auth_strategy == "noauth"
            -> (
              lib.hasPrefix "127." cfg.settings.listen
              || lib.hasPrefix "[::1]" cfg.settings.listen
              || (cfg.settings.noauth_allow_remote or false)
            );
          message = "services.hearth: auth_strategy = \"noauth\" on ${cfg.settings.listen} lets anyone who reaches it act as admin; use keystone or http_basic, or set settings.noauth_allow_remote = true.";
        }
      ]
      ++ lib.flatten (
        lib.mapAttrsToList (name: b: [
          {
            assertion = b.driver == "lvm" -> b.volume_group != null;
            message = "services.hearth.settings.backends.${name}.volume_group is required with driver = \"lvm\".";
          }
          {
            assertion = b.target_helper == "lioadm" -> b.target_ip_address != null;
            message = "services.hearth.settings.backends.${name}.target_ip_address is required with target_helper = \"lioadm\".";
          }
        ]) cfg.settings.backends
      )
      ++ lib.mapAttrsToList (name: _: {
        assertion = builtins.match "[A-Za-z0-9_.][A-Za-z0-9_.-]*" name != null;
        message = "services.hearth.volumeGroups.${name}: a volume group name uses letters, digits, '_', '.' and '-' and does not start with '-'.";
      }) cfg.volumeGroups;

    warnings =
      lib.optional (usesLio && config.services.target.enable) ''
        services.hearth exports over LIO and services.target is enabled too: stopping
        iscsi-target.service runs `targetctl clear`, which removes hearth's targets as
        well; hearth is restarted with it (PartOf=) and puts them back.
      ''
      ++ lib.optional (cfg.openFirewall && lib.hasPrefix "127." cfg.settings.listen) ''
        services.hearth.openFirewall opens port ${toString apiPort}, but the API listens
        on ${cfg.settings.listen} only; set services.hearth.settings.listen.
      '';

    environment.systemPackages = [ cfg.package ];

    # The device-mapper and LIO modules the configured backends and exports need,
    # loaded at boot, so that hearthd (ProtectKernelModules=) never has to.
    boot.kernelModules =
      lib.optionals usesLvm [
        "dm-mod"
        "dm-snapshot"
      ]
      ++ lib.optional usesThin "dm-thin-pool"
      ++ lib.optionals usesLio [
        "configfs"
        "target_core_mod"
        "target_core_iblock"
        "iscsi_target_mod"
      ]
      ++ lib.optional usesFileLio "target_core_file";

    # Thin pools are checked with thin_check when they are activated (at boot, or by
    # hearthd's lvchange). This puts the tools' store paths in /etc/lvm/lvm.conf.
    services.lvm.boot.thin.enable = lib.mkIf usesThin (lib.mkDefault true);

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall (
      [ apiPort ] ++ lib.optionals usesLio portalPorts
    );

    # LVM writes its metadata backups and its locks here, and hearthd's view of / is
    # read-only (ProtectSystem=strict), so they must exist before it starts. lvm2's own
    # tmpfiles.d makes the /run ones too; the same lines again are harmless.
    systemd.tmpfiles.settings."10-hearth" = lib.mkIf usesLvm {
      "/etc/lvm/archive".d.mode = "0700";
      "/etc/lvm/backup".d.mode = "0700";
      "/run/lvm".d.mode = "0700";
      "/run/lock/lvm".d.mode = "0700";
    };

    systemd.services =
      {
        hearth = {
          description = "hearth block storage (OpenStack Block Storage v3 API)";
          wantedBy = [ "multi-user.target" ];
          # lioadm binds its portals to target_ip_address: the address must be up.
          wants = lib.optional usesLio "network-online.target";
          after =
            [ "network.target" ]
            ++ lib.optionals usesLio [
              "network-online.target"
              "sys-kernel-config.mount"
              "systemd-modules-load.service"
            ]
            ++ lib.optional config.services.target.enable "iscsi-target.service"
            ++ map vgUnit (lib.attrNames cfg.volumeGroups);
          requires =
            lib.optional usesLio "sys-kernel-config.mount" ++ map vgUnit (lib.attrNames cfg.volumeGroups);
          partOf = lib.optional (usesLio && config.services.target.enable) "iscsi-target.service";

          # hearthd resolves its LVM tools from the store paths built into the package
          # (HEARTH_TOOL_PATH); these are for what LVM itself runs (thin_check, ...).
          path = [
            lvmPackage
            pkgs.thin-provisioning-tools
            pkgs.util-linux
          ];

          environment.RUST_LOG = lib.mkDefault "info";

          serviceConfig = {
            # hearthd sends READY=1 once the API listens and reconcile is done.
            Type = "notify";
            ExecStart = "${lib.getExe cfg.package} --config ${cfg.configFile}";
            # Secrets, readable by hearthd only, never in the Nix store.
            LoadCredential =
              lib.optional (cfg.keystonePasswordFile != null) "keystone-password:${cfg.keystonePasswordFile}"
              ++ lib.optional (cfg.htpasswdFile != null) "htpasswd:${cfg.htpasswdFile}"
              ++ lib.optional (cfg.databasePasswordFile != null) "database-password:${cfg.databasePasswordFile}"
              ++ lib.optional (cfg.tlsKeyFile != null) "tls-key:${cfg.tlsKeyFile}";
            Restart = "on-failure";
            RestartSec = "5s";
            # Reconcile after a crash may finish or undo LVM work before READY=1.
            TimeoutStartSec = "10min";
            # hearthd lets in-flight work finish for 10 s (--stop-grace) on SIGTERM.
            TimeoutStopSec = "60s";
            StateDirectory = "hearth";
            StateDirectoryMode = "0700";
            WorkingDirectory = "%S/hearth";
            # Logs: stdout/stderr, to the journal (the default); `journalctl -u hearth`.
            SyslogIdentifier = "hearthd";

            # Hardening
            #
            # hearthd runs as root: device-mapper ioctls, LVM and LIO's configfs need it.
            # What it may do is bounded by the capability set and the sandbox below.
            CapabilityBoundingSet = [
              # device-mapper ioctls (LVM, hearth's own open-count check) and configfs.
              "CAP_SYS_ADMIN"
              # LVM reads and writes block devices and its lock and archive files.
              "CAP_DAC_OVERRIDE"
              "CAP_FOWNER"
              # LVM's device scan may send SCSI ioctls to the physical volumes.
              "CAP_SYS_RAWIO"
              # LVM locks its memory (mlockall) while devices are suspended...
              "CAP_IPC_LOCK"
              # ...and raises its priority there (activation/process_priority).
              "CAP_SYS_NICE"
              # libdevmapper makes /dev/mapper nodes itself when udev has not.
              "CAP_MKNOD"
              "CAP_CHOWN"
            ]
            ++ lib.optional (apiPort < 1024) "CAP_NET_BIND_SERVICE";
            NoNewPrivileges = true;
            ProtectSystem = "strict";
            # The exceptions to the read-only /: LVM's backups and locks, and a data_dir
            # or file-backend path outside the state directory ("-": if it exists).
            ReadWritePaths = map (p: "-${p}") (
              lib.optionals usesLvm [
                "/etc/lvm/archive"
                "/etc/lvm/backup"
                "/run/lvm"
                "/run/lock/lvm"
              ]
              ++ lib.optional (cfg.settings.data_dir != defaultDataDir) cfg.settings.data_dir
              ++ lib.filter (p: p != null) (map (b: b.path) backends)
            );
            ProtectHome = true;
            PrivateTmp = true;
            # Exception: PrivateDevices= stays off: hearthd and LVM need the real /dev
            # (the physical volumes, /dev/mapper/control, /dev/<vg>/<lv>).
            PrivateDevices = false;
            # Exception: ProtectKernelTunables= stays off: it makes /sys read-only, and
            # LIO is configured by writing /sys/kernel/config/target.
            ProtectKernelTunables = false;
            ProtectKernelModules = true;
            ProtectKernelLogs = true;
            ProtectControlGroups = true;
            ProtectHostname = true;
            # Exception: no ProtectClock= and no DeviceAllow=: ProtectClock= implies
            # DeviceAllow=char-rtc, and any DeviceAllow= closes every other device,
            # while LVM opens physical volumes and device-mapper nodes it cannot list
            # ahead (they are made at run time).
            RestrictAddressFamilies = [
              "AF_UNIX"
              "AF_INET"
              "AF_INET6"
              # libdevmapper/LVM talk to udev over netlink.
              "AF_NETLINK"
            ];
            RestrictNamespaces = true;
            RestrictRealtime = true;
            RestrictSUIDSGID = true;
            LockPersonality = true;
            MemoryDenyWriteExecute = true;
            SystemCallArchitectures = "native";
            # Exception: no SystemCallFilter=: LVM needs ioctls, mlockall, mknod and
            # setpriority across several groups (@privileged among them), and a missed
            # one shows up as a failed volume operation, not as a start-up error.
            # Exception: PrivateIPC= stays off: LVM synchronises with udev through
            # System V semaphores shared with udevd.
            UMask = "0077";
          };
        };
      }
      // lib.mapAttrs' (
        name: vg:
        lib.nameValuePair "hearth-vg-${name}" {
          description = "Create LVM volume group ${name} for hearth";
          wantedBy = [ "hearth.service" ];
          before = [ "hearth.service" ];
          requires = map deviceUnit vg.devices;
          after = map deviceUnit vg.devices;
          path = [
            lvmPackage
            pkgs.util-linux
            pkgs.coreutils
          ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
          };
          script = ''
            set -euo pipefail
            vg=${lib.escapeShellArg name}
            devices=(${lib.escapeShellArgs vg.devices})

            if vgs --noheadings -o vg_name "$vg" >/dev/null 2>&1; then
              echo "volume group $vg exists; nothing to do"
              for dev in "''${devices[@]}"; do
                member=$(pvs --noheadings -o vg_name "$dev" 2>/dev/null | tr -d ' ') || member=
                if [ "$member" != "$vg" ]; then
                  echo "warning: $dev is listed for $vg but is not one of its physical volumes; left alone" >&2
                fi
              done
              exit 0
            fi

            # First boot: every device must be blank. Check them all before writing.
            for dev in "''${devices[@]}"; do
              if [ ! -b "$dev" ]; then
                echo "$dev is not a block device; $vg not created" >&2
                exit 1
              fi
              signatures=$(wipefs --no-act --noheadings --output TYPE "$dev" | sort -u | tr '\n' ' ')
              if [ -n "$signatures" ]; then
                echo "$dev carries data ($signatures); $vg not created, nothing written" >&2
                exit 1
              fi
              if [ "$(lsblk --noheadings --output NAME "$dev" | wc -l)" -ne 1 ]; then
                echo "$dev has partitions or holders; $vg not created, nothing written" >&2
                exit 1
              fi
            done

            pvcreate "''${devices[@]}"
            vgcreate "$vg" "''${devices[@]}"
            echo "created volume group $vg on ''${devices[*]}"
          '';
        }
      ) cfg.volumeGroups;
  };

  meta.maintainers = [ ];
}
