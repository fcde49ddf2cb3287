//! Raw bytes -> container parse -> verify -> view every section as its
//! dtype, then load every string table and key/value table found. Crash
//! only: any input must give `Ok` or a typed error, never a panic.
//!
//! The first byte picks a mode. With bit 0 set, the header checksum in the
//! preamble is recomputed before parsing, so the fuzzer gets past the
//! checksum and into the section table, which a 64-bit hash would
//! otherwise hide from it. With bit 1 set, the input is parsed one byte off
//! 64-byte alignment, exercising the misaligned-view errors.
#![no_main]

use edgecl_runtime::container::xxh64::xxh64;
use edgecl_runtime::container::{AlignedBytes, Container, Dtype, KeyValues, StringTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let shift = usize::from(mode & 2 != 0);
    let mut buf = AlignedBytes::zeroed(rest.len() + shift);
    buf.as_mut_slice()[shift..].copy_from_slice(rest);
    let bytes = &mut buf.as_mut_slice()[shift..];

    // Optional checksum fix-up (mode bit 0).
    if mode & 1 != 0 && bytes.len() >= 32 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[16..24]);
        let header_len = u64::from_le_bytes(w);
        if let Some(end) = usize::try_from(header_len).ok().and_then(|h| h.checked_add(32)) {
            if end <= bytes.len() {
                let sum = xxh64(&bytes[32..end], 0);
                bytes[24..32].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }

    let bytes = &buf.as_slice()[shift..];
    let Ok(c) = Container::parse(bytes) else { return };
    let _ = c.verify();
    let names: Vec<String> = c.sections().map(|s| s.name.to_owned()).collect();
    for name in &names {
        let info = c.info(name).expect("listed section exists");
        let raw = c.section_bytes(name).expect("validated section is in bounds");
        assert_eq!(raw.len() as u64, info.len);
        let n = match info.dtype {
            Dtype::U8 => c.section::<u8>(name).map(|s| s.len()),
            Dtype::I8 => c.section::<i8>(name).map(|s| s.len()),
            Dtype::U16 | Dtype::F16 | Dtype::BF16 => c.section::<u16>(name).map(|s| s.len()),
            Dtype::I16 => c.section::<i16>(name).map(|s| s.len()),
            Dtype::U32 => c.section::<u32>(name).map(|s| s.len()),
            Dtype::I32 => c.section::<i32>(name).map(|s| s.len()),
            Dtype::U64 => c.section::<u64>(name).map(|s| s.len()),
            Dtype::I64 => c.section::<i64>(name).map(|s| s.len()),
            Dtype::F32 => c.section::<f32>(name).map(|s| s.len()),
            Dtype::F64 => c.section::<f64>(name).map(|s| s.len()),
        };
        // Aligned input: every typed view must succeed with the right length.
        if shift == 0 {
            let n = n.expect("aligned view of a validated section");
            assert_eq!(n as u64 * info.dtype.size(), info.len);
        }
        if let Some(table) = name.strip_suffix(".offsets") {
            if let Ok(t) = StringTable::load(&c, table) {
                assert_eq!(t.iter().count(), t.len());
            }
            if let Ok(kv) = KeyValues::load(&c, table) {
                let _ = kv.iter().count();
            }
        }
    }
});
