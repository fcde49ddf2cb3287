//! String tables and key/value tables stored as container sections.
//!
//! A string table named `t` is two sections: `t.offsets` (u64, shape
//! `[n + 1]`, starting at 0, non-decreasing, ending at the blob length) and
//! `t.blob` (u8, shape `[len]`, UTF-8). String `i` is
//! `blob[offsets[i]..offsets[i + 1]]`. Document ids, per-document metadata
//! and build parameters all use it. Loading validates the whole table once
//! (offsets, UTF-8, every boundary on a character boundary), after which
//! lookups are plain slicing that cannot fail.
//!
//! A key/value table is a string table of even length holding key, value,
//! key, value, ...; keys are non-empty and unique. Values are text: numbers
//! are written with `to_string` and parsed back with `FromStr`.

use std::str::FromStr;

use super::{Container, ContainerBuilder, ContainerError};

type Result<T> = std::result::Result<T, ContainerError>;

/// Name of the offsets section of string table `table`.
pub fn offsets_name(table: &str) -> String {
    format!("{table}.offsets")
}

/// Name of the blob section of string table `table`.
pub fn blob_name(table: &str) -> String {
    format!("{table}.blob")
}

/// A validated string table viewed in place.
#[derive(Clone, Copy, Debug)]
pub struct StringTable<'a> {
    offsets: &'a [u64],
    blob: &'a str,
}

impl<'a> StringTable<'a> {
    /// Loads and validates table `table` from `c`.
    pub fn load(c: &Container<'a>, table: &str) -> Result<Self> {
        let on = offsets_name(table);
        let offsets = c.section::<u64>(&on)?;
        let bytes = c.section::<u8>(&blob_name(table))?;
        Self::from_parts(offsets, bytes).map_err(|reason| ContainerError::invalid(&on, reason))
    }

    /// Validates a table given as its two arrays.
    pub fn from_parts(offsets: &'a [u64], blob: &'a [u8]) -> std::result::Result<Self, String> {
        let blob = std::str::from_utf8(blob)
            .map_err(|e| format!("blob is not UTF-8 at byte {}", e.valid_up_to()))?;
        match offsets.first() {
            None => return Err("offsets are empty; a table of n strings has n + 1".into()),
            Some(&f) if f != 0 => return Err(format!("first offset is {f}, must be 0")),
            _ => {}
        }
        if offsets.last() != Some(&(blob.len() as u64)) {
            return Err(format!(
                "last offset {:?} differs from the blob length {}",
                offsets.last(),
                blob.len()
            ));
        }
        for (i, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(format!("offset {} ({}) is below offset {i} ({})", i + 1, w[1], w[0]));
            }
            // w[1] <= last == blob.len(), so it fits usize.
            if !blob.is_char_boundary(w[1] as usize) {
                return Err(format!("offset {} ({}) splits a UTF-8 character", i + 1, w[1]));
            }
        }
        Ok(StringTable { offsets, blob })
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether the table holds no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let a = *self.offsets.get(i)? as usize;
        let b = *self.offsets.get(i.checked_add(1)?)? as usize;
        self.blob.get(a..b)
    }

    /// All strings in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// A validated key/value table viewed in place.
#[derive(Clone, Debug)]
pub struct KeyValues<'a> {
    name: String,
    table: StringTable<'a>,
}

impl<'a> KeyValues<'a> {
    /// Loads and validates key/value table `table` from `c`. The returned
    /// value names the table in its errors.
    pub fn load(c: &Container<'a>, table: &str) -> Result<Self> {
        let t = StringTable::load(c, table)?;
        if t.len() % 2 != 0 {
            return Err(ContainerError::invalid(
                table,
                "odd number of strings in a key/value table",
            ));
        }
        let mut keys: Vec<&str> = (0..t.len() / 2).filter_map(|i| t.get(2 * i)).collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(ContainerError::invalid(table, "empty key"));
        }
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(ContainerError::invalid(table, format!("key {:?} appears twice", w[0])));
        }
        Ok(KeyValues { name: table.to_owned(), table: t })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value of `key` parsed as `T`; missing or unparsable is an error
    /// naming the table and key.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<T> {
        let v = self
            .get(key)
            .ok_or_else(|| ContainerError::invalid(&self.name, format!("missing key {key:?}")))?;
        v.parse().map_err(|_| {
            ContainerError::invalid(&self.name, format!("key {key:?}: cannot parse {v:?}"))
        })
    }

    /// Pairs in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        (0..self.table.len() / 2)
            .filter_map(|i| Some((self.table.get(2 * i)?, self.table.get(2 * i + 1)?)))
    }
}

impl ContainerBuilder<'_> {
    /// Adds string table `table` (sections `table.offsets`, `table.blob`).
    pub fn add_strings<S: AsRef<str>>(
        &mut self,
        table: &str,
        strings: impl IntoIterator<Item = S>,
    ) -> Result<&mut Self> {
        let mut offsets = vec![0u64];
        let mut blob = Vec::new();
        for s in strings {
            blob.extend_from_slice(s.as_ref().as_bytes());
            offsets.push(blob.len() as u64);
        }
        let n = offsets.len() as u64;
        let len = blob.len() as u64;
        self.add_owned(&offsets_name(table), &[n], offsets)?;
        self.add_owned(&blob_name(table), &[len], blob)
    }

    /// Adds key/value table `table`; keys must be non-empty and unique.
    pub fn add_key_values<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        table: &str,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<&mut Self> {
        let mut flat: Vec<String> = Vec::new();
        for (k, v) in pairs {
            let k = k.as_ref();
            if k.is_empty() {
                return Err(ContainerError::invalid(table, "empty key"));
            }
            if flat.iter().step_by(2).any(|e| e == k) {
                return Err(ContainerError::invalid(table, format!("key {k:?} appears twice")));
            }
            flat.push(k.to_owned());
            flat.push(v.as_ref().to_owned());
        }
        self.add_strings(table, flat)
    }
}
