# flake.nix: hearth as a Nix flake: the package (hearthd, built from Cargo.lock with
# nixpkgs' Rust tooling), the NixOS module `services.hearth`, the NixOS VM tests as
# `checks`, a development shell, and an overlay.
#
#   nix build                 # packages.<system>.default: hearthd, `cargo test` run in the build
#   nix flake check           # the package and the VM tests (storage + compute nodes)
#   nix develop               # cargo, clippy, rustfmt, the LVM tools, nixfmt
#
# nixpkgs is pinned by branch: nixos-26.05, the stable release of this writing, whose
# rustc is new enough for Cargo.lock (rusqlite 0.41 and uuid 1.29 need rustc 1.89;
# nixos-25.05's is older). flake.lock, which pins the exact commit, is not committed yet:
# it was written on machines without network. The first `nix flake lock` (or any
# `nix build`) creates it; commit it then.
{
  description = "hearth: a block-storage daemon serving the OpenStack Block Storage v3 API on LVM, exported over iSCSI";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # hearth needs Linux (device-mapper, LIO); the VM tests need KVM-capable builders.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # pkgs.hearth, and os-brick (plus oslo.privsep, oslo.service) in every Python
      # package set, for the VM tests' compute node.
      overlays.default = final: prev: {
        hearth = final.callPackage ./nixos/package.nix { };
        pythonPackagesExtensions = prev.pythonPackagesExtensions ++ [
          (import ./nixos/python-packages.nix)
        ];
      };

      packages = forAllSystems (pkgs: {
        hearth = pkgs.callPackage ./nixos/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.hearth;
      });

      # `imports = [ hearth.nixosModules.default ]`, then `services.hearth.enable`.
      # The package defaults to this flake's build for the machine's system.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          services.hearth.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.hearth;
        };
      nixosModules.hearth = self.nixosModules.default;

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          # os-brick for the compute node's Python.
          testPkgs = pkgs.extend self.overlays.default;
          vmTest =
            lvmType:
            testPkgs.testers.runNixOSTest (
              import ./vm-tests/nixos/hearth.nix {
                inherit lvmType;
                hearthModule = self.nixosModules.default;
              }
            );
        in
        {
          package = self.packages.${system}.hearth;

          # The module renders a file hearthd accepts: typed options, freeform keys and
          # nulls left out. check-config exits 2 when it refuses the file, 1 when only
          # the backends' checks fail (no volume group or configfs in the sandbox).
          module-config =
            let
              machine = lib.nixosSystem {
                modules = [
                  self.nixosModules.default
                  {
                    nixpkgs.hostPlatform = system;
                    boot.isContainer = true;
                    system.stateVersion = "26.05";
                    services.hearth = {
                      enable = true;
                      settings = {
                        listen = "0.0.0.0:8776";
                        report_interval = 30;
                        quota.quota_volumes = 100;
                        backends.lvm-1 = {
                          driver = "lvm";
                          volume_group = "hearth-volumes";
                          lvm_type = "thin";
                          max_over_subscription_ratio = 10.0;
                          target_helper = "lioadm";
                          target_ip_address = "192.0.2.10";
                          target_secondary_ip_addresses = [ "198.51.100.10" ];
                        };
                        backends.file-1 = {
                          driver = "file";
                          size_gb = 10;
                        };
                      };
                    };
                  }
                ];
              };
              configFile = machine.config.services.hearth.configFile;
            in
            pkgs.runCommand "hearth-module-config" { } ''
              cat ${configFile}
              rc=0
              ${lib.getExe self.packages.${system}.hearth} check-config \
                --config ${configFile} --data-dir "$TMPDIR/data" || rc=$?
              if [ "$rc" -eq 2 ]; then
                echo "hearthd refused the configuration the module rendered" >&2
                exit 1
              fi
              cp ${configFile} $out
            '';
          # The same scenarios as the QEMU/Debian tier (vm-tests/scenarios), on
          # NixOS with the module, plus a real reboot of the storage node.
          vm-thin = vmTest "thin";
          vm-thick = vmTest "thick";
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.hearth ];
          packages = with pkgs; [
            cargo
            clippy
            rustfmt
            rust-analyzer
            lvm2
            thin-provisioning-tools
            openiscsi
            openstackclient
            nixfmt
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
