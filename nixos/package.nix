# nixos/package.nix: the hearth package (hearthd), built with nixpkgs' Rust tooling from
# the committed Cargo.lock. The LVM and other host tools hearthd runs are resolved from
# the store paths baked in at build time (HEARTH_TOOL_PATH, see src/cmd.rs), never from
# /usr/sbin. Called by flake.nix as `pkgs.callPackage ./nixos/package.nix { }`.
{
  lib,
  rustPlatform,
  lvm2,
  thin-provisioning-tools,
  util-linux,
  coreutils,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "hearth";
  inherit (cargoToml.package) version;

  # Only what cargo reads: a change to the README, the module or the VM tests does not
  # rebuild. benches/ is needed because Cargo.toml declares its targets; the TOML
  # fixtures because the config tests read them.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../tests
      ../benches
      (lib.fileset.fileFilter (file: file.hasExt "toml") ../fixtures)
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # src/cmd.rs reads this with option_env! at compile time: a colon-separated list of
  # directories searched before the usual system ones. lib.makeBinPath takes each
  # package's `bin` output (lvm2's tools are in lvm2.bin).
  env.HEARTH_TOOL_PATH = lib.makeBinPath [
    lvm2
    thin-provisioning-tools
    util-linux
    coreutils
  ];

  # rusqlite is built with its bundled SQLite: stdenv's C compiler is all it needs.

  # `cargo test` runs in the build. What needs root or real devices skips itself:
  # tests/lvm.rs and src/backend/dm.rs are #[ignore]d ("run by the VM tier"), and
  # tests/reflink.rs returns early when it cannot mount XFS (not root, CI unset). The
  # API tests start hearthd on 127.0.0.1 with port 0, which the sandbox allows.
  doCheck = true;

  meta = {
    description = "Block-storage daemon serving the OpenStack Block Storage (Cinder) v3 API";
    license = lib.licenses.asl20;
    mainProgram = "hearthd";
    platforms = lib.platforms.linux;
  };
}
