# nixos/python-packages.nix: os-brick (OpenStack's volume-attach library) and the two
# OpenStack libraries it needs that older nixpkgs lack (oslo.privsep, oslo.service), as
# a Python package-set extension. Only the VM tests' compute node uses it: it runs
# vm-tests/scenarios/compute.py, which attaches with os-brick's iSCSI connector as Nova
# does. nixpkgs' own packages win when the pinned nixpkgs has them (recent nixpkgs
# package os-brick 7.1.1 with these same sdists); the definitions below are the
# fallback. Versions are the ones the Debian tier installs from PyPI (os-brick 7.1.1,
# OpenStack 2026.1); the sdist hashes were computed from PyPI's files.
#
# flake.nix adds it through `pythonPackagesExtensions`, so `python3.withPackages (ps:
# [ ps.os-brick ])` works. Not built here (no Nix builds on the machines that wrote it).
final: prev: {
  oslo-privsep = prev.oslo-privsep or (final.callPackage (
    {
      lib,
      buildPythonPackage,
      fetchPypi,
      setuptools,
      pbr,
      cffi,
      debtcollector,
      msgpack,
      oslo-config,
      oslo-i18n,
      oslo-log,
      oslo-utils,
    }:
    buildPythonPackage rec {
      pname = "oslo-privsep";
      version = "3.12.0";
      pyproject = true;

      src = fetchPypi {
        pname = "oslo_privsep";
        inherit version;
        hash = "sha256-Fm7c1KPpgvTqhRMI32QIvGrVMj+92DrWsqefrtULlhc=";
      };

      # pyproject.toml: build-backend = "pbr.build".
      build-system = [
        setuptools
        pbr
      ];

      dependencies = [
        cffi
        debtcollector
        msgpack
        oslo-config
        oslo-i18n
        oslo-log
        oslo-utils
      ];

      # The unit tests need oslotest, fixtures and a privsep daemon; the import check and
      # the VM test exercise what hearth uses.
      doCheck = false;
      pythonImportsCheck = [ "oslo_privsep" ];

      meta = {
        description = "OpenStack library for privilege separation";
        homepage = "https://github.com/openstack/oslo.privsep";
        license = lib.licenses.asl20;
      };
    }
  ) { });

  oslo-service = prev.oslo-service or (final.callPackage (
    {
      lib,
      buildPythonPackage,
      fetchPypi,
      setuptools,
      pbr,
      debtcollector,
      eventlet,
      greenlet,
      oslo-concurrency,
      oslo-config,
      oslo-i18n,
      oslo-log,
      oslo-utils,
      paste,
      pastedeploy,
      routes,
      webob,
      yappi,
    }:
    buildPythonPackage rec {
      pname = "oslo-service";
      version = "4.8.0";
      pyproject = true;

      src = fetchPypi {
        pname = "oslo_service";
        inherit version;
        hash = "sha256-X4I1f0yLIL9AtTAmLIe4KdpKsWMd/m5YAez25dhsYKk=";
      };

      # pyproject.toml: build-backend = "pbr.build".
      build-system = [
        setuptools
        pbr
      ];

      dependencies = [
        debtcollector
        eventlet
        greenlet
        oslo-concurrency
        oslo-config
        oslo-i18n
        oslo-log
        oslo-utils
        paste
        pastedeploy
        routes
        webob
        yappi
      ];

      doCheck = false;
      pythonImportsCheck = [ "oslo_service.loopingcall" ];

      meta = {
        description = "Library for running OpenStack services";
        homepage = "https://github.com/openstack/oslo.service";
        license = lib.licenses.asl20;
      };
    }
  ) { });

  os-brick = prev.os-brick or (final.callPackage (
    {
      lib,
      buildPythonPackage,
      fetchPypi,
      setuptools,
      pbr,
      oslo-concurrency,
      oslo-config,
      oslo-context,
      oslo-i18n,
      oslo-log,
      oslo-privsep,
      oslo-serialization,
      oslo-service,
      oslo-utils,
      psutil,
      requests,
      tenacity,
    }:
    buildPythonPackage rec {
      pname = "os-brick";
      version = "7.1.1";
      pyproject = true;

      src = fetchPypi {
        pname = "os_brick";
        inherit version;
        hash = "sha256-pQNLn1flZA3BZq5RYM1Z4X83N7N22FuUm6gynDD1Vcg=";
      };

      # pyproject.toml: build-backend = "pbr.build".
      build-system = [
        setuptools
        pbr
      ];

      dependencies = [
        oslo-concurrency
        oslo-config
        oslo-context
        oslo-i18n
        oslo-log
        oslo-privsep
        oslo-serialization
        oslo-service
        oslo-utils
        pbr
        psutil
        requests
        tenacity
      ];

      doCheck = false;
      # connector imports every Linux connector class (fibre_channel pulls oslo.service).
      pythonImportsCheck = [
        "os_brick.initiator.connector"
        "os_brick.initiator.connectors.iscsi"
      ];

      meta = {
        description = "OpenStack Cinder brick library for managing local volume attaches";
        homepage = "https://github.com/openstack/os-brick";
        license = lib.licenses.asl20;
      };
    }
  ) { });
}
