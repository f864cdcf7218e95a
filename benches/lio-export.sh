#!/bin/sh
# lio-export.sh: the configfs writes of one hearth export, done by a shell script
# (the baseline of benches/lio.rs). Same sequence as ../shared/notes/lio-configfs.md.
#
#   lio-export.sh create NAME DEVICE IQN INITIATOR USER SECRET PORTAL
#   lio-export.sh destroy NAME IQN INITIATOR PORTAL
set -eu
cfg=/sys/kernel/config/target
cmd=$1
shift
case $cmd in
create)
    name=$1 dev=$2 iqn=$3 ini=$4 user=$5 secret=$6 portal=$7
    bs=$cfg/core/iblock_0/$name
    mkdir -p "$bs"
    echo "udev_path=$dev" >"$bs/control"
    echo 1 >"$bs/enable"
    tpg=$cfg/iscsi/$iqn/tpgt_1
    mkdir -p "$tpg/lun/lun_0"
    ln -s "$bs" "$tpg/lun/lun_0/$name"
    mkdir "$tpg/np/$portal"
    mkdir -p "$tpg/acls/$ini/lun_0"
    ln -s "$tpg/lun/lun_0" "$tpg/acls/$ini/lun_0/lun_0"
    printf %s "$user" >"$tpg/acls/$ini/auth/userid"
    printf %s "$secret" >"$tpg/acls/$ini/auth/password"
    echo 1 >"$tpg/attrib/authentication"
    echo 1 >"$tpg/enable"
    ;;
destroy)
    name=$1 iqn=$2 ini=$3 portal=$4
    tpg=$cfg/iscsi/$iqn/tpgt_1
    echo 0 >"$tpg/enable"
    rm "$tpg/acls/$ini/lun_0/lun_0"
    rmdir "$tpg/acls/$ini/lun_0" "$tpg/acls/$ini"
    rm "$tpg/lun/lun_0/$name"
    rmdir "$tpg/lun/lun_0" "$tpg/np/$portal" "$tpg" "$cfg/iscsi/$iqn"
    rmdir "$cfg/core/iblock_0/$name"
    ;;
*)
    echo "usage: $0 create|destroy ..." >&2
    exit 2
    ;;
esac
