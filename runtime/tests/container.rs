//! Container reader and writer: one test per validation rule, each from
//! bytes encoded by hand here (independently of the builder), a check that
//! the builder produces exactly those bytes, view errors, string tables,
//! atomic replacement, XXH64 reference vectors and a proptest round trip.

use std::borrow::Cow;

use edgecl_runtime::container::xxh64::xxh64;
use edgecl_runtime::container::{
    atomic_write, open, AlignedBytes, Checksums, Container, ContainerBuilder, ContainerError,
    Dtype, KeyValues, StringTable,
};
use proptest::prelude::*;

// ---- a hand encoder of the format, following docs/FORMAT.md ----

#[derive(Clone)]
struct E {
    name: Vec<u8>,
    dtype: u8,
    rank: Option<u8>,
    shape: Vec<u64>,
    offset: u64,
    len: Option<u64>,
    sum: Option<u64>,
    reserved: u32,
    data: Vec<u8>,
}

#[derive(Clone)]
struct F {
    magic: [u8; 8],
    version: u32,
    flags: u32,
    count: Option<u32>,
    reserved: u32,
    entries: Vec<E>,
    header_extra: Vec<u8>,
    header_len: Option<u64>,
    header_sum: Option<u64>,
    trailing: Vec<u8>,
}

fn entry(name: &str, dtype: Dtype, shape: &[u64], data: Vec<u8>) -> E {
    E {
        name: name.as_bytes().to_vec(),
        dtype: dtype as u8,
        rank: None,
        shape: shape.to_vec(),
        offset: 0,
        len: None,
        sum: None,
        reserved: 0,
        data,
    }
}

fn align64(x: u64) -> u64 {
    x.div_ceil(64) * 64
}

impl F {
    fn new(entries: Vec<E>) -> F {
        let mut f = F {
            magic: *b"EDGECLC\0",
            version: 1,
            flags: 0,
            count: None,
            reserved: 0,
            entries,
            header_extra: vec![],
            header_len: None,
            header_sum: None,
            trailing: vec![],
        };
        f.place();
        f
    }

    // Two sections: "a" f32 [2, 3] and "b" u8 [5].
    fn valid() -> F {
        let a: Vec<u8> =
            [1.0f32, -2.0, 3.5, 0.0, 7.25, -0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        F::new(vec![
            entry("a", Dtype::F32, &[2, 3], a),
            entry("b", Dtype::U8, &[5], vec![9, 8, 7, 6, 5]),
        ])
    }

    fn header(&self) -> Vec<u8> {
        let mut h = vec![];
        h.extend((self.count.unwrap_or(self.entries.len() as u32)).to_le_bytes());
        h.extend(self.reserved.to_le_bytes());
        for e in &self.entries {
            h.extend((e.name.len() as u16).to_le_bytes());
            h.push(e.dtype);
            h.push(e.rank.unwrap_or(e.shape.len() as u8));
            h.extend(e.reserved.to_le_bytes());
            for d in &e.shape {
                h.extend(d.to_le_bytes());
            }
            h.extend(e.offset.to_le_bytes());
            h.extend(e.len.unwrap_or(e.data.len() as u64).to_le_bytes());
            h.extend(e.sum.unwrap_or(xxh64(&e.data, 0)).to_le_bytes());
            h.extend(&e.name);
        }
        h.extend(&self.header_extra);
        h
    }

    // Standard offsets: each payload at the first 64-byte boundary after
    // the previous end.
    fn place(&mut self) {
        let mut end = 32 + self.header().len() as u64;
        for e in &mut self.entries {
            e.offset = align64(end);
            end = e.offset + e.data.len() as u64;
        }
    }

    fn encode(&self) -> AlignedBytes {
        let h = self.header();
        let mut f = vec![];
        f.extend(self.magic);
        f.extend(self.version.to_le_bytes());
        f.extend(self.flags.to_le_bytes());
        f.extend(self.header_len.unwrap_or(h.len() as u64).to_le_bytes());
        f.extend(self.header_sum.unwrap_or(xxh64(&h, 0)).to_le_bytes());
        f.extend(&h);
        // Payloads placed over the header are left out so the header
        // stays as encoded.
        for e in self.entries.iter().filter(|e| e.offset as usize >= 32 + h.len()) {
            let (o, n) = (e.offset as usize, e.data.len());
            if f.len() < o + n {
                f.resize(o + n, 0);
            }
            f[o..o + n].copy_from_slice(&e.data);
        }
        f.extend(&self.trailing);
        AlignedBytes::from_slice(&f)
    }
}

fn parse_err(f: &F) -> ContainerError {
    let bytes = f.encode();
    match Container::parse(&bytes) {
        Ok(_) => panic!("hostile file parsed"),
        Err(e) => e,
    }
}

// ---- valid files ----

#[test]
fn valid_file_parses_and_views_in_place() {
    let f = F::valid();
    let bytes = f.encode();
    let c = Container::parse_verified(&bytes).unwrap();
    assert_eq!(c.len(), 2);
    let a = c.section::<f32>("a").unwrap();
    assert_eq!(a, &[1.0, -2.0, 3.5, 0.0, 7.25, -0.5]);
    // In place: the view points into the buffer.
    assert_eq!(a.as_ptr() as usize, bytes.as_ptr() as usize + f.entries[0].offset as usize);
    assert_eq!(c.section::<u8>("b").unwrap(), &[9, 8, 7, 6, 5]);
    let (m, r, cols) = c.matrix::<f32>("a").unwrap();
    assert_eq!((m.len(), r, cols), (6, 2, 3));
    let info = c.info("a").unwrap();
    assert_eq!((info.dtype, info.shape, info.offset % 64), (Dtype::F32, &[2u64, 3][..], 0));
    let names: Vec<&str> = c.sections().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn builder_writes_the_hand_encoded_bytes() {
    let f = F::valid();
    let a: Vec<f32> = [1.0f32, -2.0, 3.5, 0.0, 7.25, -0.5].to_vec();
    let b = [9u8, 8, 7, 6, 5];
    let mut builder = ContainerBuilder::new();
    builder.add("a", &[2, 3], &a).unwrap().add("b", &[5], &b).unwrap();
    assert_eq!(&*builder.to_bytes().unwrap(), &*f.encode());
    assert_eq!(builder.file_len().unwrap(), f.encode().len() as u64);
}

#[test]
fn empty_container_and_empty_sections_are_valid() {
    let empty = F::new(vec![]);
    let bytes = empty.encode();
    assert_eq!(bytes.len(), 40);
    assert!(Container::parse_verified(&bytes).unwrap().is_empty());

    let f = F::new(vec![
        entry("z", Dtype::F64, &[0, 4], vec![]),
        entry("s", Dtype::U16, &[], vec![1, 2]),
    ]);
    let bytes = f.encode();
    let c = Container::parse_verified(&bytes).unwrap();
    assert_eq!(c.section::<f64>("z").unwrap().len(), 0);
    assert_eq!(c.section::<u16>("s").unwrap(), &[0x0201]);
}

// ---- one test per rule ----

#[test]
fn truncated_preamble() {
    let bytes = F::valid().encode();
    for n in 0..32 {
        match Container::parse(&bytes[..n]) {
            Err(ContainerError::Truncated { what: "preamble", .. }) => {}
            other => panic!("prefix {n}: {other:?}"),
        }
    }
}

#[test]
fn bad_magic() {
    let mut f = F::valid();
    f.magic = *b"EDGECLX\0";
    assert!(matches!(parse_err(&f), ContainerError::BadMagic { found } if &found == b"EDGECLX\0"));
}

#[test]
fn unsupported_version() {
    let mut f = F::valid();
    f.version = 2;
    assert!(matches!(parse_err(&f), ContainerError::UnsupportedVersion { found: 2 }));
}

#[test]
fn nonzero_flags() {
    let mut f = F::valid();
    f.flags = 4;
    assert!(matches!(
        parse_err(&f),
        ContainerError::ReservedNonZero { field: "preamble.flags", found: 4 }
    ));
}

#[test]
fn header_over_cap() {
    let mut f = F::valid();
    f.header_len = Some((16 << 20) + 1);
    assert!(matches!(parse_err(&f), ContainerError::HeaderTooLarge { .. }));
}

#[test]
fn header_past_end_of_file() {
    let mut f = F::valid();
    f.header_len = Some(1 << 20);
    assert!(matches!(parse_err(&f), ContainerError::Truncated { what: "header", .. }));
}

#[test]
fn header_checksum_mismatch() {
    let mut f = F::valid();
    f.header_sum = Some(12345);
    assert!(matches!(parse_err(&f), ContainerError::HeaderChecksum { stored: 12345, .. }));
}

#[test]
fn header_reserved_word_nonzero() {
    let mut f = F::valid();
    f.reserved = 1;
    assert!(matches!(
        parse_err(&f),
        ContainerError::ReservedNonZero { field: "header.reserved", .. }
    ));
}

#[test]
fn section_reserved_word_nonzero() {
    let mut f = F::valid();
    f.entries[1].reserved = 7;
    assert!(matches!(
        parse_err(&f),
        ContainerError::ReservedNonZero { field: "section.reserved", found: 7 }
    ));
}

#[test]
fn too_many_sections() {
    let mut f = F::valid();
    f.count = Some(65537);
    assert!(matches!(parse_err(&f), ContainerError::TooManySections { count: 65537, .. }));
}

#[test]
fn count_larger_than_table() {
    // A count the header cannot hold must fail on the bytes, not allocate.
    let mut f = F::valid();
    f.count = Some(65536);
    assert!(matches!(parse_err(&f), ContainerError::Truncated { .. }));
    f.count = Some(3);
    assert!(matches!(parse_err(&f), ContainerError::Truncated { .. }));
}

#[test]
fn header_trailing_bytes() {
    let mut f = F::valid();
    f.header_extra = vec![0; 3];
    f.place();
    assert!(matches!(parse_err(&f), ContainerError::HeaderTrailingBytes { extra: 3 }));
}

#[test]
fn invalid_names() {
    for (name, why) in [
        (vec![], "is empty"),
        (vec![b'x'; 257], "is longer than 256 bytes"),
        (vec![0xff, 0xfe], "is not UTF-8"),
    ] {
        let mut f = F::valid();
        f.entries[1].name = name;
        f.place();
        match parse_err(&f) {
            ContainerError::InvalidName { index: 1, reason } => assert_eq!(reason, why),
            other => panic!("{why}: {other:?}"),
        }
    }
    // 256 bytes is still allowed.
    let mut f = F::valid();
    f.entries[1].name = vec![b'y'; 256];
    f.place();
    assert!(Container::parse(&f.encode()).is_ok());
}

#[test]
fn duplicate_names() {
    let mut f = F::valid();
    f.entries[1].name = b"a".to_vec();
    assert!(matches!(parse_err(&f), ContainerError::DuplicateName { section } if section == "a"));
}

#[test]
fn unknown_dtype() {
    for code in [0u8, 13, 255] {
        let mut f = F::valid();
        f.entries[1].dtype = code;
        match parse_err(&f) {
            ContainerError::UnknownDtype { section, code: c } => {
                assert_eq!((section.as_str(), c), ("b", code))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn rank_too_large() {
    let mut f = F::valid();
    f.entries[1].shape = vec![1; 9];
    f.entries[1].data = vec![0];
    f.place();
    assert!(matches!(parse_err(&f), ContainerError::RankTooLarge { rank: 9, max: 8, .. }));
}

#[test]
fn shape_overflow() {
    let mut f = F::valid();
    f.entries[1].shape = vec![u64::MAX, 2];
    assert!(matches!(parse_err(&f), ContainerError::ShapeOverflow { section } if section == "b"));
    // The element count fits but the byte size does not.
    let mut f = F::valid();
    f.entries[0].shape = vec![1 << 62, 1];
    assert!(matches!(parse_err(&f), ContainerError::ShapeOverflow { section } if section == "a"));
}

#[test]
fn length_disagrees_with_shape() {
    let mut f = F::valid();
    f.entries[0].len = Some(20);
    assert!(matches!(
        parse_err(&f),
        ContainerError::LengthMismatch { section, expected: 24, found: 20 } if section == "a"
    ));
}

#[test]
fn misaligned_offset() {
    let mut f = F::valid();
    f.entries[1].offset += 8;
    assert!(matches!(parse_err(&f), ContainerError::Misaligned { section, .. } if section == "b"));
}

#[test]
fn overlapping_or_out_of_order() {
    // "b" placed on top of "a".
    let mut f = F::valid();
    f.entries[1].offset = f.entries[0].offset;
    assert!(matches!(parse_err(&f), ContainerError::Overlap { section, .. } if section == "b"));
    // Listed out of file order: the first listed no longer sits at the
    // first boundary (a gap), whichever way the payloads are arranged.
    let mut f = F::valid();
    let (o0, o1) = (f.entries[0].offset, f.entries[1].offset);
    f.entries[0].offset = o1;
    f.entries[1].offset = o0;
    assert!(matches!(parse_err(&f), ContainerError::Gap { section, .. } if section == "a"));
    // A payload inside the header.
    let mut f = F::valid();
    f.entries[0].offset = 64;
    assert!(matches!(parse_err(&f), ContainerError::Overlap { section, .. } if section == "a"));
}

#[test]
fn gap_between_sections() {
    let mut f = F::valid();
    f.entries[1].offset += 64;
    assert!(matches!(parse_err(&f), ContainerError::Gap { section, .. } if section == "b"));
}

#[test]
fn payload_out_of_bounds() {
    let f = F::valid();
    let bytes = f.encode();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Container::parse(cut),
        Err(ContainerError::OutOfBounds { section, .. }) if section == "b"
    ));
    // offset + length overflowing u64 is out of bounds, not a wrap.
    let mut f = F::valid();
    let huge = u64::MAX - 63;
    f.entries[1].shape = vec![huge];
    f.entries[1].len = Some(huge);
    assert!(matches!(parse_err(&f), ContainerError::OutOfBounds { end: u64::MAX, .. }));
}

#[test]
fn nonzero_padding() {
    let f = F::valid();
    let mut bytes = f.encode();
    let pad = f.entries[0].offset as usize - 1;
    bytes.as_mut_slice()[pad] = 1;
    assert!(matches!(
        Container::parse(&bytes),
        Err(ContainerError::NonZeroPadding { offset }) if offset == pad as u64
    ));
}

#[test]
fn trailing_bytes() {
    let mut f = F::valid();
    f.trailing = vec![0];
    assert!(matches!(parse_err(&f), ContainerError::TrailingBytes { .. }));
    let mut f = F::new(vec![]);
    f.trailing = vec![0; 100];
    assert!(matches!(
        parse_err(&f),
        ContainerError::TrailingBytes { expected_len: 40, file_len: 140 }
    ));
}

#[test]
fn payload_checksum_checked_on_verify() {
    let f = F::valid();
    let mut bytes = f.encode();
    bytes.as_mut_slice()[f.entries[1].offset as usize + 2] ^= 0x10;
    let c = Container::parse(&bytes).unwrap();
    assert!(c.verify_section("a").is_ok());
    assert!(matches!(
        c.verify_section("b"),
        Err(ContainerError::ChecksumMismatch { section, .. }) if section == "b"
    ));
    assert!(matches!(c.verify(), Err(ContainerError::ChecksumMismatch { .. })));
    assert!(Container::parse_verified(&bytes).is_err());
}

// ---- views ----

#[test]
fn view_errors() {
    let bytes = F::valid().encode();
    let c = Container::parse(&bytes).unwrap();
    assert!(matches!(c.section::<f32>("nope"), Err(ContainerError::NotFound { .. })));
    assert!(matches!(
        c.section::<i32>("a"),
        Err(ContainerError::DtypeMismatch { stored: Dtype::F32, requested: Dtype::I32, .. })
    ));
    assert!(matches!(c.matrix::<u8>("b"), Err(ContainerError::Invalid { .. })));

    // The same file one byte off alignment: bytes still view, f32 cannot.
    let mut shifted = AlignedBytes::zeroed(bytes.len() + 1);
    shifted.as_mut_slice()[1..].copy_from_slice(&bytes);
    let c = Container::parse(&shifted[1..]).unwrap();
    assert_eq!(c.section::<u8>("b").unwrap(), &[9, 8, 7, 6, 5]);
    assert!(matches!(c.section::<f32>("a"), Err(ContainerError::ViewMisaligned { align: 4, .. })));
}

#[test]
fn half_precision_viewed_as_bits() {
    let bits: Vec<u8> = [0x3c00u16, 0xc000].iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut b = ContainerBuilder::new();
    b.add_raw("h", Dtype::F16, &[2], Cow::Owned(bits.clone())).unwrap();
    b.add_raw("g", Dtype::BF16, &[2], Cow::Owned(bits)).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse(&bytes).unwrap();
    assert_eq!(c.section::<u16>("h").unwrap(), &[0x3c00, 0xc000]);
    assert_eq!(c.info("g").unwrap().dtype, Dtype::BF16);
}

#[test]
fn builder_rejects_bad_sections() {
    let data = [1.0f32; 6];
    let mut b = ContainerBuilder::new();
    assert!(matches!(b.add("x", &[2, 2], &data), Err(ContainerError::LengthMismatch { .. })));
    assert!(matches!(b.add("", &[6], &data), Err(ContainerError::InvalidName { .. })));
    assert!(matches!(b.add("x", &[1; 9], &data[..1]), Err(ContainerError::RankTooLarge { .. })));
    b.add("x", &[6], &data).unwrap();
    assert!(matches!(b.add("x", &[6], &data), Err(ContainerError::DuplicateName { .. })));
}

// ---- string and key/value tables ----

#[test]
fn string_table_round_trip() {
    let strings = ["doc-1", "", "Zürich ☃", "a\u{0}b", "last"];
    let mut b = ContainerBuilder::new();
    b.add_strings("doc.ids", strings).unwrap();
    b.add_key_values("build.params", [("m", "16"), ("ef", "200"), ("name", "t")]).unwrap();
    let bytes = b.to_bytes().unwrap();
    let c = Container::parse_verified(&bytes).unwrap();
    let t = StringTable::load(&c, "doc.ids").unwrap();
    assert_eq!(t.len(), 5);
    assert_eq!(t.iter().collect::<Vec<_>>(), strings);
    assert_eq!(t.get(5), None);
    let kv = KeyValues::load(&c, "build.params").unwrap();
    assert_eq!(kv.parse::<u32>("m").unwrap(), 16);
    assert_eq!(kv.get("name"), Some("t"));
    assert!(matches!(kv.parse::<u32>("name"), Err(ContainerError::Invalid { .. })));
    assert!(matches!(kv.parse::<u32>("absent"), Err(ContainerError::Invalid { .. })));
}

#[test]
fn string_table_rules() {
    let blob = "aé".as_bytes(); // 'é' is two bytes: offsets 0, 1, 3
    assert!(StringTable::from_parts(&[0, 1, 3], blob).is_ok());
    for (offsets, why) in [
        (&[][..], "empty"),
        (&[1, 3][..], "first offset"),
        (&[0, 3, 1, 3][..], "below"),
        (&[0, 1][..], "last offset"),
        (&[0, 2, 3][..], "splits"),
    ] {
        let e = StringTable::from_parts(offsets, blob).unwrap_err();
        assert!(e.contains(why), "{offsets:?}: {e}");
    }
    assert!(StringTable::from_parts(&[0, 2], &[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
}

#[test]
fn key_value_rules() {
    let mut b = ContainerBuilder::new();
    assert!(b.add_key_values("kv", [("a", "1"), ("a", "2")]).is_err());
    assert!(b.add_key_values("kv", [("", "1")]).is_err());
    // Hand-made tables that break the rules.
    for (strings, why) in [(vec!["a", "1", "b"], "odd"), (vec!["a", "1", "a", "2"], "twice")] {
        let mut b = ContainerBuilder::new();
        b.add_strings("kv", strings).unwrap();
        let bytes = b.to_bytes().unwrap();
        let c = Container::parse(&bytes).unwrap();
        let e = KeyValues::load(&c, "kv").unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
}

// ---- files ----

#[test]
fn atomic_write_failure_keeps_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.edc");
    let data = [1u32, 2, 3];
    let mut b = ContainerBuilder::new();
    b.add("v", &[3], &data).unwrap();
    b.write_atomic(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    // A writer that fails half-way: the old file stays, no temp file left.
    let r = atomic_write(&path, |w| {
        w.write_all(b"EDGECLC\0partial").unwrap();
        Err(ContainerError::invalid("v", "simulated failure"))
    });
    assert!(matches!(r, Err(ContainerError::Invalid { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("index.edc")]);

    // A successful rewrite replaces it and is read back mapped.
    let data2 = [7u32, 8];
    let mut b2 = ContainerBuilder::new();
    b2.add("v", &[2], &data2).unwrap();
    b2.write_atomic(&path).unwrap();
    let m = open(&path, Checksums::All).unwrap();
    assert_eq!(m.container().section::<u32>("v").unwrap(), &[7, 8]);
}

#[test]
fn open_checks_payloads_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.edc");
    let f = F::valid();
    let mut bytes = f.encode();
    bytes.as_mut_slice()[f.entries[0].offset as usize] ^= 1;
    std::fs::write(&path, &*bytes).unwrap();
    assert!(open(&path, Checksums::HeaderOnly).is_ok());
    assert!(matches!(open(&path, Checksums::All), Err(ContainerError::ChecksumMismatch { .. })));
    let missing = dir.path().join("missing.edc");
    match open(&missing, Checksums::All) {
        Err(ContainerError::Io { path, op: "open", .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

// ---- checksum ----

#[test]
fn xxh64_reference_vectors() {
    // Produced by the reference C implementation (Python `xxhash` 3.x).
    let pattern = |n: usize| (0..n).map(|i| i as u8).collect::<Vec<u8>>();
    let cases: [(Vec<u8>, u64, u64); 9] = [
        (vec![], 0xef46db3751d8e999, 0x95584af7701f808d),
        (b"a".to_vec(), 0xd24ec4f1a98c6e5b, 0x747b860523d69ab6),
        (b"abc".to_vec(), 0x44bc2cf5ad770999, 0x01700e64f6f23509),
        (pattern(7), 0x14cc643f630c72d2, 0x2de92ef6e41f4589),
        (pattern(12), 0x424af23f1f08dca5, 0x2f19dd655ba4e3ad),
        (pattern(31), 0xc346d2b59b4d8ee1, 0xa0efafec9dc8252a),
        (pattern(32), 0xcbf59c5116ff32b4, 0xb3273a2dc547055a),
        (pattern(100), 0x6ac1e58032166597, 0x028ba1ae2de4de27),
        ((0..1000).map(|i| (i * 7 % 256) as u8).collect(), 0x25275608a9cfc168, 0x29d23bd22e33513c),
    ];
    for (data, seed0, seed12345) in cases {
        assert_eq!(xxh64(&data, 0), seed0, "len {}", data.len());
        assert_eq!(xxh64(&data, 12345), seed12345, "len {}", data.len());
    }
}

// ---- round trip ----

fn dtype_strategy() -> impl Strategy<Value = Dtype> {
    prop::sample::select(Dtype::ALL.to_vec())
}

fn section_strategy() -> impl Strategy<Value = (Dtype, Vec<u64>, Vec<u8>)> {
    (dtype_strategy(), prop::collection::vec(0u64..5, 0..4)).prop_flat_map(|(d, shape)| {
        let n = shape.iter().product::<u64>() * d.size();
        (Just(d), Just(shape), prop::collection::vec(any::<u8>(), n as usize))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(sections in prop::collection::vec(section_strategy(), 0..7)) {
        let mut b = ContainerBuilder::new();
        for (i, (d, shape, data)) in sections.iter().enumerate() {
            b.add_raw(&format!("s{i}.{}", d.name()), *d, shape, Cow::Borrowed(data)).unwrap();
        }
        let bytes = b.to_bytes().unwrap();
        let c = Container::parse_verified(&bytes).unwrap();
        prop_assert_eq!(c.len(), sections.len());
        for (i, (d, shape, data)) in sections.iter().enumerate() {
            let name = format!("s{i}.{}", d.name());
            let info = c.info(&name).unwrap();
            prop_assert_eq!(info.dtype, *d);
            prop_assert_eq!(info.shape, &shape[..]);
            prop_assert_eq!(info.offset % 64, 0);
            prop_assert_eq!(c.section_bytes(&name).unwrap(), &data[..]);
            let n = data.len() / d.size() as usize;
            let typed_len = match d {
                Dtype::U8 => c.section::<u8>(&name).unwrap().len(),
                Dtype::I8 => c.section::<i8>(&name).unwrap().len(),
                Dtype::U16 | Dtype::F16 | Dtype::BF16 => c.section::<u16>(&name).unwrap().len(),
                Dtype::I16 => c.section::<i16>(&name).unwrap().len(),
                Dtype::U32 => c.section::<u32>(&name).unwrap().len(),
                Dtype::I32 => c.section::<i32>(&name).unwrap().len(),
                Dtype::U64 => c.section::<u64>(&name).unwrap().len(),
                Dtype::I64 => c.section::<i64>(&name).unwrap().len(),
                Dtype::F32 => c.section::<f32>(&name).unwrap().len(),
                Dtype::F64 => c.section::<f64>(&name).unwrap().len(),
            };
            prop_assert_eq!(typed_len, n);
        }
    }

    // Any single changed byte anywhere in a file is caught by a verified
    // parse: preamble fields, header checksum, padding or payload checksum.
    #[test]
    fn any_byte_change_is_detected(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let bytes = F::valid().encode();
        let mut bad = bytes.clone();
        let i = pos.index(bytes.len());
        bad.as_mut_slice()[i] ^= flip;
        prop_assert!(Container::parse_verified(&bad).is_err(), "byte {} ^ {:#x} accepted", i, flip);
    }
}
