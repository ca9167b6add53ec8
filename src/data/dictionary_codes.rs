//! One column of a parquet file read as dictionary codes: each row group's
//! dictionary, and each row's index into it.
//!
//! A replay reads its label and slice columns this way: a slice key or a
//! class code is looked up once per dictionary entry instead of once per
//! row, and no polars frame is made for them (decoding the two columns
//! through polars and keying each row's slice took a sixth of a replay's
//! CPU; see docs/shadow.md). Only flat text (UTF-8) and integer columns
//! whose data pages are all dictionary-encoded are read here; a row group
//! with another page makes [`DictionaryCodes::read`] answer `None`, and the
//! caller reads those rows through polars.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars_parquet::parquet::compression::DecompressionContext;
use polars_parquet::parquet::metadata::FileMetadata;
use polars_parquet::parquet::page::{
    split_buffer, CompressedPage, DataPageHeader, FormatEncoding, Page,
};
use polars_parquet::parquet::read::{decompress, read_metadata};
use polars_parquet::parquet::schema::types::{
    PhysicalType, PrimitiveConvertedType, PrimitiveLogicalType,
};

use super::float_pages::{column_chunk, group_starts, part_bounds, read_pages, Hybrid, Kind};
use super::Table;
use crate::error::{Error, Result};

/// A row's index where the row is null.
pub const NULL: u32 = u32::MAX;

/// A dictionary's entries.
#[derive(Debug, Clone, PartialEq)]
pub enum Entries {
    Text(Vec<String>),
    Int(Vec<i64>),
}

impl Entries {
    pub fn len(&self) -> usize {
        match self {
            Entries::Text(v) => v.len(),
            Entries::Int(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rows of one row group: its dictionary, and each row's entry.
#[derive(Debug)]
pub struct GroupCodes {
    pub entries: Entries,
    /// Each row's index into `entries`, [`NULL`] where the row is null.
    pub indices: Vec<u32>,
}

/// What a column's values are.
#[derive(Debug, Clone, Copy)]
enum EntryKind {
    Text,
    Int(Kind),
}

/// Reads one column of a parquet file as dictionary codes, row group by
/// row group.
pub struct DictionaryCodes {
    path: PathBuf,
    name: String,
    file: File,
    metadata: FileMetadata,
    kind: EntryKind,
    /// Each row group's first row.
    group_starts: Vec<usize>,
}

impl DictionaryCodes {
    /// A reader of column `name` of `table`'s file, or None when the table
    /// is in memory or the column is not a flat text or integer one.
    pub fn open(table: &Table, name: &str) -> Result<Option<DictionaryCodes>> {
        if table.is_in_memory() {
            return Ok(None);
        }
        Self::open_file(&table.path, name)
    }

    fn open_file(path: &Path, name: &str) -> Result<Option<DictionaryCodes>> {
        let mut file = File::open(path).map_err(|e| Error::input(path, e))?;
        let metadata = read_metadata(&mut file).map_err(|e| Error::input(path, format!("{e}")))?;
        let mut kind = None;
        for group in 0..metadata.row_groups.len() {
            let Some(chunk) = column_chunk(&metadata, group, name) else {
                return Ok(None);
            };
            let descriptor = &chunk.descriptor().descriptor;
            let primitive = &descriptor.primitive_type;
            let flat = descriptor.max_rep_level == 0
                && descriptor.max_def_level <= 1
                && chunk.descriptor().path_in_schema.len() == 1;
            let text = primitive.physical_type == PhysicalType::ByteArray
                && (matches!(primitive.logical_type, Some(PrimitiveLogicalType::String))
                    || matches!(primitive.converted_type, Some(PrimitiveConvertedType::Utf8)));
            let this = match Kind::of(chunk) {
                _ if !flat => return Ok(None),
                _ if text => EntryKind::Text,
                // Unsigned 64-bit values past i64 are left to polars.
                Some(k @ (Kind::Int32 { .. } | Kind::Int64 { signed: true })) => EntryKind::Int(k),
                _ => return Ok(None),
            };
            kind.get_or_insert(this);
        }
        let Some(kind) = kind else {
            return Ok(None);
        };
        let group_starts = group_starts(&metadata);
        Ok(Some(DictionaryCodes {
            path: path.to_path_buf(),
            name: name.to_string(),
            file,
            metadata,
            kind,
            group_starts,
        }))
    }

    /// Rows `offset..offset + len`, whole row groups, row group by row
    /// group; None when a page of theirs is not dictionary-encoded.
    pub fn read(&mut self, offset: usize, len: usize) -> Result<Option<Vec<GroupCodes>>> {
        let Ok(mut group) = self.group_starts.binary_search(&offset) else {
            return Err(Error::input(
                &self.path,
                format!("no row group starts at row {offset}"),
            ));
        };
        let mut groups = Vec::new();
        let mut row = offset;
        while row < offset + len {
            let Some(rows) = self.metadata.row_groups.get(group).map(|g| g.num_rows()) else {
                return Err(Error::input(
                    &self.path,
                    "has fewer rows than its metadata says",
                ));
            };
            match self.group(group, rows).map_err(|e| self.error(group, e))? {
                Some(codes) => groups.push(codes),
                None => return Ok(None),
            }
            row += rows;
            group += 1;
        }
        if row != offset + len {
            return Err(Error::input(
                &self.path,
                format!("rows {offset}..{} end inside a row group", offset + len),
            ));
        }
        Ok(Some(groups))
    }

    fn error(&self, group: usize, message: impl std::fmt::Display) -> Error {
        Error::input(
            &self.path,
            format!("column '{}', row group {group}: {message}", self.name),
        )
    }

    /// Row group `group`'s codes (`rows` rows), or None when a page of its
    /// column chunk is not dictionary-encoded.
    fn group(
        &mut self,
        group: usize,
        rows: usize,
    ) -> std::result::Result<Option<GroupCodes>, String> {
        let chunk = column_chunk(&self.metadata, group, &self.name).expect("checked when opened");
        let optional = chunk.descriptor().descriptor.max_def_level == 1;
        let mut pages = read_pages(&mut self.file, None, chunk)?;
        if !matches!(pages.front(), Some(CompressedPage::Dict(_))) {
            return Ok(None);
        }
        if !pages
            .iter()
            .skip(1)
            .all(|page| dictionary_page(page, rows, optional))
        {
            return Ok(None);
        }
        let mut context = DecompressionContext::Unset;
        let page = pages.pop_front().expect("a dictionary page");
        let Page::Dict(dict) =
            decompress(page, &mut Vec::new(), &mut context).map_err(|e| e.to_string())?
        else {
            return Err("its dictionary page decoded as a data page".into());
        };
        let Some(entries) = entries(&dict.buffer, dict.num_values, self.kind) else {
            // Values polars reads otherwise (text that is not UTF-8, a
            // page shorter than its count says): left to polars.
            return Ok(None);
        };
        let mut indices = Vec::with_capacity(rows);
        let (mut levels, mut present) = (Vec::new(), Vec::new());
        for page in pages {
            let Page::Data(page) =
                decompress(page, &mut Vec::new(), &mut context).map_err(|e| e.to_string())?
            else {
                return Err("a second dictionary page".into());
            };
            let n = page.num_values();
            if indices.len() + n > rows {
                return Err("its pages hold more rows than the row group".into());
            }
            let split = split_buffer(&page).map_err(|e| e.to_string())?;
            let data = page.buffer();
            let bounds = |part: &[u8]| part_bounds(data, part);
            // Present all through the page when there are no levels or they
            // are one run of "present" (a column without nulls but declared
            // nullable, the usual case): its indices are read in place.
            let mut page_levels = match optional {
                true => {
                    let (start, end) = bounds(split.def)?;
                    Some(Hybrid::new(start, end, 1))
                }
                false => None,
            };
            let all_present = match &mut page_levels {
                None => true,
                Some(levels) => levels.take_repeat(data, 1, n)?,
            };
            let count = match (all_present, &mut page_levels) {
                (false, Some(page_levels)) => {
                    levels.clear();
                    levels.resize(n, 0);
                    page_levels.read(data, &mut levels)?;
                    if levels.iter().any(|&l| l > 1) {
                        return Err("a definition level is out of range".into());
                    }
                    levels.iter().filter(|&&l| l == 1).count()
                }
                _ => n,
            };
            let first = indices.len();
            let into = match all_present {
                true => {
                    indices.resize(first + n, 0);
                    &mut indices[first..]
                }
                false => {
                    present.clear();
                    present.resize(count, 0);
                    &mut present[..]
                }
            };
            let (start, end) = bounds(split.values)?;
            if count > 0 {
                let Some(&bits) = data.get(start) else {
                    return Err("a dictionary-encoded page without values".into());
                };
                if bits > 32 {
                    return Err(format!("indices of {bits} bits"));
                }
                Hybrid::new(start + 1, end, u32::from(bits)).read(data, into)?;
            }
            if into.iter().any(|&i| i as usize >= entries.len()) {
                return Err("a dictionary index is out of range".into());
            }
            if !all_present {
                let mut values = present.iter();
                indices.extend(levels.iter().map(|&level| match level {
                    1 => *values.next().expect("counted"),
                    _ => NULL,
                }));
            }
        }
        if indices.len() != rows {
            return Err("its pages end before the row group's rows".into());
        }
        Ok(Some(GroupCodes { entries, indices }))
    }
}

/// Whether a page after the dictionary is a dictionary-encoded data page
/// this reader decodes (in a row group of `rows` rows).
fn dictionary_page(page: &CompressedPage, rows: usize, optional: bool) -> bool {
    let CompressedPage::Data(data) = page else {
        return false;
    };
    // Sizes beyond what the row group's rows can hold (a damaged header)
    // are left to polars, not allocated here: at most 4 bytes an index and
    // its level, with room for run headers.
    let count = data.num_values();
    if count > rows || data.uncompressed_size() > count * 10 + 4096 {
        return false;
    }
    let values = matches!(
        data.header().encoding(),
        FormatEncoding::PLAIN_DICTIONARY | FormatEncoding::RLE_DICTIONARY
    );
    let levels = match data.header() {
        DataPageHeader::V1(h) => !optional || h.definition_level_encoding == FormatEncoding::RLE,
        DataPageHeader::V2(_) => true,
    };
    values && levels
}

/// A dictionary page's `count` PLAIN entries, or None when its bytes do not
/// hold them (or a text is not UTF-8).
fn entries(data: &[u8], count: usize, kind: EntryKind) -> Option<Entries> {
    let fixed = |size: usize| count.checked_mul(size).filter(|&n| n <= data.len());
    match kind {
        EntryKind::Text => {
            // Each entry at least its 4-byte length: checked before
            // anything is allocated for the count.
            fixed(4)?;
            let mut texts = Vec::with_capacity(count);
            let mut at = 0usize;
            for _ in 0..count {
                let len = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
                let bytes = data.get(at + 4..(at + 4).checked_add(len)?)?;
                texts.push(std::str::from_utf8(bytes).ok()?.to_string());
                at += 4 + len;
            }
            Some(Entries::Text(texts))
        }
        EntryKind::Int(kind) => {
            let size = match kind {
                Kind::Int32 { .. } => 4,
                _ => 8,
            };
            let bytes = &data[..fixed(size)?];
            let four = |v: &[u8]| <[u8; 4]>::try_from(v).expect("4 bytes");
            let eight = |v: &[u8]| <[u8; 8]>::try_from(v).expect("8 bytes");
            let values = bytes.chunks_exact(size);
            Some(Entries::Int(match kind {
                Kind::Int32 { signed: true } => values
                    .map(|v| i64::from(i32::from_le_bytes(four(v))))
                    .collect(),
                Kind::Int32 { signed: false } => values
                    .map(|v| i64::from(u32::from_le_bytes(four(v))))
                    .collect(),
                _ => values.map(|v| i64::from_le_bytes(eight(v))).collect(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::float_pages::tests::read_damaged_copies;
    use crate::data::{Frame, Values};

    const FIXTURES: [&str; 3] = ["v1_snappy.parquet", "v2_zstd.parquet", "v1_none.parquet"];

    /// Each row's value as text, as polars reads the column.
    fn polars_values(path: &Path, column: &str) -> Vec<Option<String>> {
        let frame = Frame::read(path, Some(&[column.to_string()])).expect("polars reads it");
        match frame.values(column).expect("values") {
            Values::Int(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
            Values::Text(v) => v,
            _ => panic!("{column}: neither integers nor text"),
        }
    }

    /// Each row's value as text, from the dictionary codes of whole row
    /// groups (row groups of 1,700 rows: read two, then the last one).
    fn codes_values(path: &Path, column: &str) -> Option<Vec<Option<String>>> {
        let mut reader = DictionaryCodes::open_file(path, column)
            .expect("metadata read")
            .expect("a text or integer column");
        let mut values = Vec::new();
        for (offset, len) in [(0, 3400), (3400, 1600)] {
            for group in reader.read(offset, len).expect("read")? {
                values.extend(group.indices.iter().map(|&i| match (&group.entries, i) {
                    (_, NULL) => None,
                    (Entries::Text(v), i) => Some(v[i as usize].clone()),
                    (Entries::Int(v), i) => Some(v[i as usize].to_string()),
                }));
            }
        }
        Some(values)
    }

    #[test]
    fn dictionary_codes_give_the_values_polars_reads() {
        for file in FIXTURES {
            let path = Path::new("tests/fixtures/float_pages").join(file);
            for column in ["region", "label", "segment"] {
                let expected = polars_values(&path, column);
                let read = codes_values(&path, column).expect("dictionary pages");
                assert_eq!(read, expected, "{file}: {column}");
            }
            // Integers of other widths and signs, where their dictionaries
            // did not fill up.
            for column in ["count", "tiny", "unsigned", "small"] {
                if let Some(read) = codes_values(&path, column) {
                    assert_eq!(read, polars_values(&path, column), "{file}: {column}");
                }
            }
            // The fixture has nulls and text beyond ASCII.
            let regions = codes_values(&path, "region").expect("dictionary pages");
            assert!(regions.iter().any(Option::is_none));
            assert!(regions.contains(&Some("île".to_string())));
        }
    }

    #[test]
    fn row_groups_with_other_pages_or_columns_of_other_kinds_are_left_to_polars() {
        let path = Path::new("tests/fixtures/float_pages/v1_snappy.parquet");
        // All distinct: the dictionary fills up and PLAIN pages follow.
        assert_eq!(codes_values(path, "name"), None);
        // PLAIN integers.
        assert_eq!(codes_values(path, "big"), None);
        for declined in ["dict_nulls", "huge", "day", "no_such_column"] {
            let reader = DictionaryCodes::open_file(path, declined).expect("metadata read");
            assert!(reader.is_none(), "{declined}");
        }
        let mut reader = DictionaryCodes::open_file(path, "region")
            .expect("metadata read")
            .expect("a text column");
        let err = reader
            .read(100, 1600)
            .expect_err("not a row group's first row");
        assert!(err.to_string().contains("row 100"), "{err}");
        let err = reader.read(0, 1000).expect_err("ends inside a row group");
        assert!(err.to_string().contains("inside a row group"), "{err}");
    }

    #[test]
    fn damaged_pages_are_errors_naming_the_file_never_panics() {
        let errors = read_damaged_copies(211, |path| {
            for column in ["region", "label"] {
                if let Some(mut reader) = DictionaryCodes::open_file(path, column)? {
                    reader.read(0, 5000)?;
                }
            }
            Ok(())
        });
        assert!(errors > 10, "{errors} damaged files refused");
    }
}
