//! What changed between two thin LVs of one pool, from the pool's metadata.
//!
//! `thin_delta` (thin-provisioning-tools) compares the block mappings of two thin
//! devices and prints, in the pool's data blocks (`data_block_size` sectors of 512
//! bytes), which virtual ranges are mapped to the same data blocks in both (`same`),
//! to other blocks (`different`), or in one of them only (`left_only`, `right_only`):
//!
//! ```xml
//! <superblock uuid="" time="2" transaction="4" data_block_size="128" nr_data_blocks="0">
//!   <diff left="1" right="2">
//!     <same begin="0" length="10"/>
//!     <different begin="10" length="1"/>
//!     <right_only begin="11" length="4"/>
//!   </diff>
//! </superblock>
//! ```
//!
//! Everything but `same` may differ between the two (a `left_only` block reads as zeroes
//! in the right device); ranges mapped in neither are zeroes in both. [`parse`] turns
//! the output into [`ThinDelta`], whose [`ThinDelta::byte_ranges`] is what a backup needs
//! to read. The older C++ tools and the Rust rewrite print the same elements.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::Reader;

/// The result of one `thin_delta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThinDelta {
    /// Sectors (512 bytes) per data block.
    pub data_block_size: u64,
    /// Virtual block ranges that may differ, sorted and merged.
    pub changed_blocks: Vec<Range<u64>>,
}

impl ThinDelta {
    /// The changed ranges in bytes, sorted and merged, cut at `size` bytes.
    pub fn byte_ranges(&self, size: u64) -> Vec<Range<u64>> {
        // Saturating: a range past the end of a u64 is past `size` too.
        let block = self.data_block_size.saturating_mul(512);
        self.changed_blocks
            .iter()
            .map(|r| r.start.saturating_mul(block).min(size)..r.end.saturating_mul(block).min(size))
            .filter(|r| !r.is_empty())
            .collect()
    }
}

/// Parse `thin_delta`'s output; the error says what is wrong with it.
pub fn parse(xml: &str) -> Result<ThinDelta, String> {
    let mut reader = Reader::from_str(xml);
    let mut data_block_size = None;
    let mut in_diff = false;
    let mut ranges: Vec<Range<u64>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| format!("thin_delta's output is not XML: {e}"))?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) if e.name().as_ref() == "diff" => {
                in_diff = false;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let attr = |name: &str| -> Result<Option<u64>, String> {
            for a in e.attributes() {
                let a = a.map_err(|err| format!("thin_delta's output has a bad attribute: {err}"))?;
                if a.key.as_ref() == name {
                    let v = a.value.to_string();
                    return v
                        .parse::<u64>()
                        .map(Some)
                        .map_err(|_| format!("thin_delta's {name}=\"{v}\" is not a number"));
                }
            }
            Ok(None)
        };
        match e.name().as_ref() {
            "superblock" => {
                data_block_size =
                    Some(attr("data_block_size")?.ok_or("thin_delta's superblock has no data_block_size")?);
            }
            "diff" => in_diff = !empty,
            "different" | "left_only" | "right_only" if in_diff => {
                let begin = attr("begin")?.ok_or("a thin_delta range has no begin")?;
                let length = attr("length")?.ok_or("a thin_delta range has no length")?;
                let end = begin.checked_add(length).ok_or("a thin_delta range overflows")?;
                if length > 0 {
                    ranges.push(begin..end);
                }
            }
            _ => {}
        }
    }
    let data_block_size = match data_block_size {
        // dm-thin's block sizes: 64 KiB to 1 GiB in multiples of 64 KiB, in sectors.
        Some(n) if (128..=2_097_152).contains(&n) && n % 128 == 0 => n,
        Some(n) => {
            return Err(format!(
                "thin_delta's data_block_size {n} is not a thin pool's (128 to 2097152 sectors, a multiple of 128)"
            ))
        }
        None => return Err("thin_delta printed no superblock".into()),
    };
    Ok(ThinDelta { data_block_size, changed_blocks: merge(ranges) })
}

/// Sort and merge overlapping or touching ranges.
pub fn merge(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_ranges_are_everything_but_same() {
        let xml = r#"<superblock uuid="" time="2" transaction="4" data_block_size="128" nr_data_blocks="0">
  <diff left="1" right="2">
    <same begin="0" length="10"/>
    <different begin="10" length="1"/>
    <right_only begin="11" length="4"/>
    <same begin="15" length="5"/>
    <left_only begin="30" length="2"/>
  </diff>
</superblock>
"#;
        let d = parse(xml).unwrap();
        assert_eq!(d.data_block_size, 128);
        assert_eq!(d.changed_blocks, vec![10..15, 30..32]);
        let block = 128 * 512;
        assert_eq!(d.byte_ranges(100 * block), vec![10 * block..15 * block, 30 * block..32 * block]);
        // Cut at the volume's size.
        assert_eq!(d.byte_ranges(31 * block), vec![10 * block..15 * block, 30 * block..31 * block]);
    }

    #[test]
    fn identical_devices_have_no_changes() {
        let xml = r#"<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="1000" metadata_snap="12"><diff left="3" right="4">
<same begin="0" length="100"/></diff></superblock>"#;
        assert_eq!(parse(xml).unwrap().changed_blocks, Vec::<Range<u64>>::new());
    }

    #[test]
    fn bad_output_is_an_error_not_a_guess() {
        for (xml, says) in [
            ("", "no superblock"),
            (r#"<superblock data_block_size="0"><diff></diff></superblock>"#, "not a thin pool's"),
            // Found by fuzzing: 512 times this overflowed.
            (r#"<superblock data_block_size="92828604729110919"><diff></diff></superblock>"#, "not a thin pool's"),
            (r#"<superblock data_block_size="192"><diff></diff></superblock>"#, "not a thin pool's"),
            (r#"<superblock data_block_size="x"/>"#, "not a number"),
            (r#"<superblock data_block_size="8"><diff><different begin="1"/></diff></superblock>"#, "no length"),
            (
                r#"<superblock data_block_size="8"><diff><different begin="1" length="18446744073709551615"/></diff></superblock>"#,
                "overflows",
            ),
        ] {
            let err = parse(xml).expect_err(xml);
            assert!(err.contains(says), "{xml}: {err}");
        }
    }

    #[test]
    fn ranges_past_a_u64_of_bytes_end_at_the_size() {
        let d = ThinDelta { data_block_size: 2_097_152, changed_blocks: vec![1..2, u64::MAX / 2..u64::MAX] };
        // The second range starts past u64::MAX bytes: it is cut away, not wrapped.
        assert_eq!(d.byte_ranges(u64::MAX), vec![1 << 30..2 << 30]);
        assert_eq!(d.byte_ranges(1 << 30), vec![]);
    }

    #[test]
    fn ranges_merge() {
        assert_eq!(merge(vec![5..7, 0..2, 2..3, 6..9]), vec![0..3, 5..9]);
    }
}
