//! A small client of the kernel's device-mapper ioctl interface, for fast status reads.
//!
//! Device-mapper is the kernel layer under LVM: every active logical volume is a *dm
//! device* (named `<vg>-<lv>`, see [`lv_dm_name`]) whose *table* maps its sectors onto
//! *targets* (`linear`, `thin-pool`, `thin`, ...). Reading a device's state here costs one
//! ioctl on `/dev/mapper/control` instead of an `lvs` process (tens to hundreds of
//! milliseconds, and a wait on LVM's VG lock), which is what the hot paths (capacity reports, "is it open?")
//! need. Nothing here changes a device: creating and removing stays LVM's job.
//!
//! # Protocol
//!
//! Every request is one `ioctl(2)` on the control node, `_IOWR(0xfd, cmd, struct dm_ioctl)`
//! (`include/uapi/linux/dm-ioctl.h`), whose argument is a single buffer:
//!
//! 1. The buffer starts with a 312-byte `struct dm_ioctl` header: the interface version
//!    the client speaks (4.0.0 here: the kernel refuses another major number or a newer
//!    minor one, and every command used here exists since 4.0), `data_size` (the length of
//!    the whole buffer, which bounds what the kernel reads and writes), `data_start` (312),
//!    the flags, and for per-device commands the device's name.
//! 2. The kernel answers in place. It always writes its own version into the header; a
//!    device command also fills in the header's `dev`, `open_count`, `event_nr`,
//!    `target_count`, flags, name and uuid.
//! 3. A listing command (`DM_LIST_DEVICES`, `DM_TABLE_STATUS`) also writes a result area
//!    from `data_start` to `data_size`. When that does not fit, the ioctl still succeeds
//!    but sets `DM_BUFFER_FULL_FLAG`; the client doubles the buffer and asks again.
//! 4. The result area is a chain of records:
//!    - `DM_LIST_DEVICES`: `struct dm_name_list { u64 dev; u32 next; char name[]; }`, where
//!      `next` counts bytes from the start of *this* record and 0 ends the chain (since
//!      4.37 the kernel also puts an event number and flags after each name; ignored);
//!    - `DM_TABLE_STATUS`: `struct dm_target_spec { u64 sector_start, length; s32 status;
//!      u32 next; char target_type[16]; }` followed by the target's NUL-terminated status
//!      text, where `next` counts bytes from the start of the *first* spec (not of this
//!      one), and the header's `target_count` says how many there are. Clearing
//!      `DM_STATUS_TABLE_FLAG` asks for status text; setting it would return the table.
//! 5. A failed command returns -1 with an errno: `ENXIO` when no device has the name,
//!    `EPERM` without `CAP_SYS_ADMIN`, `ENOTTY` when the node is not device-mapper's.
//!
//! The status text of each target type is its own format; [`ThinPoolStatus`] and
//! [`ThinStatus`] parse and print the two that LVM thin provisioning uses
//! (`Documentation/admin-guide/device-mapper/thin-provisioning.rst`).

use std::fmt;
use std::fs::File;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Where device-mapper's control node lives.
pub const CONTROL_PATH: &str = "/dev/mapper/control";

/// The ioctl "magic" type of device-mapper.
const DM_IOCTL: u8 = 0xfd;
/// The interface version this client speaks (see step 1 of the protocol).
const DM_VERSION: [u32; 3] = [4, 0, 0];
/// Room for a device name, including its terminating NUL.
const DM_NAME_LEN: usize = 128;
/// Room for a device uuid, including its terminating NUL.
const DM_UUID_LEN: usize = 129;
/// Room for a target type name, including its terminating NUL.
const DM_MAX_TYPE_NAME: usize = 16;

const DM_READONLY_FLAG: u32 = 1 << 0;
const DM_SUSPEND_FLAG: u32 = 1 << 1;
/// Set: `DM_TABLE_STATUS` returns the table; clear: the status. Never set here.
#[cfg_attr(not(test), allow(dead_code))]
const DM_STATUS_TABLE_FLAG: u32 = 1 << 4;
const DM_ACTIVE_PRESENT_FLAG: u32 = 1 << 5;
const DM_INACTIVE_PRESENT_FLAG: u32 = 1 << 6;
const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;

/// First buffer size for listing commands; libdevmapper starts at 16 KiB too, which
/// holds a few hundred device names.
const FIRST_BUFFER: usize = 16 << 10;
/// Largest buffer a listing may grow to before the reply counts as a failure.
const MAX_BUFFER: usize = 64 << 20;

/// `struct dm_ioctl`, the header of every request and reply.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; DM_NAME_LEN],
    uuid: [u8; DM_UUID_LEN],
    data: [u8; 7],
}

/// The header's size, which is also where the result area starts (8-byte aligned).
const HEADER_SIZE: usize = size_of::<DmIoctl>();

// The layout of include/uapi/linux/dm-ioctl.h. The size equals the sum of the field
// sizes, so the struct has no padding bytes: every byte of it is initialised.
const _: () = assert!(HEADER_SIZE == 312 && 12 + 7 * 4 + 8 + DM_NAME_LEN + DM_UUID_LEN + 7 == 312);
const _: () = assert!(offset_of!(DmIoctl, data_size) == 12 && offset_of!(DmIoctl, flags) == 28);
const _: () = assert!(offset_of!(DmIoctl, dev) == 40 && offset_of!(DmIoctl, name) == 48);
const _: () = assert!(offset_of!(DmIoctl, uuid) == 176 && offset_of!(DmIoctl, data) == 305);

/// `struct dm_name_list`: `u64 dev` at 0, `u32 next` at 8, the name from 12.
const NAME_LIST_NAME: usize = 12;
/// `struct dm_target_spec`: `u64 sector_start` at 0, `u64 length` at 8, `s32 status` at
/// 16, `u32 next` at 20, `char target_type[16]` at 24; the status text follows at 40.
const TARGET_SPEC_SIZE: usize = 40;

/// The raw ioctls, `_IOWR(0xfd, nr, struct dm_ioctl)`.
mod sys {
    use super::{DmIoctl, DM_IOCTL};
    nix::ioctl_readwrite!(dm_version, DM_IOCTL, 0, DmIoctl);
    nix::ioctl_readwrite!(dm_list_devices, DM_IOCTL, 2, DmIoctl);
    nix::ioctl_readwrite!(dm_dev_status, DM_IOCTL, 7, DmIoctl);
    nix::ioctl_readwrite!(dm_table_status, DM_IOCTL, 12, DmIoctl);
}

/// The commands this client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Version,
    ListDevices,
    DevStatus,
    TableStatus,
}

impl Command {
    /// The command's name in the kernel header, for messages.
    fn name(self) -> &'static str {
        match self {
            Command::Version => "DM_VERSION",
            Command::ListDevices => "DM_LIST_DEVICES",
            Command::DevStatus => "DM_DEV_STATUS",
            Command::TableStatus => "DM_TABLE_STATUS",
        }
    }
}

impl DmIoctl {
    /// A request header for `name` (empty for commands on no device) with `flags`.
    fn new(name: &str, flags: u32) -> DmIoctl {
        let mut header = DmIoctl {
            version: DM_VERSION,
            data_size: HEADER_SIZE as u32,
            data_start: HEADER_SIZE as u32,
            target_count: 0,
            open_count: 0,
            flags,
            event_nr: 0,
            padding: 0,
            dev: 0,
            name: [0; DM_NAME_LEN],
            uuid: [0; DM_UUID_LEN],
            data: [0; 7],
        };
        // check_name keeps names below DM_NAME_LEN, so the NUL after them stays.
        header.name[..name.len()].copy_from_slice(name.as_bytes());
        header
    }

    /// The header at the start of `buf`.
    fn read_from(buf: &[u8]) -> DmIoctl {
        assert!(buf.len() >= HEADER_SIZE, "an ioctl buffer holds at least its header");
        // SAFETY: `buf` holds at least size_of::<DmIoctl>() initialised bytes;
        // read_unaligned copies them out without needing alignment, and any bit pattern
        // is a valid DmIoctl (it has only integers and byte arrays).
        unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<DmIoctl>()) }
    }

    /// Write this header over the start of `buf`.
    fn write_to(&self, buf: &mut [u8]) {
        assert!(buf.len() >= HEADER_SIZE, "an ioctl buffer holds at least its header");
        // SAFETY: `buf` has room for a DmIoctl and is exclusively borrowed;
        // write_unaligned needs no alignment; DmIoctl has no padding (asserted by its
        // size above), so no uninitialised byte enters the buffer.
        unsafe { std::ptr::write_unaligned(buf.as_mut_ptr().cast::<DmIoctl>(), *self) }
    }
}

/// Send `command` with `buf` as its argument; `buf` starts with a request header. Sets
/// the header's `data_size` to the buffer's length first, which is what bounds the
/// kernel's reads and writes.
fn ioctl(fd: BorrowedFd<'_>, command: Command, buf: &mut [u8]) -> nix::Result<()> {
    let len = u32::try_from(buf.len()).expect("ioctl buffers stay below MAX_BUFFER");
    let mut header = DmIoctl::read_from(buf);
    header.data_size = len;
    header.write_to(buf);
    let arg = buf.as_mut_ptr().cast::<DmIoctl>();
    let fd = fd.as_raw_fd();
    // SAFETY: `arg` points to `buf`, which is live and exclusively borrowed for the whole
    // call and exactly `data_size` bytes long (set just above). The kernel copies at most
    // `data_size` bytes in and out through the pointer (dm-ioctl.c: copy_params, then
    // copy_to_user of the reply's data_size, which never exceeds the request's), needs
    // no alignment for that, and keeps no reference after returning.
    let result = unsafe {
        match command {
            Command::Version => sys::dm_version(fd, arg),
            Command::ListDevices => sys::dm_list_devices(fd, arg),
            Command::DevStatus => sys::dm_dev_status(fd, arg),
            Command::TableStatus => sys::dm_table_status(fd, arg),
        }
    };
    result.map(drop)
}

/// Why a request failed, before it is put into words with its context.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// The ioctl returned this errno.
    Errno(Errno),
    /// The kernel still said "buffer full" at this many bytes.
    TooLarge(usize),
    /// The reply does not hold what the header says it does.
    Malformed(String),
}

/// Call `call` on a zeroed buffer of `first` bytes, then on buffers twice as large while
/// the reply's header has `DM_BUFFER_FULL_FLAG` set, up to `max` bytes (step 3). `call`
/// writes the request header and does the ioctl. Returns the buffer that held the reply.
fn grow_until_fits(
    first: usize,
    max: usize,
    mut call: impl FnMut(&mut [u8]) -> nix::Result<()>,
) -> std::result::Result<Vec<u8>, Failure> {
    let mut size = first.max(HEADER_SIZE);
    loop {
        // Fresh zeroes each time: an empty device list is an untouched result area.
        let mut buf = vec![0u8; size];
        call(&mut buf).map_err(Failure::Errno)?;
        if DmIoctl::read_from(&buf).flags & DM_BUFFER_FULL_FLAG == 0 {
            return Ok(buf);
        }
        if size >= max {
            return Err(Failure::TooLarge(size));
        }
        size = size.saturating_mul(2).min(max);
    }
}

/// The result area of a reply: from `data_start` to `data_size` (the kernel leaves
/// `data_size` below `data_start` when it wrote no result).
fn result_area(buf: &[u8]) -> std::result::Result<&[u8], Failure> {
    let header = DmIoctl::read_from(buf);
    let (start, end) = (header.data_start as usize, header.data_size as usize);
    if start < HEADER_SIZE || start > buf.len() || end > buf.len() {
        return Err(Failure::Malformed(format!(
            "result area {start}..{end} lies outside the {} byte buffer",
            buf.len()
        )));
    }
    Ok(&buf[start..end.max(start)])
}

fn u32_at(area: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(area.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(area: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(area.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The NUL-terminated string at the start of `bytes` (lossily decoded: device-mapper
/// names are bytes, LVM's are ASCII).
fn c_string(bytes: &[u8], what: &str) -> std::result::Result<String, Failure> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Failure::Malformed(format!("{what} has no terminating NUL")))?;
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// The `DM_LIST_DEVICES` result area as devices (step 4).
fn parse_name_list(area: &[u8]) -> std::result::Result<Vec<DmDevice>, Failure> {
    let mut devices = Vec::new();
    // No devices: the kernel writes no result (or a single record whose dev is 0).
    if u64_at(area, 0).unwrap_or(0) == 0 {
        return Ok(devices);
    }
    let mut at = 0usize;
    loop {
        let truncated = || Failure::Malformed(format!("device record at byte {at} is cut off"));
        let dev = u64_at(area, at).ok_or_else(truncated)?;
        let next = u32_at(area, at + 8).ok_or_else(truncated)? as usize;
        let name = c_string(area.get(at + NAME_LIST_NAME..).ok_or_else(truncated)?, "a device name")?;
        devices.push(DmDevice { name, dev: DevNum::from_kernel(dev) });
        if next == 0 {
            return Ok(devices);
        }
        at = at.checked_add(next).filter(|&n| n < area.len()).ok_or_else(|| {
            Failure::Malformed(format!("device record at byte {at} points past the result ({next} bytes on)"))
        })?;
    }
}

/// The `DM_TABLE_STATUS` result area as `count` targets (step 4).
fn parse_target_specs(area: &[u8], count: u32) -> std::result::Result<Vec<TargetStatus>, Failure> {
    let mut targets = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    for i in 0..count {
        let spec = area
            .get(at..)
            .filter(|rest| rest.len() >= TARGET_SPEC_SIZE)
            .ok_or_else(|| Failure::Malformed(format!("target {i} of {count} at byte {at} is cut off")))?;
        let start = u64_at(spec, 0).expect("length checked");
        let length = u64_at(spec, 8).expect("length checked");
        let next = u32_at(spec, 20).expect("length checked") as usize;
        let target_type = c_string(&spec[24..24 + DM_MAX_TYPE_NAME], "a target type")?;
        let params = c_string(&spec[TARGET_SPEC_SIZE..], "a target's status")?;
        targets.push(TargetStatus { start, length, target_type, params: params.trim_end().to_string() });
        // `next` counts from the first spec, not from this one.
        if i + 1 < count && next <= at {
            return Err(Failure::Malformed(format!("target {i} at byte {at} points back to byte {next}")));
        }
        at = next;
    }
    Ok(targets)
}

/// Refuse names the kernel could not hold; a name that passes may still name no device.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() >= DM_NAME_LEN || name.contains(['\0', '/']) {
        return Err(Error::Backend(format!(
            "{name:?} is not a device-mapper name (1 to {} bytes, no NUL or '/')",
            DM_NAME_LEN - 1
        )));
    }
    Ok(())
}

/// A device number as `ls -l` and dmsetup print it, `major:minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevNum {
    /// The driver's number (device-mapper's is dynamic, often 253 or 254).
    pub major: u32,
    /// The device's number within the driver.
    pub minor: u32,
}

impl DevNum {
    /// Decode the kernel's `huge_encode_dev` form, the same as glibc's `dev_t`.
    fn from_kernel(dev: u64) -> DevNum {
        DevNum { major: nix::sys::stat::major(dev) as u32, minor: nix::sys::stat::minor(dev) as u32 }
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One dm device, as `DM_LIST_DEVICES` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmDevice {
    /// Its name (the node is `/dev/mapper/<name>`).
    pub name: String,
    /// Its block device number.
    pub dev: DevNum,
}

/// A device's state, as `DM_DEV_STATUS` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its name.
    pub name: String,
    /// Its uuid (`LVM-<vg uuid><lv uuid>` for LVM's), when it has one.
    pub uuid: Option<String>,
    /// Its block device number.
    pub dev: DevNum,
    /// How many opens of the block device are outstanding (mounts, exports, holders
    /// such as a thin LV on its pool, and any process with it open).
    pub open_count: i32,
    /// The event counter, bumped by target events (a thin pool crossing its low-water
    /// mark, say) and table swaps.
    pub event_nr: u32,
    /// Targets in the active table (0 without one).
    pub target_count: u32,
    /// Whether a table is live (a device without one errors all I/O).
    pub active_table: bool,
    /// Whether a table is loaded and waiting for a resume.
    pub inactive_table: bool,
    /// Whether I/O is suspended.
    pub suspended: bool,
    /// Whether the device is read-only.
    pub read_only: bool,
}

impl DeviceInfo {
    fn from_header(header: &DmIoctl) -> std::result::Result<DeviceInfo, Failure> {
        let uuid = c_string(&header.uuid, "the uuid")?;
        Ok(DeviceInfo {
            name: c_string(&header.name, "the name")?,
            uuid: (!uuid.is_empty()).then_some(uuid),
            dev: DevNum::from_kernel(header.dev),
            open_count: header.open_count,
            event_nr: header.event_nr,
            target_count: header.target_count,
            active_table: header.flags & DM_ACTIVE_PRESENT_FLAG != 0,
            inactive_table: header.flags & DM_INACTIVE_PRESENT_FLAG != 0,
            suspended: header.flags & DM_SUSPEND_FLAG != 0,
            read_only: header.flags & DM_READONLY_FLAG != 0,
        })
    }
}

/// One target of a device's active table with its status text, as `DM_TABLE_STATUS`
/// reports it. Displays as a line of `dmsetup status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    /// First sector (512 bytes) of the device that the target maps.
    pub start: u64,
    /// Sectors the target maps.
    pub length: u64,
    /// The target type (`linear`, `thin-pool`, `thin`, ...).
    pub target_type: String,
    /// The target's status text, trailing whitespace removed.
    pub params: String,
}

impl TargetStatus {
    /// The status of a `thin-pool` target; an error for any other target type.
    pub fn thin_pool(&self) -> Result<ThinPoolStatus> {
        self.expect_type("thin-pool")?;
        self.params.parse()
    }

    /// The status of a `thin` target; an error for any other target type.
    pub fn thin(&self) -> Result<ThinStatus> {
        self.expect_type("thin")?;
        self.params.parse()
    }

    fn expect_type(&self, wanted: &str) -> Result<()> {
        if self.target_type != wanted {
            return Err(Error::Backend(format!("expected a {wanted} target, found {self}")));
        }
        Ok(())
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.start, self.length, self.target_type)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

/// A handle on device-mapper's control node. Holds one open file; every method is one
/// or a few ioctls on it and the handle can be shared between threads.
///
/// Needs `CAP_SYS_ADMIN` (every ioctl fails with `EPERM` without it).
#[derive(Debug)]
pub struct DmControl {
    file: File,
    path: PathBuf,
}

impl DmControl {
    /// Open `/dev/mapper/control`.
    pub fn open() -> Result<DmControl> {
        DmControl::open_at(Path::new(CONTROL_PATH))
    }

    /// Open the control node at `path` (tests point this elsewhere). Fails when the
    /// node cannot be opened; that it is device-mapper's shows at the first request.
    pub fn open_at(path: &Path) -> Result<DmControl> {
        let file = File::open(path)
            .map_err(|e| Error::Backend(format!("opening the device-mapper control node {}: {e}", path.display())))?;
        Ok(DmControl { file, path: path.to_path_buf() })
    }

    /// The kernel's device-mapper interface version (`DM_VERSION`), e.g. `(4, 47, 0)`.
    pub fn version(&self) -> Result<(u32, u32, u32)> {
        let buf = self.request(Command::Version, "", HEADER_SIZE)?;
        let [major, minor, patch] = DmIoctl::read_from(&buf).version;
        Ok((major, minor, patch))
    }

    /// Every dm device, in the kernel's (name) order (`DM_LIST_DEVICES`).
    pub fn list_devices(&self) -> Result<Vec<DmDevice>> {
        self.list_devices_from(FIRST_BUFFER)
    }

    fn list_devices_from(&self, first: usize) -> Result<Vec<DmDevice>> {
        let command = Command::ListDevices;
        let buf = self.request(command, "", first)?;
        result_area(&buf).and_then(parse_name_list).map_err(|f| self.error(command, "", f))
    }

    /// The state of the device called `name` (`DM_DEV_STATUS`), or `None` when there is
    /// none (`ENXIO`).
    pub fn device_info(&self, name: &str) -> Result<Option<DeviceInfo>> {
        check_name(name)?;
        let command = Command::DevStatus;
        let buf = match self.try_request(command, name, HEADER_SIZE) {
            Err(Failure::Errno(Errno::ENXIO)) => return Ok(None),
            other => other.map_err(|f| self.error(command, name, f))?,
        };
        let info = DeviceInfo::from_header(&DmIoctl::read_from(&buf)).map_err(|f| self.error(command, name, f))?;
        Ok(Some(info))
    }

    /// The status of each target of the active table of the device called `name`
    /// (`DM_TABLE_STATUS` without `DM_STATUS_TABLE_FLAG`), in sector order; empty when
    /// the device has no active table, an error (`ENXIO`) when there is no such device.
    ///
    /// Without `DM_NOFLUSH_FLAG`, as here, a thin pool commits its metadata first so
    /// that the numbers are current.
    pub fn table_status(&self, name: &str) -> Result<Vec<TargetStatus>> {
        self.table_status_from(name, FIRST_BUFFER)
    }

    fn table_status_from(&self, name: &str, first: usize) -> Result<Vec<TargetStatus>> {
        check_name(name)?;
        let command = Command::TableStatus;
        let buf = self.request(command, name, first)?;
        let count = DmIoctl::read_from(&buf).target_count;
        result_area(&buf).and_then(|area| parse_target_specs(area, count)).map_err(|f| self.error(command, name, f))
    }

    /// The status of the thin pool whose `thin-pool` target is the device called `name`
    /// (for LVM, `<vg>-<pool>-tpool`: see [`lv_layer_dm_name`]).
    pub fn thin_pool_status(&self, name: &str) -> Result<ThinPoolStatus> {
        self.single_target(name)?.thin_pool()
    }

    /// The status of the thin volume whose `thin` target is the device called `name`.
    pub fn thin_status(&self, name: &str) -> Result<ThinStatus> {
        self.single_target(name)?.thin()
    }

    fn single_target(&self, name: &str) -> Result<TargetStatus> {
        let mut targets = self.table_status(name)?;
        match targets.len() {
            1 => Ok(targets.remove(0)),
            n => Err(Error::Backend(format!("device-mapper device {name:?} has {n} targets, expected one"))),
        }
    }

    fn request(&self, command: Command, name: &str, first: usize) -> Result<Vec<u8>> {
        self.try_request(command, name, first).map_err(|f| self.error(command, name, f))
    }

    /// Steps 1 to 3: send `command` about `name` (no flags: every command here asks for
    /// status), growing the buffer from `first` bytes as needed; the buffer holding the
    /// reply.
    fn try_request(&self, command: Command, name: &str, first: usize) -> std::result::Result<Vec<u8>, Failure> {
        REQUESTS.with(|n| n.set(n.get() + 1));
        let header = DmIoctl::new(name, 0);
        grow_until_fits(first, MAX_BUFFER, |buf| {
            header.write_to(buf);
            ioctl(self.file.as_fd(), command, buf)
        })
    }

    /// A failure put into words: the ioctl, the device (empty: none), the node, and why.
    fn error(&self, command: Command, name: &str, failure: Failure) -> Error {
        let device = if name.is_empty() { String::new() } else { format!(" of device-mapper device {name:?}") };
        let why = match failure {
            Failure::Errno(errno) => format!("failed with {errno}"),
            Failure::TooLarge(size) => format!("reply does not fit in {size} bytes"),
            Failure::Malformed(what) => format!("malformed reply: {what}"),
        };
        Error::Backend(format!("{}{device} on {}: {why}", command.name(), self.path.display()))
    }
}

thread_local! {
    static REQUESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many device-mapper requests this thread has made so far: the difference
/// around a piece of work is what it cost (hearth logs it for each change it settles).
pub fn requests_on_this_thread() -> u64 {
    REQUESTS.with(|n| n.get())
}

/// The device-mapper name LVM gives logical volume `lv` of volume group `vg`:
/// `<vg>-<lv>` with every `-` inside either name doubled, so the separator stays
/// unambiguous (`hearth-volumes`, `volume-1` → `hearth--volumes-volume--1`).
pub fn lv_dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// The device-mapper name of one of LVM's hidden layers of an LV: `<lv_dm_name>-<layer>`.
/// A thin pool's `thin-pool` target is its `tpool` layer once the pool has thin volumes
/// (`hearth--volumes-pool0-tpool`); its data and metadata are the LVs `pool0_tdata` and
/// `pool0_tmeta`.
pub fn lv_layer_dm_name(vg: &str, lv: &str, layer: &str) -> String {
    format!("{}-{}", lv_dm_name(vg, lv), layer.replace('-', "--"))
}

/// Define an enum of the keywords a status line uses, with its kernel spelling.
macro_rules! keywords {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The kernel's word for it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            fn from_word(word: &str) -> Option<$name> {
                match word {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keywords! {
    /// Whether a thin pool takes writes.
    PoolMode {
        /// Normal operation.
        ReadWrite => "rw",
        /// Metadata trouble made the pool read-only.
        ReadOnly => "ro",
        /// The data device is full: writes to unprovisioned blocks queue or fail.
        OutOfDataSpace => "out_of_data_space",
    }
}

keywords! {
    /// What a thin pool does with discards.
    Discards {
        /// Discards are ignored.
        Ignore => "ignore_discard",
        /// Discards free pool blocks and go down to the data device.
        Passdown => "discard_passdown",
        /// Discards free pool blocks but stop at the pool.
        NoPassdown => "no_discard_passdown",
    }
}

keywords! {
    /// What a full thin pool does with writes to unprovisioned blocks.
    NoSpacePolicy {
        /// Fail them at once.
        Error => "error_if_no_space",
        /// Queue them (60 s by default) in the hope that the pool grows.
        Queue => "queue_if_no_space",
    }
}

/// The status of a `thin-pool` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThinPoolStatus {
    /// The pool works; its usage.
    Working(ThinPoolUsage),
    /// The pool has failed (`Fail`): its metadata is unusable.
    Fail,
    /// The kernel could not read the pool's metadata for the status (`Error`).
    Error,
}

/// A working thin pool's status line:
///
/// ```text
/// <transaction id> <used metadata blocks>/<total metadata blocks>
/// <used data blocks>/<total data blocks> <held metadata root>
/// ro|rw|out_of_data_space [no_]discard_passdown|ignore_discard
/// error_if_no_space|queue_if_no_space needs_check|- [<metadata low watermark>]
/// ```
///
/// Metadata blocks are 4 KiB; data blocks are the pool's chunk size (its table's
/// `data_block_size`, in sectors). Words the kernel may add after these are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThinPoolUsage {
    /// The userspace-maintained transaction id (LVM's `transaction_id`).
    pub transaction_id: u64,
    /// Metadata blocks in use.
    pub used_metadata_blocks: u64,
    /// Metadata blocks in all.
    pub total_metadata_blocks: u64,
    /// Data blocks in use.
    pub used_data_blocks: u64,
    /// Data blocks in all.
    pub total_data_blocks: u64,
    /// The metadata snapshot held for userspace tools, if any (`-`: none).
    pub held_metadata_root: Option<u64>,
    /// Whether the pool takes writes.
    pub mode: PoolMode,
    /// What it does with discards.
    pub discards: Discards,
    /// What it does with writes when full.
    pub no_space: NoSpacePolicy,
    /// Whether the metadata is flagged for `thin_check` (`needs_check`, else `-`).
    pub needs_check: bool,
    /// Free metadata blocks below which the kernel raises an event (Linux 4.19 and
    /// later print it).
    pub metadata_low_watermark: Option<u64>,
}

impl ThinPoolUsage {
    /// Data blocks in use, in percent (what `lvs -o data_percent` shows).
    pub fn data_percent(&self) -> f64 {
        percent(self.used_data_blocks, self.total_data_blocks)
    }

    /// Metadata blocks in use, in percent (what `lvs -o metadata_percent` shows).
    pub fn metadata_percent(&self) -> f64 {
        percent(self.used_metadata_blocks, self.total_metadata_blocks)
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

impl ThinPoolStatus {
    /// The usage of a working pool.
    pub fn usage(&self) -> Option<&ThinPoolUsage> {
        match self {
            ThinPoolStatus::Working(usage) => Some(usage),
            ThinPoolStatus::Fail | ThinPoolStatus::Error => None,
        }
    }
}

fn bad_status(target: &str, line: &str, why: impl fmt::Display) -> Error {
    Error::Backend(format!("cannot parse the {target} status {line:?}: {why}"))
}

/// `-` as `None`, else a number.
fn optional_number(word: &str) -> std::result::Result<Option<u64>, String> {
    match word {
        "-" => Ok(None),
        _ => word.parse().map(Some).map_err(|_| format!("{word:?} is neither a number nor '-'")),
    }
}

fn number(word: &str, what: &str) -> std::result::Result<u64, String> {
    word.parse().map_err(|_| format!("{what} {word:?} is not a number"))
}

/// `<used>/<total>`.
fn fraction(word: &str, what: &str) -> std::result::Result<(u64, u64), String> {
    let (used, total) = word.split_once('/').ok_or_else(|| format!("{what} {word:?} is not <used>/<total>"))?;
    Ok((number(used, what)?, number(total, what)?))
}

impl FromStr for ThinPoolStatus {
    type Err = Error;

    fn from_str(line: &str) -> Result<ThinPoolStatus> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["Fail"] => return Ok(ThinPoolStatus::Fail),
            ["Error"] => return Ok(ThinPoolStatus::Error),
            _ => {}
        }
        if words.len() < 8 {
            return Err(bad_status("thin-pool", line, format!("{} words, expected at least 8", words.len())));
        }
        fn keyword<T>(word: &str, parse: fn(&str) -> Option<T>, what: &str) -> std::result::Result<T, String> {
            parse(word).ok_or_else(|| format!("{what} {word:?} is unknown"))
        }
        let parse = || -> std::result::Result<ThinPoolUsage, String> {
            let (used_metadata_blocks, total_metadata_blocks) = fraction(words[1], "metadata usage")?;
            let (used_data_blocks, total_data_blocks) = fraction(words[2], "data usage")?;
            Ok(ThinPoolUsage {
                transaction_id: number(words[0], "transaction id")?,
                used_metadata_blocks,
                total_metadata_blocks,
                used_data_blocks,
                total_data_blocks,
                held_metadata_root: optional_number(words[3])?,
                mode: keyword(words[4], PoolMode::from_word, "mode")?,
                discards: keyword(words[5], Discards::from_word, "discard mode")?,
                no_space: keyword(words[6], NoSpacePolicy::from_word, "no-space policy")?,
                needs_check: match words[7] {
                    "needs_check" => true,
                    "-" => false,
                    other => return Err(format!("{other:?} is neither needs_check nor '-'")),
                },
                metadata_low_watermark: words.get(8).map(|w| number(w, "metadata low watermark")).transpose()?,
            })
        };
        parse().map(ThinPoolStatus::Working).map_err(|why| bad_status("thin-pool", line, why))
    }
}

impl fmt::Display for ThinPoolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self {
            ThinPoolStatus::Fail => return f.write_str("Fail"),
            ThinPoolStatus::Error => return f.write_str("Error"),
            ThinPoolStatus::Working(u) => u,
        };
        write!(
            f,
            "{} {}/{} {}/{} ",
            u.transaction_id, u.used_metadata_blocks, u.total_metadata_blocks, u.used_data_blocks, u.total_data_blocks
        )?;
        match u.held_metadata_root {
            Some(root) => write!(f, "{root} ")?,
            None => f.write_str("- ")?,
        }
        write!(f, "{} {} {} {}", u.mode, u.discards, u.no_space, if u.needs_check { "needs_check" } else { "-" })?;
        if let Some(mark) = u.metadata_low_watermark {
            write!(f, " {mark}")?;
        }
        Ok(())
    }
}

/// The status of a `thin` target (a thin volume).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThinStatus {
    /// The volume works; its usage.
    Working(ThinUsage),
    /// Its pool has failed (`Fail`).
    Fail,
    /// The kernel could not read the volume's metadata for the status (`Error`).
    Error,
}

/// A working thin volume's status line: `<nr mapped sectors> <highest mapped sector>`,
/// the latter `-` while nothing is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThinUsage {
    /// Sectors backed by pool blocks (whole blocks, so a multiple of the chunk size).
    pub mapped_sectors: u64,
    /// The last sector of the highest mapped block, if any block is mapped.
    pub highest_mapped_sector: Option<u64>,
}

impl ThinStatus {
    /// The usage of a working thin volume.
    pub fn usage(&self) -> Option<ThinUsage> {
        match self {
            ThinStatus::Working(usage) => Some(*usage),
            ThinStatus::Fail | ThinStatus::Error => None,
        }
    }
}

impl FromStr for ThinStatus {
    type Err = Error;

    fn from_str(line: &str) -> Result<ThinStatus> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["Fail"] => Ok(ThinStatus::Fail),
            ["Error"] => Ok(ThinStatus::Error),
            [mapped, highest] => {
                let parse = || -> std::result::Result<ThinUsage, String> {
                    Ok(ThinUsage {
                        mapped_sectors: number(mapped, "mapped sector count")?,
                        highest_mapped_sector: optional_number(highest)?,
                    })
                };
                parse().map(ThinStatus::Working).map_err(|why| bad_status("thin", line, why))
            }
            // A lone "-" is a thin target whose device is not open in its pool.
            _ => Err(bad_status("thin", line, "expected <mapped sectors> <highest mapped sector>, Fail or Error")),
        }
    }
}

impl fmt::Display for ThinStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThinStatus::Fail => f.write_str("Fail"),
            ThinStatus::Error => f.write_str("Error"),
            ThinStatus::Working(ThinUsage { mapped_sectors, highest_mapped_sector: Some(h) }) => {
                write!(f, "{mapped_sectors} {h}")
            }
            ThinStatus::Working(ThinUsage { mapped_sectors, highest_mapped_sector: None }) => {
                write!(f, "{mapped_sectors} -")
            }
        }
    }
}

/// Fuzzing: everything read from device-mapper's replies (see `crate::fuzzing`):
/// `buf` as a whole reply buffer (header, then the result area as a device list and
/// as target specs), and as status lines of thin-pool and thin targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_replies(buf: &[u8]) {
    if buf.len() >= HEADER_SIZE {
        let header = DmIoctl::read_from(buf);
        let _ = DeviceInfo::from_header(&header);
        if let Ok(area) = result_area(buf) {
            let _ = parse_name_list(area);
            if let Ok(targets) = parse_target_specs(area, header.target_count.min(1024)) {
                for t in targets {
                    let _ = t.to_string();
                    let _ = t
                        .thin_pool()
                        .map(|s| (s.to_string(), s.usage().map(|u| (u.data_percent(), u.metadata_percent()))));
                    let _ = t.thin().map(|s| (s.to_string(), s.usage()));
                }
            }
        }
    }
    let text = String::from_utf8_lossy(buf);
    for line in text.lines() {
        if let Ok(status) = line.parse::<ThinPoolStatus>() {
            let shown = status.to_string();
            assert_eq!(shown.parse::<ThinPoolStatus>().ok(), Some(status.clone()), "{line:?} shown as {shown:?}");
            if let Some(u) = status.usage() {
                let _ = (u.data_percent(), u.metadata_percent());
            }
        }
        if let Ok(status) = line.parse::<ThinStatus>() {
            let shown = status.to_string();
            assert_eq!(shown.parse::<ThinStatus>().ok(), Some(status.clone()), "{line:?} shown as {shown:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- a fake kernel: replies laid out as drivers/md/dm-ioctl.c lays them out ---------

    fn align8(n: usize) -> usize {
        (n + 7) & !7
    }

    /// The kernel's `huge_encode_dev`.
    fn encode_dev(major: u32, minor: u32) -> u64 {
        u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
    }

    /// What `ctl_ioctl` does around every command: it starts the reply's `data_size` at
    /// `offsetof(struct dm_ioctl, data)` and writes its own version.
    fn kernel_header(buf: &[u8]) -> (DmIoctl, usize) {
        let mut h = DmIoctl::read_from(buf);
        let param_size = h.data_size as usize;
        assert_eq!(param_size, buf.len(), "data_size is the buffer's length");
        h.data_size = offset_of!(DmIoctl, data) as u32;
        h.version = [4, 47, 0];
        (h, param_size)
    }

    /// `list_devices`: records with the event number and flags words (interface 4.37+).
    fn kernel_list_devices(buf: &mut [u8], devices: &[(&str, u64)]) {
        let (mut h, param_size) = kernel_header(buf);
        let needed: usize =
            devices.iter().map(|(name, _)| align8(NAME_LIST_NAME + name.len() + 1) + align8(2 * 4)).sum();
        h.data_start = align8(HEADER_SIZE) as u32;
        let len = param_size - h.data_start as usize;
        if len < needed || len < 8 {
            h.flags |= DM_BUFFER_FULL_FLAG;
            h.write_to(buf);
            return;
        }
        h.data_size = h.data_start + needed as u32;
        let base = h.data_start as usize;
        let (mut at, mut old) = (base, None::<usize>);
        buf[at..at + 8].copy_from_slice(&0u64.to_ne_bytes()); // "flags no data"
        for (name, dev) in devices {
            if let Some(old) = old {
                buf[old + 8..old + 12].copy_from_slice(&((at - old) as u32).to_ne_bytes());
            }
            buf[at..at + 8].copy_from_slice(&dev.to_ne_bytes());
            buf[at + 8..at + 12].copy_from_slice(&0u32.to_ne_bytes());
            buf[at + 12..at + 12 + name.len()].copy_from_slice(name.as_bytes());
            buf[at + 12 + name.len()] = 0;
            old = Some(at);
            let event_nr = align8(at + 12 + name.len() + 1);
            buf[event_nr..event_nr + 4].copy_from_slice(&7u32.to_ne_bytes());
            buf[event_nr + 4..event_nr + 8].copy_from_slice(&0u32.to_ne_bytes());
            at = align8(event_nr + 8);
        }
        h.write_to(buf);
    }

    /// `table_status` → `retrieve_status`, including its buffer-full cases.
    fn kernel_table_status(buf: &mut [u8], targets: &[(u64, u64, &str, &str)]) {
        let (mut h, param_size) = kernel_header(buf);
        assert_eq!(h.flags & DM_STATUS_TABLE_FLAG, 0, "asks for status, not the table");
        h.data_start = align8(HEADER_SIZE) as u32;
        let base = h.data_start as usize;
        let len = param_size - base;
        let (mut out, mut used) = (0usize, 0usize);
        for &(start, length, target_type, params) in targets {
            if len - out <= TARGET_SPEC_SIZE {
                h.flags |= DM_BUFFER_FULL_FLAG;
                break;
            }
            let spec = base + out;
            buf[spec..spec + 8].copy_from_slice(&start.to_ne_bytes());
            buf[spec + 8..spec + 16].copy_from_slice(&length.to_ne_bytes());
            buf[spec + 16..spec + 20].copy_from_slice(&0i32.to_ne_bytes());
            buf[spec + 24..spec + 24 + target_type.len()].copy_from_slice(target_type.as_bytes());
            out += TARGET_SPEC_SIZE;
            let remaining = len - out;
            // The target's status() writes at most `remaining` bytes, NUL included.
            let text = &params.as_bytes()[..params.len().min(remaining - 1)];
            buf[base + out..base + out + text.len()].copy_from_slice(text);
            buf[base + out + text.len()] = 0;
            let l = text.len() + 1;
            if l == remaining {
                h.flags |= DM_BUFFER_FULL_FLAG;
                break;
            }
            out += l;
            used = base + out;
            out = align8(out);
            buf[spec + 20..spec + 24].copy_from_slice(&(out as u32).to_ne_bytes());
        }
        if used != 0 {
            h.data_size = used as u32;
        }
        h.target_count = targets.len() as u32;
        h.write_to(buf);
    }

    /// A request as `DmControl::try_request` sends it, answered by `kernel`.
    fn exchange(
        name: &str,
        first: usize,
        mut kernel: impl FnMut(&mut [u8]),
    ) -> std::result::Result<(Vec<u8>, Vec<usize>), Failure> {
        let mut sizes = Vec::new();
        let header = DmIoctl::new(name, 0);
        let buf = grow_until_fits(first, MAX_BUFFER, |buf| {
            header.write_to(buf);
            let mut h = DmIoctl::read_from(buf);
            h.data_size = buf.len() as u32;
            h.write_to(buf);
            sizes.push(buf.len());
            kernel(buf);
            Ok(())
        })?;
        Ok((buf, sizes))
    }

    const POOL_STATUS: &str = "1 12/1024 39/8192 - rw discard_passdown queue_if_no_space - 256 ";

    fn lvm_targets() -> Vec<(u64, u64, &'static str, &'static str)> {
        vec![(0, 1048576, "thin-pool", POOL_STATUS), (1048576, 2048, "linear", ""), (1050624, 8, "error", "")]
    }

    #[test]
    fn header_is_the_kernel_layout() {
        let mut buf = vec![0u8; HEADER_SIZE + 8];
        let mut h = DmIoctl::new("hearth--volumes-thick0", DM_SUSPEND_FLAG);
        h.dev = encode_dev(253, 3);
        h.write_to(&mut buf);
        assert_eq!(&buf[0..12], [4u32, 0, 0].map(u32::to_ne_bytes).concat());
        assert_eq!(&buf[16..20], 312u32.to_ne_bytes(), "data_start");
        assert_eq!(&buf[28..32], DM_SUSPEND_FLAG.to_ne_bytes(), "flags");
        assert_eq!(&buf[40..48], 0xfd03u64.to_ne_bytes(), "dev");
        assert_eq!(&buf[48..71], b"hearth--volumes-thick0\0");
        let back = DmIoctl::read_from(&buf);
        assert_eq!((back.name, back.flags, back.dev), (h.name, h.flags, h.dev));
    }

    #[test]
    fn ioctl_numbers_are_iowr_0xfd() {
        use nix::sys::ioctl::ioctl_num_type;
        // _IOWR(0xfd, nr, struct dm_ioctl): direction 3, size 312, type 0xfd, number.
        let iowr = |nr: ioctl_num_type| (3 << 30) | (312 << 16) | (0xfd << 8) | nr;
        assert_eq!(iowr(0), 0xc138_fd00, "DM_VERSION");
        assert_eq!(nix::request_code_readwrite!(DM_IOCTL, 0, HEADER_SIZE), iowr(0));
        assert_eq!(nix::request_code_readwrite!(DM_IOCTL, 2, HEADER_SIZE), iowr(2));
        assert_eq!(nix::request_code_readwrite!(DM_IOCTL, 7, HEADER_SIZE), iowr(7));
        assert_eq!(nix::request_code_readwrite!(DM_IOCTL, 12, HEADER_SIZE), iowr(12));
    }

    #[test]
    fn device_numbers_decode() {
        assert_eq!(DevNum::from_kernel(0xfd03), DevNum { major: 253, minor: 3 });
        assert_eq!(DevNum::from_kernel(encode_dev(254, 300)), DevNum { major: 254, minor: 300 });
        assert_eq!(DevNum::from_kernel(encode_dev(253, 1 << 19)).to_string(), format!("253:{}", 1 << 19));
    }

    #[test]
    fn device_list_is_parsed_from_the_name_chain() {
        let devices = [
            ("hearth--volumes-pool0-tpool", encode_dev(253, 2)),
            ("hearth--volumes-thick0", encode_dev(253, 0)),
            ("x", encode_dev(254, 300)),
        ];
        let (buf, sizes) = exchange("", FIRST_BUFFER, |buf| kernel_list_devices(buf, &devices)).unwrap();
        assert_eq!(sizes, [FIRST_BUFFER]);
        let got = result_area(&buf).and_then(parse_name_list).unwrap();
        let want: Vec<DmDevice> = devices
            .iter()
            .map(|(name, dev)| DmDevice { name: name.to_string(), dev: DevNum::from_kernel(*dev) })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn no_devices_is_an_empty_list() {
        let (buf, _) = exchange("", FIRST_BUFFER, |buf| kernel_list_devices(buf, &[])).unwrap();
        assert_eq!(result_area(&buf).unwrap(), b"", "the kernel writes no result");
        assert_eq!(parse_name_list(result_area(&buf).unwrap()), Ok(vec![]));
    }

    #[test]
    fn a_full_buffer_is_doubled_until_the_list_fits() {
        let names: Vec<String> = (0..500).map(|i| format!("hearth--volumes-volume--{i:04}")).collect();
        let devices: Vec<(&str, u64)> =
            names.iter().enumerate().map(|(i, n)| (n.as_str(), encode_dev(253, i as u32))).collect();
        let (buf, sizes) = exchange("", 400, |buf| kernel_list_devices(buf, &devices)).unwrap();
        assert_eq!(sizes, [400, 800, 1600, 3200, 6400, 12800, 25600, 51200]);
        let got = result_area(&buf).and_then(parse_name_list).unwrap();
        assert_eq!(got.len(), 500);
        assert_eq!(got[499].name, "hearth--volumes-volume--0499");
        assert_eq!(got[499].dev, DevNum { major: 253, minor: 499 });
    }

    #[test]
    fn a_reply_that_never_fits_is_an_error() {
        let got = grow_until_fits(1024, 4096, |buf| {
            let mut h = DmIoctl::read_from(buf);
            h.flags |= DM_BUFFER_FULL_FLAG;
            h.write_to(buf);
            Ok(())
        });
        assert_eq!(got, Err(Failure::TooLarge(4096)));
    }

    #[test]
    fn an_errno_stops_the_request() {
        let mut calls = 0;
        let got = grow_until_fits(1024, 4096, |_| {
            calls += 1;
            Err(Errno::ENXIO)
        });
        assert_eq!((got, calls), (Err(Failure::Errno(Errno::ENXIO)), 1));
    }

    #[test]
    fn table_status_follows_next_from_the_first_spec() {
        let targets = lvm_targets();
        let (buf, sizes) = exchange("vg-pool", FIRST_BUFFER, |buf| kernel_table_status(buf, &targets)).unwrap();
        assert_eq!(sizes, [FIRST_BUFFER]);
        let header = DmIoctl::read_from(&buf);
        let got = parse_target_specs(result_area(&buf).unwrap(), header.target_count).unwrap();
        let want: Vec<TargetStatus> = targets
            .iter()
            .map(|&(start, length, t, p)| TargetStatus {
                start,
                length,
                target_type: t.to_string(),
                params: p.trim_end().to_string(),
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[0].to_string(), format!("0 1048576 thin-pool {}", POOL_STATUS.trim_end()));
        // The second spec's `next` counts from the first spec, not from the second.
        let area = result_area(&buf).unwrap();
        let second = align8(TARGET_SPEC_SIZE + POOL_STATUS.len() + 1);
        assert_eq!(u32_at(area, 20), Some(second as u32));
        assert_eq!(u32_at(area, second + 20), Some((second + TARGET_SPEC_SIZE + 8) as u32));
    }

    #[test]
    fn table_status_grows_through_every_buffer_full_case() {
        let targets = lvm_targets();
        // Too small for a spec, a spec but a cut status, room for one target only...
        for first in [HEADER_SIZE, HEADER_SIZE + 41, HEADER_SIZE + 60, HEADER_SIZE + 130] {
            let (buf, sizes) = exchange("vg-pool", first, |buf| kernel_table_status(buf, &targets)).unwrap();
            assert!(sizes.len() > 1, "{first}: {sizes:?}");
            let header = DmIoctl::read_from(&buf);
            let got = parse_target_specs(result_area(&buf).unwrap(), header.target_count).unwrap();
            assert_eq!(got.len(), 3, "{first}");
            assert_eq!(got[0].params, POOL_STATUS.trim_end(), "{first}");
        }
    }

    #[test]
    fn no_active_table_is_no_targets() {
        let (buf, _) = exchange("vg-lv", FIRST_BUFFER, |buf| kernel_table_status(buf, &[])).unwrap();
        assert_eq!(parse_target_specs(result_area(&buf).unwrap(), 0), Ok(vec![]));
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let short = [0u8; 20];
        assert!(matches!(parse_target_specs(&short, 1), Err(Failure::Malformed(_))));
        let mut no_nul = vec![1u8; 64];
        no_nul[8..12].copy_from_slice(&0u32.to_ne_bytes());
        assert!(matches!(parse_name_list(&no_nul), Err(Failure::Malformed(_))));
        let mut loops = vec![0u8; 64];
        loops[0] = 1;
        loops[8..12].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(matches!(parse_name_list(&loops), Err(Failure::Malformed(_))));
        let mut buf = vec![0u8; HEADER_SIZE];
        let mut h = DmIoctl::new("", 0);
        h.data_size = 9999;
        h.write_to(&mut buf);
        assert!(matches!(result_area(&buf), Err(Failure::Malformed(_))));
    }

    #[test]
    fn device_info_reads_the_header() {
        let mut h = DmIoctl::new("hearth--volumes-thick0", 0);
        h.flags = DM_ACTIVE_PRESENT_FLAG | DM_READONLY_FLAG;
        h.open_count = 2;
        h.event_nr = 5;
        h.target_count = 1;
        h.dev = encode_dev(253, 0);
        h.uuid[..8].copy_from_slice(b"LVM-abcd");
        let info = DeviceInfo::from_header(&h).unwrap();
        assert_eq!(
            info,
            DeviceInfo {
                name: "hearth--volumes-thick0".into(),
                uuid: Some("LVM-abcd".into()),
                dev: DevNum { major: 253, minor: 0 },
                open_count: 2,
                event_nr: 5,
                target_count: 1,
                active_table: true,
                inactive_table: false,
                suspended: false,
                read_only: true,
            }
        );
        assert_eq!(DeviceInfo::from_header(&DmIoctl::new("x", 0)).unwrap().uuid, None);
    }

    #[test]
    fn errors_name_the_ioctl_the_device_and_the_errno() {
        // A regular file is no control node: every ioctl on it fails with ENOTTY.
        let file = tempfile::NamedTempFile::new().unwrap();
        let dm = DmControl::open_at(file.path()).unwrap();
        let message = |r: Result<_>| match r {
            Err(Error::Backend(m)) => m,
            other => panic!("expected a backend error, got {other:?}"),
        };
        let m = message(dm.version().map(drop));
        assert!(m.starts_with("DM_VERSION on ") && m.contains(": failed with ENOTTY"), "{m}");
        let m = message(dm.device_info("hearth--volumes-thick0").map(drop));
        assert!(m.starts_with("DM_DEV_STATUS of device-mapper device \"hearth--volumes-thick0\" on "), "{m}");
        assert!(m.contains("ENOTTY"), "{m}");
        let m = message(dm.table_status("vg-lv").map(drop));
        assert!(m.starts_with("DM_TABLE_STATUS of device-mapper device \"vg-lv\"") && m.contains("ENOTTY"), "{m}");
        let m = message(DmControl::open_at(Path::new("/nonexistent/control")).map(drop));
        assert!(m.contains("/nonexistent/control") && m.contains("No such file"), "{m}");
    }

    #[test]
    fn names_the_kernel_cannot_hold_are_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let dm = DmControl::open_at(file.path()).unwrap();
        for name in ["", "a/b", "a\0b", "x".repeat(128).as_str()] {
            assert!(matches!(dm.device_info(name), Err(Error::Backend(m)) if m.contains("not a device-mapper name")));
        }
        assert!(check_name(&"x".repeat(127)).is_ok());
    }

    #[test]
    fn lvm_doubles_hyphens_in_dm_names() {
        let table = [
            ("hearth-volumes", "volume-1234", "hearth--volumes-volume--1234"),
            ("vg0", "lv0", "vg0-lv0"),
            ("a--b", "-c-", "a----b---c--"),
        ];
        for (vg, lv, want) in table {
            assert_eq!(lv_dm_name(vg, lv), want);
        }
        assert_eq!(lv_layer_dm_name("hearth-volumes", "pool0", "tpool"), "hearth--volumes-pool0-tpool");
    }

    fn working(line: &str) -> ThinPoolUsage {
        match line.parse::<ThinPoolStatus>() {
            Ok(ThinPoolStatus::Working(u)) => u,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    /// Seen in the VM tier (Linux 6.1, LVM 2.03.16): a 512 MiB pool with 64 KiB chunks
    /// after 8 MiB were written to its one thin volume.
    const REAL_POOL_STATUS: &str = "1 112/1024 128/8192 - rw discard_passdown queue_if_no_space - 256 ";

    #[test]
    fn thin_pool_status_lines_parse() {
        assert_eq!(
            working(REAL_POOL_STATUS),
            ThinPoolUsage {
                transaction_id: 1,
                used_metadata_blocks: 112,
                total_metadata_blocks: 1024,
                used_data_blocks: 128,
                total_data_blocks: 8192,
                held_metadata_root: None,
                mode: PoolMode::ReadWrite,
                discards: Discards::Passdown,
                no_space: NoSpacePolicy::Queue,
                needs_check: false,
                metadata_low_watermark: Some(256),
            }
        );
        use Discards::{Ignore, NoPassdown, Passdown};
        use PoolMode::{OutOfDataSpace, ReadOnly, ReadWrite};
        let (queue, error) = (NoSpacePolicy::Queue, NoSpacePolicy::Error);
        // line => (transaction id, data used, data total, held root, mode, discards,
        //          no-space policy, needs check, metadata low watermark)
        let table = [
            (
                "0 11/1024 0/8192 - rw discard_passdown queue_if_no_space - 256 ",
                (0, 0, 8192, None, ReadWrite, Passdown, queue, false, Some(256)),
            ),
            (
                "7 100/4096 8192/8192 2048 out_of_data_space no_discard_passdown error_if_no_space - 1024",
                (7, 8192, 8192, Some(2048), OutOfDataSpace, NoPassdown, error, false, Some(1024)),
            ),
            (
                "12 4096/4096 10/20 - ro ignore_discard queue_if_no_space needs_check 1024 ",
                (12, 10, 20, None, ReadOnly, Ignore, queue, true, Some(1024)),
            ),
            // Before Linux 4.19: no metadata low watermark.
            (
                "1 9/1024 0/160 - rw discard_passdown queue_if_no_space -",
                (1, 0, 160, None, ReadWrite, Passdown, queue, false, None),
            ),
            // A later kernel's extra word is ignored.
            (
                "1 9/1024 0/160 - rw discard_passdown queue_if_no_space - 256 new",
                (1, 0, 160, None, ReadWrite, Passdown, queue, false, Some(256)),
            ),
        ];
        for (line, want) in table {
            let u = working(line);
            let got = (
                u.transaction_id,
                u.used_data_blocks,
                u.total_data_blocks,
                u.held_metadata_root,
                u.mode,
                u.discards,
                u.no_space,
                u.needs_check,
                u.metadata_low_watermark,
            );
            assert_eq!(got, want, "{line}");
        }
        assert_eq!("Fail".parse::<ThinPoolStatus>().unwrap(), ThinPoolStatus::Fail);
        assert_eq!("Error".parse::<ThinPoolStatus>().unwrap(), ThinPoolStatus::Error);
        assert_eq!(ThinPoolStatus::Fail.usage(), None);
    }

    #[test]
    fn thin_pool_status_round_trips() {
        for line in [
            REAL_POOL_STATUS.trim_end(),
            "0 11/1024 0/8192 - rw discard_passdown queue_if_no_space - 256",
            "7 100/4096 8192/8192 2048 out_of_data_space no_discard_passdown error_if_no_space - 1024",
            "12 4096/4096 10/20 - ro ignore_discard queue_if_no_space needs_check 1024",
            "1 9/1024 0/160 - rw discard_passdown queue_if_no_space -",
            "Fail",
            "Error",
        ] {
            let status: ThinPoolStatus = line.parse().unwrap();
            assert_eq!(status.to_string(), line);
            assert_eq!(status.to_string().parse::<ThinPoolStatus>().unwrap(), status);
        }
        // The kernel's trailing space is not part of the value.
        let kernel = "0 11/1024 0/8192 - rw discard_passdown queue_if_no_space - 256 ";
        assert_eq!(kernel.parse::<ThinPoolStatus>().unwrap().to_string(), kernel.trim_end());
    }

    #[test]
    fn bad_thin_pool_status_lines_are_errors() {
        for line in [
            "",
            "-",
            "1 2/3",
            "x 11/1024 0/8192 - rw discard_passdown queue_if_no_space - 256",
            "0 11-1024 0/8192 - rw discard_passdown queue_if_no_space - 256",
            "0 11/1024 0/8192 - rw discard_passdown queue_if_no_space maybe 256",
            "0 11/1024 0/8192 - rw discard queue_if_no_space - 256",
            "0 11/1024 0/8192 - wo discard_passdown queue_if_no_space - 256",
            "0 11/1024 0/8192 root rw discard_passdown queue_if_no_space - 256",
        ] {
            match line.parse::<ThinPoolStatus>() {
                Err(Error::Backend(m)) => assert!(m.contains("thin-pool status") && m.contains(line), "{m}"),
                other => panic!("{line:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn thin_pool_percentages() {
        let u = working("3 256/1024 2048/8192 - rw discard_passdown queue_if_no_space - 256");
        assert_eq!((u.data_percent(), u.metadata_percent()), (25.0, 25.0));
        let empty = working("0 0/0 0/0 - rw discard_passdown queue_if_no_space -");
        assert_eq!(empty.data_percent(), 0.0);
    }

    #[test]
    fn thin_status_lines_parse_and_round_trip() {
        let table = [
            ("0 -", ThinStatus::Working(ThinUsage { mapped_sectors: 0, highest_mapped_sector: None })),
            (
                "16384 2097151",
                ThinStatus::Working(ThinUsage { mapped_sectors: 16384, highest_mapped_sector: Some(2097151) }),
            ),
            ("Fail", ThinStatus::Fail),
            ("Error", ThinStatus::Error),
        ];
        for (line, want) in table {
            assert_eq!(line.parse::<ThinStatus>().unwrap(), want, "{line}");
            assert_eq!(want.to_string(), line);
        }
        for bad in ["", "-", "12", "x -", "1 2 3", "1 y"] {
            assert!(matches!(bad.parse::<ThinStatus>(), Err(Error::Backend(m)) if m.contains("thin status")), "{bad}");
        }
    }

    #[test]
    fn targets_parse_by_type() {
        let pool =
            TargetStatus { start: 0, length: 1048576, target_type: "thin-pool".into(), params: POOL_STATUS.into() };
        assert_eq!(pool.thin_pool().unwrap().usage().unwrap().used_data_blocks, 39);
        assert!(matches!(pool.thin(), Err(Error::Backend(m)) if m.contains("expected a thin target")));
        let thin = TargetStatus { start: 0, length: 2097152, target_type: "thin".into(), params: "128 127".into() };
        assert_eq!(thin.thin().unwrap().usage().unwrap().mapped_sectors, 128);
    }

    // --- the VM tier: a real kernel, LVs made by vm-tests/guest/dm-check.sh -------------

    /// What dm-check.sh made.
    struct Lvm {
        vg: String,
        thick: String,
        pool: String,
        thin: String,
    }

    fn lvm() -> Lvm {
        let var =
            |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by vm-tests/guest/dm-check.sh"));
        Lvm {
            vg: var("HEARTH_DM_VG"),
            thick: var("HEARTH_DM_THICK"),
            pool: var("HEARTH_DM_POOL"),
            thin: var("HEARTH_DM_THIN"),
        }
    }

    /// `lvs -o <field>` of one LV, as a number.
    fn lvs_number(vg: &str, lv: &str, field: &str) -> f64 {
        let out = std::process::Command::new("lvs")
            .args(["--noheadings", "--nosuffix", "--units", "b", "-o", field, &format!("{vg}/{lv}")])
            .output()
            .expect("lvs runs");
        assert!(out.status.success(), "lvs: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim().parse().unwrap_or_else(|_| panic!("lvs -o {field} {vg}/{lv}: {text:?}"))
    }

    fn rdev(path: &str) -> DevNum {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}")).rdev();
        DevNum::from_kernel(rdev)
    }

    #[test]
    #[ignore = "needs device-mapper: run in the VM tier"]
    fn real_version_is_4() {
        let (major, minor, patch) = DmControl::open().unwrap().version().unwrap();
        println!("device-mapper interface {major}.{minor}.{patch}");
        assert_eq!(major, 4);
    }

    #[test]
    #[ignore = "needs device-mapper: run in the VM tier"]
    fn real_list_devices_has_the_lvs() {
        let (dm, l) = (DmControl::open().unwrap(), lvm());
        let devices = dm.list_devices().unwrap();
        for d in &devices {
            println!("{} {}", d.dev, d.name);
        }
        for lv in [&l.thick, &l.thin] {
            let name = lv_dm_name(&l.vg, lv);
            let d = devices.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("{name} not listed"));
            assert_eq!(d.dev, rdev(&format!("/dev/mapper/{name}")), "{name}");
            assert_eq!(d.dev, rdev(&format!("/dev/{}/{lv}", l.vg)), "{name}");
        }
        // The kernel's buffer-full path: start with room for no record at all.
        assert_eq!(dm.list_devices_from(HEADER_SIZE).unwrap(), devices);
        assert_eq!(dm.list_devices_from(HEADER_SIZE + 64).unwrap(), devices);
    }

    #[test]
    #[ignore = "needs device-mapper: run in the VM tier"]
    fn real_device_info_counts_opens() {
        let (dm, l) = (DmControl::open().unwrap(), lvm());
        let name = lv_dm_name(&l.vg, &l.thick);
        let before = dm.device_info(&name).unwrap().expect("the thick LV is active");
        println!("{before:?}");
        assert_eq!(before.name, name);
        assert!(before.active_table && !before.inactive_table && !before.suspended && !before.read_only);
        assert_eq!(before.target_count, 1);
        assert!(before.uuid.as_deref().unwrap_or("").starts_with("LVM-"), "{:?}", before.uuid);
        assert_eq!(before.dev, rdev(&format!("/dev/{}/{}", l.vg, l.thick)));

        let held = File::open(format!("/dev/{}/{}", l.vg, l.thick)).unwrap();
        let during = dm.device_info(&name).unwrap().unwrap();
        let held_too = File::open(format!("/dev/mapper/{name}")).unwrap();
        let during2 = dm.device_info(&name).unwrap().unwrap();
        drop((held, held_too));
        let after = dm.device_info(&name).unwrap().unwrap();
        println!(
            "open_count {} -> {} -> {} -> {}",
            before.open_count, during.open_count, during2.open_count, after.open_count
        );
        assert_eq!(during.open_count, before.open_count + 1);
        assert_eq!(during2.open_count, before.open_count + 2);
        assert_eq!(after.open_count, before.open_count);

        // A thin pool's tpool layer is held open by its thin volume.
        let tpool = dm.device_info(&lv_layer_dm_name(&l.vg, &l.pool, "tpool")).unwrap().expect("tpool layer active");
        assert!(tpool.open_count >= 1, "{tpool:?}");
    }

    #[test]
    #[ignore = "needs device-mapper: run in the VM tier"]
    fn real_missing_devices() {
        let dm = DmControl::open().unwrap();
        assert_eq!(dm.device_info("hearth--no--such-device").unwrap(), None);
        match dm.table_status("hearth--no--such-device") {
            Err(Error::Backend(m)) => {
                println!("{m}");
                assert!(m.contains("DM_TABLE_STATUS") && m.contains("hearth--no--such-device") && m.contains("ENXIO"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    #[ignore = "needs device-mapper: run in the VM tier"]
    fn real_table_status_agrees_with_lvs() {
        let (dm, l) = (DmControl::open().unwrap(), lvm());
        for name in [
            lv_dm_name(&l.vg, &l.thick),
            lv_dm_name(&l.vg, &l.pool),
            lv_layer_dm_name(&l.vg, &l.pool, "tpool"),
            lv_dm_name(&l.vg, &l.thin),
        ] {
            for t in dm.table_status(&name).unwrap() {
                println!("{name}: {t}");
            }
        }

        let thick = dm.table_status(&lv_dm_name(&l.vg, &l.thick)).unwrap();
        assert_eq!(thick.len(), 1);
        assert_eq!((thick[0].start, thick[0].target_type.as_str()), (0, "linear"));
        assert_eq!(thick[0].length as f64 * 512.0, lvs_number(&l.vg, &l.thick, "lv_size"));

        let tpool = lv_layer_dm_name(&l.vg, &l.pool, "tpool");
        let pool = dm.thin_pool_status(&tpool).unwrap();
        let usage = pool.usage().expect("the pool works").clone();
        assert_eq!((usage.mode, usage.needs_check), (PoolMode::ReadWrite, false));
        assert!(usage.used_data_blocks > 0, "dm-check.sh wrote to the thin LV: {pool}");
        let lvs_pool = lvs_number(&l.vg, &l.pool, "data_percent");
        println!("pool data {:.4}% (lvs {lvs_pool}%), metadata {:.4}%", usage.data_percent(), usage.metadata_percent());
        assert!((usage.data_percent() - lvs_pool).abs() < 0.011, "{pool} vs lvs {lvs_pool}");
        let lvs_meta = lvs_number(&l.vg, &l.pool, "metadata_percent");
        assert!((usage.metadata_percent() - lvs_meta).abs() < 0.011, "{pool} vs lvs {lvs_meta}");
        let chunk = lvs_number(&l.vg, &l.pool, "chunk_size");
        assert_eq!(usage.total_data_blocks as f64 * chunk, lvs_number(&l.vg, &l.pool, "lv_size"));

        let thin = dm.thin_status(&lv_dm_name(&l.vg, &l.thin)).unwrap();
        let thin_usage = thin.usage().expect("the thin LV works");
        let size = lvs_number(&l.vg, &l.thin, "lv_size");
        let mapped_percent = thin_usage.mapped_sectors as f64 * 512.0 * 100.0 / size;
        let lvs_thin = lvs_number(&l.vg, &l.thin, "data_percent");
        println!("thin {thin}: {mapped_percent:.4}% mapped (lvs {lvs_thin}%)");
        assert!((mapped_percent - lvs_thin).abs() < 0.011);
        assert_eq!(thin_usage.mapped_sectors as f64 * 512.0, usage.used_data_blocks as f64 * chunk, "one thin LV");
        assert!(thin_usage.highest_mapped_sector.is_some());

        // The kernel's buffer-full path, and the text parsed back from its own output.
        assert_eq!(dm.table_status_from(&tpool, HEADER_SIZE + 48).unwrap(), dm.table_status(&tpool).unwrap());
        assert_eq!(pool.to_string().parse::<ThinPoolStatus>().unwrap(), pool);
    }
}
