//! Numeric columns of a parquet file (floats, doubles, integers) read
//! straight into a row-major float32 matrix, page by page, a block of rows
//! at a time.
//!
//! Feeding a model from a log through polars decodes each column into a
//! 64-bit array of the whole range (dictionary indices unpacked, then
//! gathered), and the layout then reads those arrays again to write the
//! float32 rows. Here the dictionary is converted to float32 once per
//! column chunk, and each block of rows is unpacked, gathered and
//! transposed while it is in cache: a replay of the sample log of 1M rows
//! took 371 ms of CPU instead of 452 (see docs/shadow.md). The column
//! chunks are read from a map of their part of the file ([`FileSpan`]),
//! not copied into memory.
//!
//! Only what is common and simple is decoded here: top-level FLOAT, DOUBLE,
//! INT32 and INT64 columns, without a logical type or (integers) with an
//! integer one, required or optional, whose pages are PLAIN or
//! dictionary-encoded with RLE definition levels. Values are rounded to
//! float32 as polars casts them. A column of another kind (a decimal, a
//! date) makes [`FloatRows::open`] answer `None` (the caller reads through
//! polars), and a row group with a page of another encoding is laid out
//! through polars by this reader.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars_buffer::Buffer;
use polars_parquet::parquet::compression::{Compression, DecompressionContext};
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, Descriptor, FileMetadata};
use polars_parquet::parquet::page::{
    split_buffer, CompressedPage, DataPage, DataPageHeader, FormatEncoding, Page,
};
use polars_parquet::parquet::read::{decompress, read_metadata, PageMetaData, PageReader};
use polars_parquet::parquet::schema::types::{IntegerType, PhysicalType, PrimitiveLogicalType};
use polars_parquet::parquet::CowBuffer;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

use super::{append_rows, transpose_block_rows, FeatureScaling, Frame, Table};
use crate::error::{Error, Result};

/// Reads the rows of a parquet file's numeric columns in order, as float32
/// rows (nulls as NaN), across its row groups.
pub struct FloatRows<'a> {
    path: PathBuf,
    /// Lays out row groups with pages of other encodings (absent: such a
    /// row group is an error).
    table: Option<&'a Table>,
    names: Vec<String>,
    file: File,
    metadata: FileMetadata,
    /// Each row group's first row.
    group_starts: Vec<usize>,
    /// The row group being read (for errors), and the part of it open.
    group_index: usize,
    group: Group,
    /// The row the next part opens at: the end of the part open.
    next_offset: usize,
    /// Rows of the part open still to be read.
    left: usize,
    /// Where the rows asked for by the last `seek` end: a part opened
    /// before it ends there (or at its row group's end).
    until: usize,
    /// A block of rows, column by column, `stride` apart.
    scratch: Vec<f32>,
    block: usize,
    stride: usize,
    /// Reused buffers: definition levels, the values of the rows that are
    /// not null.
    levels: Vec<u32>,
    present: Vec<f32>,
    /// Applied to the values as they are read (`scaled`).
    scaling: Option<FeatureScaling>,
    /// The last part's decompression buffers, for this part's columns.
    spare_buffers: Vec<PageBuffer>,
}

/// Where the rows of the row group being read come from.
enum Group {
    /// Page by page, one decoder per column.
    Pages(Vec<ColumnPages>),
    /// A row group with pages this reader does not decode, decoded by
    /// polars: the row group, and its first row not yet read (laid out as
    /// rows are read, so that the nulls counted are those of the rows
    /// read).
    LaidOut { frame: Frame, next: usize },
}

impl<'a> FloatRows<'a> {
    /// A reader of `names` in `table`'s parquet file, or None when one of
    /// them is not a column this reader decodes.
    pub fn open(table: &'a Table, names: &[String]) -> Result<Option<FloatRows<'a>>> {
        Self::open_file(&table.path, names, Some(table))
    }

    fn open_file(
        path: &Path,
        names: &[String],
        table: Option<&'a Table>,
    ) -> Result<Option<FloatRows<'a>>> {
        let mut file = File::open(path).map_err(|e| Error::input(path, e))?;
        let metadata = read_metadata(&mut file).map_err(|e| Error::input(path, format!("{e}")))?;
        if names.is_empty() {
            return Ok(None);
        }
        for group in 0..metadata.row_groups.len() {
            for name in names {
                match column_chunk(&metadata, group, name) {
                    Some(chunk) if Kind::of(chunk).is_some() => {}
                    _ => return Ok(None),
                }
            }
        }
        let width = names.len();
        let block = transpose_block_rows(width);
        let stride = block + 16;
        let group_starts = group_starts(&metadata);
        Ok(Some(FloatRows {
            path: path.to_path_buf(),
            table,
            names: names.to_vec(),
            file,
            metadata,
            group_starts,
            group_index: 0,
            group: Group::Pages(Vec::new()),
            next_offset: 0,
            left: 0,
            until: usize::MAX,
            scratch: vec![0f32; stride * width],
            block,
            stride,
            levels: Vec::new(),
            present: Vec::new(),
            scaling: None,
            spare_buffers: Vec::new(),
        }))
    }

    /// A reader of every value scaled (one scale a column, in `names`'
    /// order): a dictionary-encoded column's dictionary once a row group,
    /// a PLAIN page's values as they are converted.
    pub fn scaled(mut self, scaling: FeatureScaling) -> Self {
        assert_eq!(scaling.offset.len(), self.names.len(), "a scale a column");
        assert_eq!(self.left, 0, "scaled before the first read");
        self.scaling = Some(scaling);
        self
    }

    /// Appends the next `rows` rows to `out`, row by row; returns how many
    /// of their values were null (NaN in `out`).
    pub fn read(&mut self, mut rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        let width = self.names.len();
        out.reserve(rows * width);
        let mut nulls = 0;
        while rows > 0 {
            if self.left == 0 {
                self.open_part()?;
                continue;
            }
            let n = rows.min(self.left);
            match &mut self.group {
                Group::LaidOut { frame, next } => {
                    let (rows, k) = laid_out_rows(frame, next, n, &self.names, &self.scaling)?;
                    out.extend_from_slice(&rows);
                    nulls += k;
                }
                Group::Pages(columns) => {
                    for first in (0..n).step_by(self.block) {
                        let len = self.block.min(n - first);
                        let columns = self
                            .scratch
                            .chunks_exact_mut(self.stride)
                            .zip(columns.iter_mut());
                        for (column, pages) in columns {
                            let buffers = Buffers {
                                levels: &mut self.levels,
                                present: &mut self.present,
                            };
                            match pages.read(&mut column[..len], buffers) {
                                Ok(n) => nulls += n,
                                Err(e) => {
                                    let name = pages.name.clone();
                                    return Err(self.error(&name, e));
                                }
                            }
                        }
                        append_rows(&self.scratch, self.stride, width, len, out);
                    }
                }
            }
            self.left -= n;
            rows -= n;
        }
        Ok(nulls)
    }

    /// Appends the next `rows` rows to `out` column by column: column j's
    /// values at `out[start + j * stride..]`, `start` being `out`'s length
    /// before and `stride` [`column_stride`]`(rows)` (a matrix a model
    /// reads where it lies, by columns: each column's values are written
    /// once, where they stay, instead of gathered into a block and
    /// transposed into rows). Returns how many of their values were null
    /// (NaN in `out`).
    pub fn read_columns(&mut self, rows: usize, out: &mut Vec<f32>) -> Result<usize> {
        let width = self.names.len();
        let stride = column_stride(rows);
        let start = out.len();
        out.resize(start + stride * width, 0.0);
        let out = &mut out[start..];
        let mut nulls = 0;
        let mut done = 0;
        while done < rows {
            if self.left == 0 {
                self.open_part()?;
                continue;
            }
            let n = (rows - done).min(self.left);
            match &mut self.group {
                Group::LaidOut { frame, next } => {
                    let (rows, k) = laid_out_rows(frame, next, n, &self.names, &self.scaling)?;
                    for (i, row) in rows.chunks_exact(width).enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            out[j * stride + done + i] = v;
                        }
                    }
                    nulls += k;
                }
                Group::Pages(columns) => {
                    for (j, pages) in columns.iter_mut().enumerate() {
                        let buffers = Buffers {
                            levels: &mut self.levels,
                            present: &mut self.present,
                        };
                        let column = &mut out[j * stride + done..j * stride + done + n];
                        match pages.read(column, buffers) {
                            Ok(k) => nulls += k,
                            Err(e) => {
                                let name = pages.name.clone();
                                return Err(self.error(&name, e));
                            }
                        }
                    }
                }
            }
            self.left -= n;
            done += n;
        }
        Ok(nulls)
    }

    /// Makes rows `row..row + len` the next read: of a row group, only the
    /// pages that hold them are read (reading on past them reads on).
    /// Further into the part being read, the rows before `row` are passed
    /// over where they lie; elsewhere the part from `row` is opened, the
    /// pages before it passed over by their headers, unread.
    pub fn seek(&mut self, row: usize, len: usize) -> Result<()> {
        self.until = row.saturating_add(len);
        let position = self.next_offset - self.left;
        if self.left > 0 && (position..self.next_offset).contains(&row) {
            return self.skip(row - position);
        }
        let rows = self.group_starts.last().copied().unwrap_or(0)
            + self.metadata.row_groups.last().map_or(0, |g| g.num_rows());
        if row >= rows && (row > rows || len > 0) {
            return Err(Error::input(&self.path, format!("has no row {row}")));
        }
        self.next_offset = row;
        self.left = 0;
        Ok(())
    }

    /// Passes over the next `n` rows of the row group being read.
    fn skip(&mut self, n: usize) -> Result<()> {
        match &mut self.group {
            Group::LaidOut { next, .. } => *next += n,
            Group::Pages(columns) => {
                for pages in columns.iter_mut() {
                    if let Err(e) = pages.skip(n, &mut self.levels) {
                        let name = pages.name.clone();
                        return Err(self.error(&name, e));
                    }
                }
            }
        }
        self.left -= n;
        Ok(())
    }

    fn error(&self, column: &str, message: impl std::fmt::Display) -> Error {
        Error::input(
            &self.path,
            format!(
                "column '{column}', row group {}: {message}",
                self.group_index
            ),
        )
    }

    /// Opens the log from row `next_offset` to the end of its row group,
    /// or to `until` when that comes first (the row group's end when
    /// reading on past `until`).
    fn open_part(&mut self) -> Result<()> {
        let first = self.next_offset;
        // The last row group starting at or before `first` (an empty one
        // starts where the next does).
        let index = self
            .group_starts
            .partition_point(|&start| start <= first)
            .saturating_sub(1);
        let start = self.group_starts.get(index).copied().unwrap_or(0);
        let rows = self
            .metadata
            .row_groups
            .get(index)
            .map_or(0, |g| g.num_rows());
        if first >= start + rows {
            return Err(Error::input(
                &self.path,
                "has fewer rows than its metadata says",
            ));
        }
        let end = match self.until > first {
            true => self.until.min(start + rows),
            false => start + rows,
        };
        self.group_index = index;
        self.next_offset = end;
        self.left = end - first;
        // The last part's pages go before this one's are read: their
        // memory then serves this part's (fresh memory is dear on a virtual
        // machine), and their decompression buffers are this part's, so
        // that a page is not decompressed into zeroed memory (a log with
        // PLAIN pages of a megabyte spent 4% of a replay zeroing them).
        if let Group::Pages(columns) = std::mem::replace(&mut self.group, Group::Pages(Vec::new()))
        {
            self.spare_buffers
                .extend(columns.into_iter().map(ColumnPages::into_buffer));
        }
        let whole = first == start && end == start + rows;
        let chunks = || {
            self.names
                .iter()
                .map(|name| column_chunk(&self.metadata, index, name).expect("checked when opened"))
        };
        // The row group's chunks in one map (those of other columns between
        // them are never touched). From a map a part takes its chunks'
        // pages whole: those before its rows are passed over unread and
        // those after them never decompressed; without one, it reads its
        // own pages.
        let span = chunks()
            .map(|chunk| checked_range(&self.file, chunk).ok())
            .collect::<Option<Vec<_>>>()
            .and_then(|ranges| {
                let from = ranges.iter().map(|r| r.start).min()?;
                let to = ranges.iter().map(|r| r.end).max()?;
                FileSpan::map(&self.file, from..to)
            });
        let mut columns = Vec::with_capacity(self.names.len());
        for (j, (name, chunk)) in self.names.iter().zip(chunks()).enumerate() {
            let (pages, passed) = match span.is_some() || whole {
                true => read_pages(&mut self.file, span.as_ref(), chunk).map(|pages| (pages, 0)),
                false => read_pages_for(&self.file, chunk, first - start, end - start),
            }
            .map_err(|e| self.error(name, e))?;
            let optional = chunk.descriptor().descriptor.max_def_level == 1;
            if !pages
                .iter()
                .all(|page| decodable_page(page, rows, optional))
            {
                // An encoding decoded by polars alone: this part only.
                let Some(table) = self.table else {
                    return Err(self.error(name, "pages of an encoding read through polars alone"));
                };
                let frame = table.read_frame(&self.names, first, self.left)?;
                if frame.height() != self.left {
                    return Err(self.error(name, "fewer rows than its row group's metadata says"));
                }
                self.group = Group::LaidOut { frame, next: 0 };
                return Ok(());
            }
            let scaling = self.scaling.as_ref().map(|s| (s.offset[j], s.scale[j]));
            let mapped = span
                .as_ref()
                .and_then(|span| span.bytes(&chunk.byte_range()));
            let mut column = ColumnPages::new(name, chunk, pages, mapped.as_deref(), scaling)
                .map_err(|e| self.error(name, e))?;
            column.buffer = self.spare_buffers.pop().unwrap_or_default();
            // The rows before `first` in the first page read.
            let before = (first - start).checked_sub(passed).ok_or_else(|| {
                self.error(name, "its page headers count more rows than it holds")
            })?;
            column
                .skip(before, &mut self.levels)
                .map_err(|e| self.error(name, e))?;
            columns.push(column);
        }
        self.group = Group::Pages(columns);
        Ok(())
    }
}

/// The next `n` rows of a row group laid out by polars, from row `next`
/// on (moved past them), scaled as pages' values are; and how many of
/// their values were null.
fn laid_out_rows(
    frame: &Frame,
    next: &mut usize,
    n: usize,
    names: &[String],
    scaling: &Option<FeatureScaling>,
) -> Result<(Vec<f32>, usize)> {
    let (mut rows, nulls) = frame.slice(*next, n).f32_rows(names)?;
    if let Some(scaling) = scaling {
        scaling.scale_rows(&mut rows);
    }
    *next += n;
    Ok((rows, nulls))
}

/// How far apart `read_columns` lays out the columns of `rows` rows:
/// whole cache lines, and one more, so that a model reading a value of
/// every column at each step does not find them all in the same few sets
/// of its cache (4,096 rows are 16 KB, a multiple of the sets' span).
pub fn column_stride(rows: usize) -> usize {
    rows.next_multiple_of(16) + 16
}

/// Each row group's first row.
pub(super) fn group_starts(metadata: &FileMetadata) -> Vec<usize> {
    metadata
        .row_groups
        .iter()
        .scan(0, |start, group| {
            let first = *start;
            *start += group.num_rows();
            Some(first)
        })
        .collect()
}

/// Where `part`, a slice of a page's `data`, lies in it.
pub(super) fn part_bounds(data: &[u8], part: &[u8]) -> std::result::Result<(usize, usize), String> {
    let start = (part.as_ptr() as usize).checked_sub(data.as_ptr() as usize);
    start
        .filter(|start| start + part.len() <= data.len())
        .map(|start| (start, start + part.len()))
        .ok_or_else(|| "its levels and values do not lie inside it".to_string())
}

/// Bytes of the file mapped into memory: column chunks read there are
/// read where the kernel keeps the file's pages, neither copied nor in
/// fresh memory (the first range of each of a replay's workers touched
/// 8 MB of it, at about 1 ms a MB on a virtual machine). Mapped part by
/// part, not the whole file, so that resident memory does not grow with
/// the log: the map goes with the last page read from it.
#[derive(Clone)]
pub(super) struct FileSpan {
    map: Arc<memmap2::Mmap>,
    /// Where the map starts in the file.
    start: u64,
}

impl FileSpan {
    /// Bytes `range` of `file` (inside it: checked against its length),
    /// mapped; None when the file cannot be mapped.
    pub(super) fn map(file: &File, range: std::ops::Range<u64>) -> Option<FileSpan> {
        let len = usize::try_from(range.end.checked_sub(range.start)?).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: the map is only read, and lies inside the file (past
        // its end a read would fault). Its bytes change under it if
        // another program rewrites the log while it is read (as for any
        // reader that maps its file, polars's included); a log is written
        // once, and its pages are checked as they are decoded.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(range.start)
                .len(len)
                .map(file)
        }
        .ok()?;
        Some(FileSpan {
            map: Arc::new(map),
            start: range.start,
        })
    }

    /// Bytes `range` of the file, when the map holds them.
    fn bytes(&self, range: &std::ops::Range<u64>) -> Option<Buffer<u8>> {
        let from = usize::try_from(range.start.checked_sub(self.start)?).ok()?;
        let to = usize::try_from(range.end.checked_sub(self.start)?).ok()?;
        (from <= to && to <= self.map.len()).then(|| {
            Buffer::from_owner(MappedBytes {
                map: self.map.clone(),
                range: from..to,
            })
        })
    }
}

/// Bytes of a map, as a buffer's owner.
struct MappedBytes {
    map: Arc<memmap2::Mmap>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// A column chunk's pages, still compressed: where they lie in `span`
/// (mapped for the chunk alone when there is none), else, when the file
/// cannot be mapped, read into memory.
pub(super) fn read_pages(
    file: &mut File,
    span: Option<&FileSpan>,
    chunk: &ColumnChunkMetadata,
) -> std::result::Result<VecDeque<CompressedPage>, String> {
    // A span lies inside the file (its chunks' ranges were checked when it
    // was mapped) and holds only what it maps: no second look at the
    // file's length.
    let mapped = match span {
        Some(span) => span.bytes(&chunk.byte_range()),
        None => {
            let range = checked_range(file, chunk)?;
            FileSpan::map(file, range.clone()).and_then(|span| span.bytes(&range))
        }
    };
    match mapped {
        Some(bytes) => pages_of(bytes, chunk.into()),
        None => read_pages_copied(file, chunk),
    }
}

/// A column chunk's pages, read into memory.
fn read_pages_copied(
    file: &mut File,
    chunk: &ColumnChunkMetadata,
) -> std::result::Result<VecDeque<CompressedPage>, String> {
    let range = checked_range(file, chunk)?;
    let len = usize::try_from(range.end - range.start).map_err(|e| e.to_string())?;
    // Read into fresh capacity (`read_to_end` does not zero it first).
    let mut bytes = Vec::with_capacity(len);
    file.seek(SeekFrom::Start(range.start))
        .and_then(|_| file.take(len as u64).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read its pages: {e}"))?;
    if bytes.len() != len {
        return Err("the file ends inside its pages".into());
    }
    pages_of(Buffer::from(bytes), chunk.into())
}

/// A column chunk's byte range, checked against the file's length before
/// anything is allocated for it (it comes from the metadata).
fn checked_range(
    file: &File,
    chunk: &ColumnChunkMetadata,
) -> std::result::Result<std::ops::Range<u64>, String> {
    let range = chunk.byte_range();
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    if range.end > file_len || range.start > range.end {
        return Err("its pages lie past the file's end".into());
    }
    Ok(range)
}

/// The pages in `bytes` (headers and data), as many values as `meta` says.
fn pages_of(
    bytes: Buffer<u8>,
    meta: PageMetaData,
) -> std::result::Result<VecDeque<CompressedPage>, String> {
    let len = bytes.len();
    let reader = PageReader::new_with_page_meta(Cursor::new(bytes), meta, Vec::new(), len);
    reader
        .collect::<std::result::Result<VecDeque<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The pages of a column chunk that hold rows `from..to` of its row group,
/// and its dictionary page, read page by page: the pages before them are
/// passed over by their headers and those after them not read (a piece of
/// a large row group reads its own pages, not the whole chunk). Returns
/// them and the rows of the pages passed over.
pub(super) fn read_pages_for(
    file: &File,
    chunk: &ColumnChunkMetadata,
    from: usize,
    to: usize,
) -> std::result::Result<(VecDeque<CompressedPage>, usize), String> {
    let range = checked_range(file, chunk)?;
    let mut bytes = Vec::new();
    let mut header = Vec::new();
    let (mut at, mut rows, mut values) = (range.start, 0usize, 0i64);
    let mut passed = None;
    while at < range.end && rows < to {
        let (page, header_len) = read_page_header(file, at, range.end, &mut header)?;
        let size =
            u64::try_from(page.compressed_page_size).map_err(|_| "a page of negative size")?;
        let next = at + header_len as u64 + size;
        if next > range.end {
            return Err("a page runs past its column chunk".into());
        }
        let page_values = match page.type_ {
            PageType::DATA_PAGE => page.data_page_header.as_ref().map(|h| h.num_values),
            PageType::DATA_PAGE_V2 => page.data_page_header_v2.as_ref().map(|h| h.num_values),
            _ => None,
        };
        let keep = match (page.type_, page_values) {
            (PageType::DICTIONARY_PAGE, _) => true,
            (_, Some(n)) => {
                let n = usize::try_from(n).map_err(|_| "a page of a negative count of values")?;
                let keep = rows + n > from;
                if keep {
                    passed.get_or_insert(rows);
                    values += n as i64;
                }
                rows += n;
                keep
            }
            // Index pages, or a data page without its header: left out.
            _ => false,
        };
        if keep {
            bytes.extend_from_slice(&header[..header_len]);
            let data = bytes.len();
            bytes.resize(data + size as usize, 0);
            file.read_exact_at(&mut bytes[data..], at + header_len as u64)
                .map_err(|e| format!("cannot read its pages: {e}"))?;
        }
        at = next;
    }
    let meta = PageMetaData::new(
        range.start,
        values,
        chunk.compression(),
        chunk.descriptor().descriptor.clone(),
    );
    let pages = pages_of(Buffer::from(bytes), meta)?;
    Ok((pages, passed.unwrap_or(rows)))
}

/// The header of the page at byte `at` of the file (its chunk ending at
/// `end`), and its length; `buffer` holds its bytes. Read through a window
/// that grows while the header (its statistics, say) is longer.
fn read_page_header(
    file: &File,
    at: u64,
    end: u64,
    buffer: &mut Vec<u8>,
) -> std::result::Result<(PageHeader, usize), String> {
    let most = usize::try_from(end - at).unwrap_or(usize::MAX);
    let mut window = 256;
    loop {
        let n = window.min(most);
        buffer.resize(n, 0);
        file.read_exact_at(buffer, at)
            .map_err(|e| format!("cannot read its pages: {e}"))?;
        let mut cursor = Cursor::new(&buffer[..]);
        let mut protocol = TCompactInputProtocol::new(&mut cursor, n);
        match PageHeader::read_from_in_protocol(&mut protocol) {
            Ok(header) => return Ok((header, cursor.position() as usize)),
            Err(_) if n < most && window < 1 << 24 => window *= 8,
            Err(e) => return Err(format!("a page header cannot be read: {e}")),
        }
    }
}

/// The chunk of column `name` in row group `group`, when it is a single
/// top-level column.
pub(super) fn column_chunk<'m>(
    metadata: &'m FileMetadata,
    group: usize,
    name: &str,
) -> Option<&'m ColumnChunkMetadata> {
    let mut chunks = metadata.row_groups[group].columns_under_root_iter(name)?;
    let chunk = chunks.next()?;
    chunks.next().is_none().then_some(chunk)
}

/// How a column's values are stored, when this reader decodes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Float,
    Double,
    Int32 { signed: bool },
    Int64 { signed: bool },
}

impl Kind {
    /// The kind of a flat column chunk: floats and doubles without a
    /// logical type, integers without one or with an integer one (a
    /// decimal, a date, a time or a float16 is left to polars).
    pub(super) fn of(chunk: &ColumnChunkMetadata) -> Option<Kind> {
        let descriptor = &chunk.descriptor().descriptor;
        let primitive = &descriptor.primitive_type;
        let flat = descriptor.max_rep_level == 0
            && descriptor.max_def_level <= 1
            && chunk.descriptor().path_in_schema.len() == 1;
        if !flat {
            return None;
        }
        let plain = primitive.logical_type.is_none() && primitive.converted_type.is_none();
        let integer = match primitive.logical_type {
            Some(PrimitiveLogicalType::Integer(t)) => Some(t),
            _ => None,
        };
        use IntegerType::*;
        match (primitive.physical_type, integer) {
            (PhysicalType::Float, _) if plain => Some(Kind::Float),
            (PhysicalType::Double, _) if plain => Some(Kind::Double),
            (PhysicalType::Int32, _) if plain => Some(Kind::Int32 { signed: true }),
            (PhysicalType::Int64, _) if plain => Some(Kind::Int64 { signed: true }),
            (PhysicalType::Int32, Some(Int8 | Int16 | Int32)) => Some(Kind::Int32 { signed: true }),
            (PhysicalType::Int32, Some(UInt8 | UInt16 | UInt32)) => {
                Some(Kind::Int32 { signed: false })
            }
            (PhysicalType::Int64, Some(Int64)) => Some(Kind::Int64 { signed: true }),
            (PhysicalType::Int64, Some(UInt64)) => Some(Kind::Int64 { signed: false }),
            _ => None,
        }
    }

    /// Bytes a PLAIN value takes.
    fn size(self) -> usize {
        match self {
            Kind::Float | Kind::Int32 { .. } => 4,
            Kind::Double | Kind::Int64 { .. } => 8,
        }
    }

    /// `convert` onto the end of `out`, into room not zeroed first.
    fn extend(self, from: &[u8], out: &mut Vec<f32>) {
        let four = |v: &[u8]| <[u8; 4]>::try_from(v).expect("4 bytes");
        let eight = |v: &[u8]| <[u8; 8]>::try_from(v).expect("8 bytes");
        let values = from.chunks_exact(self.size());
        match self {
            Kind::Float => out.extend(values.map(|v| f32::from_le_bytes(four(v)))),
            Kind::Double => out.extend(values.map(|v| f64::from_le_bytes(eight(v)) as f32)),
            Kind::Int32 { signed: true } => {
                out.extend(values.map(|v| i32::from_le_bytes(four(v)) as f32))
            }
            Kind::Int32 { signed: false } => {
                out.extend(values.map(|v| u32::from_le_bytes(four(v)) as f32))
            }
            Kind::Int64 { signed: true } => {
                out.extend(values.map(|v| i64::from_le_bytes(eight(v)) as f32))
            }
            Kind::Int64 { signed: false } => {
                out.extend(values.map(|v| u64::from_le_bytes(eight(v)) as f32))
            }
        }
    }

    /// PLAIN values (`size` bytes each) as float32, rounded to the nearest
    /// as polars casts them.
    fn convert(self, from: &[u8], out: &mut [f32]) {
        let four = |v: &[u8]| <[u8; 4]>::try_from(v).expect("4 bytes");
        let eight = |v: &[u8]| <[u8; 8]>::try_from(v).expect("8 bytes");
        let values = out.iter_mut().zip(from.chunks_exact(self.size()));
        match self {
            Kind::Float => values.for_each(|(o, v)| *o = f32::from_le_bytes(four(v))),
            Kind::Double => values.for_each(|(o, v)| *o = f64::from_le_bytes(eight(v)) as f32),
            Kind::Int32 { signed: true } => {
                values.for_each(|(o, v)| *o = i32::from_le_bytes(four(v)) as f32)
            }
            Kind::Int32 { signed: false } => {
                values.for_each(|(o, v)| *o = u32::from_le_bytes(four(v)) as f32)
            }
            Kind::Int64 { signed: true } => {
                values.for_each(|(o, v)| *o = i64::from_le_bytes(eight(v)) as f32)
            }
            Kind::Int64 { signed: false } => {
                values.for_each(|(o, v)| *o = u64::from_le_bytes(eight(v)) as f32)
            }
        }
    }
}

/// Whether this reader decodes a page of a row group of `rows` rows (of a
/// column with definition levels when `optional`).
fn decodable_page(page: &CompressedPage, rows: usize, optional: bool) -> bool {
    match page {
        CompressedPage::Dict(_) => true,
        CompressedPage::Data(data) => {
            // Sizes beyond what the row group's rows can hold (a damaged
            // header) are left to polars, not allocated here: at most 8
            // bytes a value and its level, with room for run headers.
            let count = data.num_values();
            if count > rows || data.uncompressed_size() > count * 10 + 4096 {
                return false;
            }
            let values = matches!(
                data.header().encoding(),
                FormatEncoding::PLAIN
                    | FormatEncoding::PLAIN_DICTIONARY
                    | FormatEncoding::RLE_DICTIONARY
            );
            // A required column's pages have no levels, whatever their
            // header says they would be encoded with.
            let levels = match data.header() {
                DataPageHeader::V1(h) => {
                    !optional || h.definition_level_encoding == FormatEncoding::RLE
                }
                DataPageHeader::V2(_) => true,
            };
            values && levels
        }
    }
}

/// The reader's reused buffers, lent to a column for a block.
struct Buffers<'b> {
    levels: &'b mut Vec<u32>,
    present: &'b mut Vec<f32>,
}

/// One column chunk's pages and where its reading stands.
struct ColumnPages {
    name: String,
    kind: Kind,
    optional: bool,
    /// Whether its pages are decompressed into a buffer of their own
    /// (else they are read where they lie).
    compressed: bool,
    pages: VecDeque<CompressedPage>,
    /// The dictionary, as float32 (scaled).
    dictionary: Vec<f32>,
    /// Offset and scale of every value read (`FeatureScaling`).
    scaling: Option<(f32, f32)>,
    page: Option<PageCursor>,
    /// Decompression buffer, reused from page to page.
    buffer: PageBuffer,
    context: DecompressionContext,
    /// The column's descriptor, for a page read where it lies.
    descriptor: Descriptor,
}

/// A decompressed data page and the next of its values.
struct PageCursor {
    page: DataPage,
    levels: Option<Hybrid>,
    values: Values,
    /// Rows of the page not read yet.
    left: usize,
    /// Whether the page's bytes are a decompression buffer (given back
    /// for the next page), not the file's bytes where they lie.
    decompressed: bool,
}

enum Values {
    Dictionary(Hybrid),
    /// Byte offset of the next value and the end of the values.
    Plain {
        next: usize,
        end: usize,
    },
}

impl ColumnPages {
    /// `mapped`: the chunk's bytes where they lie in the file's map, when
    /// it is mapped (its dictionary page is then read there when it can
    /// be, see `mapped_dictionary`).
    fn new(
        name: &str,
        chunk: &ColumnChunkMetadata,
        mut pages: VecDeque<CompressedPage>,
        mapped: Option<&[u8]>,
        scaling: Option<(f32, f32)>,
    ) -> std::result::Result<ColumnPages, String> {
        let kind = Kind::of(chunk).ok_or("a column of a kind this reader does not decode")?;
        let mut column = ColumnPages {
            name: name.to_string(),
            kind,
            optional: chunk.descriptor().descriptor.max_def_level == 1,
            compressed: chunk.compression() != Compression::Uncompressed,
            pages: VecDeque::new(),
            dictionary: Vec::new(),
            scaling,
            page: None,
            buffer: PageBuffer::default(),
            context: DecompressionContext::Unset,
            descriptor: chunk.descriptor().descriptor.clone(),
        };
        if matches!(pages.front(), Some(CompressedPage::Dict(_))) {
            let page = pages.pop_front().expect("a first page");
            let compression = chunk.compression();
            let in_place = mapped.and_then(|bytes| mapped_dictionary(bytes, compression, kind));
            column.dictionary = match in_place {
                Some(values) => values?,
                None => {
                    let Page::Dict(dict) = decompress(page, &mut Vec::new(), &mut column.context)
                        .map_err(|e| e.to_string())?
                    else {
                        return Err("its dictionary page decoded as a data page".into());
                    };
                    plain_values(&dict.buffer, 0, dict.buffer.len(), dict.num_values, kind)
                        .ok_or_else(|| {
                            format!(
                                "its dictionary page holds fewer than {} values",
                                dict.num_values
                            )
                        })?
                }
            };
            if let Some(scaling) = scaling {
                scale(scaling, &mut column.dictionary);
            }
        }
        column.pages = pages;
        Ok(column)
    }

    /// Fills `out` with the column's next rows; returns how many were null.
    fn read(&mut self, out: &mut [f32], buffers: Buffers) -> std::result::Result<usize, String> {
        let mut nulls = 0;
        let mut done = 0;
        while done < out.len() {
            let cursor = match &mut self.page {
                Some(cursor) if cursor.left > 0 => cursor,
                _ => {
                    self.next_page()?;
                    continue;
                }
            };
            let n = (out.len() - done).min(cursor.left);
            let part = &mut out[done..done + n];
            let data = cursor.page.buffer();
            // Present all through the block when there are no levels or
            // they are a run of "present" covering it (the usual case: a
            // column without nulls but declared nullable).
            let all_present = match &mut cursor.levels {
                None => true,
                Some(levels) => levels.take_repeat(data, 1, n)?,
            };
            if all_present {
                read_values(&mut cursor.values, data, &self.dictionary, self.kind, part)?;
                if let (Some(scaling), Values::Plain { .. }) = (self.scaling, &cursor.values) {
                    scale(scaling, part);
                }
            } else {
                let levels = cursor.levels.as_mut().expect("a column with levels");
                buffers.levels.resize(n, 0);
                levels.read(data, buffers.levels)?;
                // Counted and checked in one pass without a branch a level
                // (a block's levels, at most 4096, sum in 32 bits).
                let (present, any) = buffers.levels.iter().fold((0u32, 0u32), |(sum, any), &l| {
                    (sum.wrapping_add(l), any | l)
                });
                if any > 1 {
                    return Err("a definition level is out of range".into());
                }
                let present = present as usize;
                buffers.present.resize(present, 0.0);
                read_values(
                    &mut cursor.values,
                    data,
                    &self.dictionary,
                    self.kind,
                    buffers.present,
                )?;
                if let (Some(scaling), Values::Plain { .. }) = (self.scaling, &cursor.values) {
                    scale(scaling, &mut buffers.present[..]);
                }
                spread_present(&buffers.levels[..], &buffers.present[..present], part);
                nulls += n - present;
            }
            cursor.left -= n;
            done += n;
        }
        Ok(nulls)
    }

    /// Passes over the column's next `n` rows: whole pages before them
    /// are dropped without being decompressed, and within a page the
    /// levels and indices are walked without decoding the values.
    fn skip(&mut self, mut n: usize, levels: &mut Vec<u32>) -> std::result::Result<(), String> {
        while n > 0 {
            let cursor = match &mut self.page {
                Some(cursor) if cursor.left > 0 => cursor,
                _ => {
                    match self.pages.front() {
                        Some(CompressedPage::Data(page)) if page.num_values() <= n => {
                            n -= page.num_values();
                            self.pages.pop_front();
                        }
                        _ => self.next_page()?,
                    }
                    continue;
                }
            };
            let k = n.min(cursor.left);
            let data = cursor.page.buffer();
            let present = match &mut cursor.levels {
                None => k,
                Some(stream) => {
                    if stream.take_repeat(data, 1, k)? {
                        k
                    } else {
                        levels.resize(k, 0);
                        stream.read(data, levels)?;
                        if levels.iter().any(|&l| l > 1) {
                            return Err("a definition level is out of range".into());
                        }
                        levels.iter().filter(|&&l| l == 1).count()
                    }
                }
            };
            match &mut cursor.values {
                Values::Dictionary(indices) => indices.walk(data, present, |_, _| Ok(()))?,
                Values::Plain { next, end } => {
                    let bytes = present * self.kind.size();
                    if *next + bytes > *end {
                        return Err("a page holds fewer values than its rows".into());
                    }
                    *next += bytes;
                }
            }
            cursor.left -= k;
            n -= k;
        }
        Ok(())
    }

    /// Its decompression buffer, for another column's pages.
    fn into_buffer(mut self) -> PageBuffer {
        if let Some(mut cursor) = self.page.take().filter(|cursor| cursor.decompressed) {
            self.buffer
                .give_back(std::mem::take(cursor.page.buffer_mut()));
        }
        self.buffer
    }

    /// Decompresses the next data page and finds its levels and values.
    fn next_page(&mut self) -> std::result::Result<(), String> {
        if let Some(mut cursor) = self.page.take().filter(|cursor| cursor.decompressed) {
            // Its decompressed buffer serves the next page.
            self.buffer
                .give_back(std::mem::take(cursor.page.buffer_mut()));
        }
        let Some(mut page) = self.pages.pop_front() else {
            return Err("its pages end before the row group's rows".into());
        };
        let in_place = one_literal(&mut page, &self.descriptor);
        let decompressed = self.compressed && in_place.is_none();
        let page = match in_place {
            Some(page) => page,
            None => {
                let mut bytes = self.buffer.lend();
                let page =
                    decompress(page, &mut bytes, &mut self.context).map_err(|e| e.to_string());
                if bytes.capacity() > 0 {
                    // Not taken into the page (an uncompressed page is read
                    // where it lies).
                    self.buffer.give_back(bytes);
                }
                let Page::Data(page) = page? else {
                    return Err("a second dictionary page".into());
                };
                page
            }
        };
        let split = split_buffer(&page).map_err(|e| e.to_string())?;
        let data = page.buffer();
        let bounds = |part: &[u8]| part_bounds(data, part);
        let rows = page.num_values();
        let levels = if self.optional {
            let (start, end) = bounds(split.def)?;
            Some(Hybrid::new(start, end, 1))
        } else {
            None
        };
        let (start, end) = bounds(split.values)?;
        let values = match page.header().encoding() {
            FormatEncoding::PLAIN => Values::Plain { next: start, end },
            _ => {
                let Some(&bits) = data.get(start) else {
                    return Err("a dictionary-encoded page without values".into());
                };
                if bits > 32 {
                    return Err(format!("indices of {bits} bits"));
                }
                Values::Dictionary(Hybrid::new(start + 1, end, u32::from(bits)))
            }
        };
        self.page = Some(PageCursor {
            page,
            levels,
            values,
            left: rows,
            decompressed,
        });
        Ok(())
    }
}

/// A snappy-compressed data page (format v1) whose stream is a single
/// literal, the page's bytes as they are: its bytes, where they lie, with
/// no copy. Snappy writes bytes it cannot compress as literals, a literal
/// a 64 KB block, so the pages of dictionary indices drawn from a few
/// hundred values (20 KB a page, pyarrow's 20,000 rows) are each one
/// literal: copying them out was most of their "decompression" and about
/// a twentieth of a replay. Any other page: None, left as it was, to be
/// decompressed as usual.
fn one_literal(page: &mut CompressedPage, descriptor: &Descriptor) -> Option<DataPage> {
    let CompressedPage::Data(data) = page else {
        return None;
    };
    if data.compression() != Compression::Snappy || !matches!(data.header(), DataPageHeader::V1(_))
    {
        return None;
    }
    let size = data.uncompressed_size();
    let start = match literal_pieces(data.slice_mut(), size)?.as_slice() {
        [literal] => literal.start,
        _ => return None,
    };
    let buffer = match std::mem::replace(data.slice_mut(), CowBuffer::Owned(Vec::new())) {
        CowBuffer::Borrowed(buffer) => buffer,
        CowBuffer::Owned(bytes) => Buffer::from(bytes),
    };
    Some(DataPage::new(
        data.header().clone(),
        CowBuffer::Borrowed(buffer.sliced(start..)),
        descriptor.clone(),
        data.num_values(),
    ))
}

/// Lays the values of the present rows (`levels[row]` 1, checked to be 0
/// or 1, as many as the ones) out among the nulls (0: NaN).
fn spread_present(levels: &[u32], values: &[f32], out: &mut [f32]) {
    assert_eq!(levels.len(), out.len());
    let (mut done, mut taken) = (0, 0);
    // Sixteen rows at a time with AVX-512: a mask of the present ones and
    // one expanding load of their values (real logs have a null here and
    // there: run by run, a 1M-row replay of a log with a hundredth of its
    // values null spent a tenth of its time here).
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present (checked above).
        (done, taken) = unsafe { x86::spread_present_by_sixteen(levels, values, out) };
    }
    spread_present_by_runs(&levels[done..], &values[taken..], &mut out[done..]);
}

/// `spread_present` run by run of present rows (one copy) and of nulls
/// (one fill).
fn spread_present_by_runs(levels: &[u32], values: &[f32], out: &mut [f32]) {
    let (mut row, mut next) = (0, 0);
    while row < out.len() {
        let run = levels[row..].iter().take_while(|&&l| l == 1).count();
        out[row..row + run].copy_from_slice(&values[next..next + run]);
        (row, next) = (row + run, next + run);
        let run = levels[row..].iter().take_while(|&&l| l == 0).count();
        out[row..row + run].fill(f32::NAN);
        row += run;
    }
}

/// `(v - offset) * scale` for each value (`FeatureScaling`).
fn scale((offset, scale): (f32, f32), values: &mut [f32]) {
    for v in values {
        *v = FeatureScaling::scale_one(*v, offset, scale);
    }
}

/// A decompression buffer that knows how much of it has been written.
/// polars' `decompress` sets a buffer's length to the page's, zeroing what
/// lies past the buffer's length: a page after a shorter one (the last of a
/// column chunk, say) would have its bytes zeroed before it is decompressed
/// over them (a replay of a log with PLAIN pages of a megabyte spent 2%
/// zeroing them). Lent at its longest written length, the buffer is zeroed
/// only where it grows.
#[derive(Default)]
struct PageBuffer {
    bytes: Vec<u8>,
    /// Bytes of `bytes` written at least once (by a page or by zeroing).
    written: usize,
    /// The allocation lent, and how much of it had been written: a buffer
    /// not given back (its page dropped on an error) leaves an empty one
    /// with nothing written.
    lent: (usize, usize),
}

impl PageBuffer {
    fn lend(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.bytes);
        let written = std::mem::take(&mut self.written);
        debug_assert!(written <= bytes.capacity());
        // SAFETY: `written` is at most the allocation's capacity (it was a
        // length of this allocation), and its first `written` bytes have all
        // been written: they are initialized.
        unsafe { bytes.set_len(written) };
        self.lent = (bytes.as_ptr() as usize, written);
        bytes
    }

    /// Takes the buffer back, a page's bytes in it.
    fn give_back(&mut self, bytes: Vec<u8>) {
        let (allocation, written) = self.lent;
        self.written = if bytes.as_ptr() as usize == allocation {
            written.max(bytes.len())
        } else {
            // Another allocation (grown elsewhere): only its length is
            // known to be written.
            bytes.len()
        };
        self.bytes = bytes;
    }
}

/// Reads the next `out.len()` values of a page.
fn read_values(
    values: &mut Values,
    data: &[u8],
    dictionary: &[f32],
    kind: Kind,
    out: &mut [f32],
) -> std::result::Result<(), String> {
    match values {
        Values::Dictionary(hybrid) => hybrid.read_gathered(data, dictionary, out)?,
        Values::Plain { next, end } => {
            let bytes = out.len() * kind.size();
            if *next + bytes > *end {
                return Err("a page holds fewer values than its rows".into());
            }
            kind.convert(&data[*next..*next + bytes], out);
            *next += bytes;
        }
    }
    Ok(())
}

/// `count` PLAIN values at `data[start..end]`, as float32.
fn plain_values(
    data: &[u8],
    start: usize,
    end: usize,
    count: usize,
    kind: Kind,
) -> Option<Vec<f32>> {
    // The count comes from the page's header: checked against its bytes
    // before anything is allocated for it.
    if count.checked_mul(kind.size())? > end.checked_sub(start)? {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    kind.extend(&data[start..start + count * kind.size()], &mut out);
    Some(out)
}

/// The values of the dictionary page that starts `chunk` (a column
/// chunk's bytes where they lie in the file's map), read there, when the
/// page is PLAIN and stored as it is or snappy-compressed into literals
/// only: how snappy stores bytes it cannot compress, such as the distinct
/// float values of real traffic (a dictionary of a megabyte a column and
/// row group). Copying such a page out of its literals and zeroing the
/// copy's buffer first was about a seventh of a replay of such a log.
/// None for any other page (decompressed as usual); an error for a page
/// whose values fall short of its header's count.
fn mapped_dictionary(
    chunk: &[u8],
    compression: Compression,
    kind: Kind,
) -> Option<std::result::Result<Vec<f32>, String>> {
    let mut cursor = Cursor::new(chunk);
    let mut protocol = TCompactInputProtocol::new(&mut cursor, chunk.len());
    let header = PageHeader::read_from_in_protocol(&mut protocol).ok()?;
    let start = cursor.position() as usize;
    let dictionary = header.dictionary_page_header.as_ref()?;
    if header.type_ != PageType::DICTIONARY_PAGE
        || !matches!(
            dictionary.encoding,
            FormatEncoding::PLAIN | FormatEncoding::PLAIN_DICTIONARY
        )
    {
        return None;
    }
    let compressed = usize::try_from(header.compressed_page_size).ok()?;
    let size = usize::try_from(header.uncompressed_page_size).ok()?;
    let count = usize::try_from(dictionary.num_values).ok()?;
    let page = chunk.get(start..start.checked_add(compressed)?)?;
    let pieces = match compression {
        Compression::Uncompressed if compressed == size => std::iter::once(0..size).collect(),
        Compression::Snappy => literal_pieces(page, size)?,
        _ => return None,
    };
    let short = || format!("its dictionary page holds fewer than {count} values");
    let Some(bytes) = count.checked_mul(kind.size()).filter(|&b| b <= size) else {
        return Some(Err(short()));
    };
    let mut values = Vec::with_capacity(count);
    // A value cut between two literals is put together from both.
    let mut cut = Vec::new();
    let mut left = bytes;
    for piece in pieces {
        let mut piece = &page[piece];
        piece = &piece[..piece.len().min(left)];
        left -= piece.len();
        if !cut.is_empty() {
            let take = (kind.size() - cut.len()).min(piece.len());
            cut.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if cut.len() == kind.size() {
                kind.extend(&cut, &mut values);
                cut.clear();
            }
        }
        let whole = piece.len() / kind.size() * kind.size();
        kind.extend(&piece[..whole], &mut values);
        cut.extend_from_slice(&piece[whole..]);
        if left == 0 {
            break;
        }
    }
    Some(match values.len() == count {
        true => Ok(values),
        false => Err(short()),
    })
}

/// Where the literals of a snappy stream lie in it, when the stream is
/// literals only and they hold `size` bytes in all, as its length says;
/// None for any other stream.
fn literal_pieces(stream: &[u8], size: usize) -> Option<Vec<std::ops::Range<usize>>> {
    let (length, mut at) = uleb128(stream)?;
    if length != size as u64 {
        return None;
    }
    let mut pieces = Vec::with_capacity(size / 65536 + 1);
    let mut total = 0usize;
    while at < stream.len() {
        let tag = stream[at];
        // A literal's tag: low bits 00, then its length less one, in the
        // tag's upper six bits below 60, else in the 1-4 bytes after it.
        if tag & 3 != 0 {
            return None;
        }
        let (literal, start) = match (tag >> 2) as usize {
            short @ 0..60 => (short + 1, at + 1),
            long => {
                let bytes = long - 59;
                let field = stream.get(at + 1..at + 1 + bytes)?;
                let less_one = field.iter().rev().fold(0usize, |v, &b| v << 8 | b as usize);
                (less_one.checked_add(1)?, at + 1 + bytes)
            }
        };
        let end = start.checked_add(literal)?;
        if end > stream.len() {
            return None;
        }
        pieces.push(start..end);
        total += literal;
        at = end;
    }
    (total == size).then_some(pieces)
}

/// A stream of the RLE / bit-packed hybrid encoding (definition levels,
/// dictionary indices) at `data[next..end]` of a page.
#[derive(Debug)]
pub(super) struct Hybrid {
    next: usize,
    end: usize,
    bits: u32,
    run: Run,
}

/// A stretch of one run, as `Hybrid::walk` hands it over.
enum Stretch {
    /// The run's value.
    Repeat(u32),
    /// Bit-packed values, the first at bit `bit` of the page and `taken`
    /// values into its run.
    Packed { bit: usize, taken: usize },
}

#[derive(Debug)]
enum Run {
    /// A value repeated `left` more times.
    Repeat { value: u32, left: usize },
    /// `left` more bit-packed values, the next at bit `bit` of the page
    /// and `taken` from the run's first (runs are groups of eight values,
    /// each group starting on a byte).
    Packed {
        bit: usize,
        left: usize,
        taken: usize,
    },
}

impl Hybrid {
    pub(super) fn new(next: usize, end: usize, bits: u32) -> Hybrid {
        Hybrid {
            next,
            end,
            bits,
            run: Run::Repeat { value: 0, left: 0 },
        }
    }

    /// Takes the stream's next `n` values run by run, handing each stretch
    /// of a run to `take` with its positions among the `n`: one place
    /// moves through the runs for every reading of them.
    fn walk(
        &mut self,
        data: &[u8],
        n: usize,
        mut take: impl FnMut(Stretch, std::ops::Range<usize>) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        let mut done = 0;
        while done < n {
            match &mut self.run {
                Run::Repeat { value, left } if *left > 0 => {
                    let k = (*left).min(n - done);
                    take(Stretch::Repeat(*value), done..done + k)?;
                    *left -= k;
                    done += k;
                }
                Run::Packed { bit, left, taken } if *left > 0 => {
                    let k = (*left).min(n - done);
                    let stretch = Stretch::Packed {
                        bit: *bit,
                        taken: *taken,
                    };
                    take(stretch, done..done + k)?;
                    *bit += k * self.bits as usize;
                    *left -= k;
                    *taken += k;
                    done += k;
                }
                _ => self.next_run(data)?,
            }
        }
        Ok(())
    }

    /// Fills `out` with the stream's next values.
    pub(super) fn read(&mut self, data: &[u8], out: &mut [u32]) -> std::result::Result<(), String> {
        let bits = self.bits;
        self.walk(data, out.len(), |stretch, at| {
            match stretch {
                Stretch::Repeat(value) => out[at].fill(value),
                Stretch::Packed { bit, .. } => unpack(data, bit, bits, &mut out[at]),
            }
            Ok(())
        })
    }

    /// Fills `out` with the dictionary's values at the stream's next
    /// indices: whole groups of eight packed indices are unpacked and
    /// gathered at once (`gather_groups`), without an index buffer.
    fn read_gathered(
        &mut self,
        data: &[u8],
        dictionary: &[f32],
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        let past = |i: u32| {
            format!(
                "index {i} past its dictionary of {} values",
                dictionary.len()
            )
        };
        let width = self.bits;
        let bits = width as usize;
        self.walk(data, out.len(), |stretch, at| {
            let out = &mut out[at];
            match stretch {
                Stretch::Repeat(value) => {
                    let v = *dictionary.get(value as usize).ok_or_else(|| past(value))?;
                    out.fill(v);
                }
                Stretch::Packed { bit, taken } => {
                    let n = out.len();
                    // Up to the next group's first value one by one, then
                    // whole groups (their bytes all inside the page), then
                    // the rest one by one.
                    let head = ((8 - taken % 8) % 8).min(n);
                    let groups = if bits == 0 {
                        0
                    } else {
                        let from = (bit + head * bits) / 8;
                        ((n - head) / 8).min(data.len().saturating_sub(from) / bits)
                    };
                    let body = head + groups * 8;
                    gather_each(data, bit, width, dictionary, &mut out[..head]).map_err(past)?;
                    let first = bit + head * bits;
                    // The groups and the page's bytes after them.
                    let packed = &data[first / 8..];
                    if groups > 0 && !gather_groups(bits, packed, dictionary, &mut out[head..body])
                    {
                        // Find the index past the dictionary to name it.
                        gather_each(data, first, width, dictionary, &mut out[head..body])
                            .map_err(past)?;
                    }
                    gather_each(data, bit + body * bits, width, dictionary, &mut out[body..])
                        .map_err(past)?;
                }
            }
            Ok(())
        })
    }

    /// Whether the next `n` values are `value` repeated in a single run,
    /// which they are then taken from (else nothing is taken).
    pub(super) fn take_repeat(
        &mut self,
        data: &[u8],
        value: u32,
        n: usize,
    ) -> std::result::Result<bool, String> {
        if matches!(
            self.run,
            Run::Repeat { left: 0, .. } | Run::Packed { left: 0, .. }
        ) {
            self.next_run(data)?;
        }
        match &mut self.run {
            Run::Repeat { value: v, left } if *v == value && *left >= n => {
                *left -= n;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn next_run(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        let (header, len) = uleb128(&data[self.next.min(self.end)..self.end])
            .ok_or("its runs end before its values")?;
        self.next += len;
        let bits = self.bits as usize;
        if header & 1 == 1 {
            // Groups of eight values, `bits` bytes each; a last group cut
            // short by the writer holds what its bytes hold.
            let groups = (header >> 1) as usize;
            let bytes = groups.saturating_mul(bits).min(self.end - self.next);
            let values = groups.saturating_mul(8);
            let left = (bytes * 8)
                .checked_div(bits)
                .map_or(values, |fit| values.min(fit));
            self.run = Run::Packed {
                bit: self.next * 8,
                left,
                taken: 0,
            };
            self.next += bytes;
        } else {
            let width = bits.div_ceil(8);
            if self.next + width > self.end {
                return Err("a run is cut short".into());
            }
            let mut value = [0u8; 4];
            value[..width].copy_from_slice(&data[self.next..self.next + width]);
            self.run = Run::Repeat {
                value: u32::from_le_bytes(value),
                left: (header >> 1) as usize,
            };
            self.next += width;
        }
        if matches!(
            self.run,
            Run::Repeat { left: 0, .. } | Run::Packed { left: 0, .. }
        ) {
            return Err("an empty run".into());
        }
        Ok(())
    }
}

/// Gathers `dictionary[i]` into `out` for the indices of `bits` bits packed
/// in `data` from bit `bit`, eight at a time; the first index past the
/// dictionary is the error.
fn gather_each(
    data: &[u8],
    bit: usize,
    bits: u32,
    dictionary: &[f32],
    out: &mut [f32],
) -> std::result::Result<(), u32> {
    let mut indices = [0u32; 8];
    for (chunk, out) in out.chunks_mut(8).enumerate() {
        let indices = &mut indices[..out.len()];
        unpack(data, bit + chunk * 8 * bits as usize, bits, indices);
        for (out, &i) in out.iter_mut().zip(indices.iter()) {
            *out = *dictionary.get(i as usize).ok_or(i)?;
        }
    }
    Ok(())
}

/// Gathers `dictionary[i]` into `out` for the indices of `bits` bits packed
/// at the start of `packed`, whole groups of eight (`bits` bytes each, one
/// group for each eight values of `out`); false when an index lies past the
/// dictionary (`out` is then partly written). `packed` may go on past the
/// groups (the rest of the page): the groups followed by 16 bytes of it are
/// gathered with AVX2, so that only a page's last groups take the scalar
/// path (a run ending the packed bytes handed in sent its last two groups
/// there, each run of 504 values). The width is a constant in each
/// instance, so that every shift and mask is.
fn gather_groups(bits: usize, packed: &[u8], dictionary: &[f32], out: &mut [f32]) -> bool {
    debug_assert!(out.len().is_multiple_of(8) && packed.len() >= out.len() / 8 * bits);
    // Indices of up to 16 bits (dictionaries of up to 65,536 values) with
    // AVX2 where the machine has it, the groups followed by 16 bytes.
    #[cfg(target_arch = "x86_64")]
    let (packed, out, simd_in_range) = {
        let groups = if bits <= 16 && std::arch::is_x86_feature_detected!("avx2") {
            (packed.len().saturating_sub(16) / bits.max(1)).min(out.len() / 8)
        } else {
            0
        };
        let in_range = groups == 0
            || {
                let (head, _) = out.split_at_mut(groups * 8);
                macro_rules! simd_widths {
                ($($w:literal)*) => {
                    match bits {
                        // SAFETY: AVX2 is present (checked above).
                        $($w => unsafe { x86::gather_groups::<$w>(&packed[..groups * bits + 16], dictionary, head) },)*
                        _ => unreachable!("indices of 1 to 16 bits"),
                    }
                };
            }
                simd_widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
            };
        (&packed[groups * bits..], &mut out[groups * 8..], in_range)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let simd_in_range = true;
    macro_rules! widths {
        ($($w:literal)*) => {
            match bits {
                $($w => gather_groups_of::<$w>(packed, dictionary, out),)*
                _ => unreachable!("indices of 1 to 32 bits"),
            }
        };
    }
    let rest_in_range = out.is_empty()
        || widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
    simd_in_range && rest_in_range
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `vpshufb` selectors that put the bytes of value `j` of a group of
    /// eight `bits`-bit values (a group of `bits` bytes, in both 128-bit
    /// halves) at the low bytes of 32-bit lane `j`; the other bytes zero.
    /// Worked out when compiled (worked out at each call, about 4% of the
    /// gathering's time).
    const fn selectors(bits: usize) -> [i8; 32] {
        let mut m = [-128i8; 32];
        let mut j = 0;
        while j < 8 {
            let (first, last) = (j * bits / 8, (j * bits + bits - 1) / 8);
            let mut byte = first;
            while byte <= last {
                m[4 * j + byte - first] = byte as i8;
                byte += 1;
            }
            j += 1;
        }
        m
    }

    /// `spread_present` sixteen rows at a time, while sixteen values are
    /// left; returns how many rows it laid out (the rest are the caller's)
    /// and how many values they took.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `levels` and `out` are as long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn spread_present_by_sixteen(
        levels: &[u32],
        values: &[f32],
        out: &mut [f32],
    ) -> (usize, usize) {
        assert_eq!(levels.len(), out.len());
        let (mut row, mut next) = (0, 0);
        // SAFETY: the loads and stores read and write rows row..row + 16,
        // inside `levels` and `out`; the expanding load reads at most
        // sixteen values from `next`, inside `values` (the loop's
        // condition).
        unsafe {
            let nan = _mm512_set1_ps(f32::NAN);
            let zero = _mm512_setzero_si512();
            while row + 16 <= out.len() && next + 16 <= values.len() {
                let present = _mm512_cmpneq_epi32_mask(
                    _mm512_loadu_si512(levels.as_ptr().add(row) as *const _),
                    zero,
                );
                let laid = _mm512_mask_expandloadu_ps(nan, present, values.as_ptr().add(next));
                _mm512_storeu_ps(out.as_mut_ptr().add(row), laid);
                next += present.count_ones() as usize;
                row += 16;
            }
        }
        (row, next)
    }

    /// What spreads a group of eight `BITS`-bit values (`BITS` bytes) over
    /// the eight 32-bit lanes of a register.
    struct Group<const BITS: usize> {
        selectors: __m256i,
        shifts: __m256i,
        mask: __m256i,
    }

    impl<const BITS: usize> Group<BITS> {
        #[inline(always)]
        unsafe fn new() -> Self {
            let selectors = const { selectors(BITS) };
            let shifts: [i32; 8] = std::array::from_fn(|j| (j * BITS % 8) as i32);
            // SAFETY: the loads read the two arrays above, 32 bytes each;
            // AVX2 is the caller's contract.
            unsafe {
                Group {
                    selectors: _mm256_loadu_si256(selectors.as_ptr() as *const __m256i),
                    shifts: _mm256_loadu_si256(shifts.as_ptr() as *const __m256i),
                    mask: _mm256_set1_epi32(((1u32 << BITS) - 1) as i32),
                }
            }
        }

        /// The eight values of the group at `group`: shuffled into lanes,
        /// shifted and masked.
        ///
        /// # Safety
        /// AVX2; `group` is followed by at least 16 readable bytes.
        #[inline(always)]
        unsafe fn indices(&self, group: *const u8) -> __m256i {
            // SAFETY: the caller's contract.
            unsafe {
                let bytes = _mm_loadu_si128(group as *const __m128i);
                let lanes = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), self.selectors);
                _mm256_and_si256(_mm256_srlv_epi32(lanes, self.shifts), self.mask)
            }
        }
    }

    /// Whole groups of eight `BITS`-bit values in `packed` (followed by at
    /// least 16 bytes) unpacked into `out` (8 a group).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn unpack_groups<const BITS: usize>(packed: &[u8], out: &mut [u32]) {
        let groups = out.len() / 8;
        assert!(BITS <= 16 && packed.len() >= groups * BITS + 16);
        // SAFETY: AVX2 is present (the caller's contract); every group read
        // is followed by 16 bytes of `packed` (asserted); the stores write
        // the group's 8 values of `out`.
        unsafe {
            let group = Group::<BITS>::new();
            for g in 0..groups {
                let values = group.indices(packed.as_ptr().add(g * BITS));
                _mm256_storeu_si256(out.as_mut_ptr().add(g * 8) as *mut __m256i, values);
            }
        }
    }

    /// Whole groups of eight `BITS`-bit indices in `packed` (followed by at
    /// least 16 bytes) gathered from `dictionary` into `out` (8 a group):
    /// each group is shuffled into eight lanes, shifted and masked, then
    /// gathered in one instruction. False when an index lies past the
    /// dictionary (the gather is clamped to its last value meanwhile).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn gather_groups<const BITS: usize>(
        packed: &[u8],
        dictionary: &[f32],
        out: &mut [f32],
    ) -> bool {
        let Some(last) = dictionary.len().checked_sub(1) else {
            return false;
        };
        let groups = out.len() / 8;
        assert!(BITS <= 16 && packed.len() >= groups * BITS + 16 && last <= i32::MAX as usize);
        // SAFETY: AVX2 is present (the caller's contract); every group read
        // is followed by 16 bytes of `packed` (asserted); the gathers read
        // clamped indices, below the dictionary's length; the stores write
        // the group's 8 values of `out`.
        unsafe {
            let group = Group::<BITS>::new();
            let last_index = _mm256_set1_epi32(last as i32);
            let mut largest = _mm256_setzero_si256();
            for g in 0..groups {
                let indices = group.indices(packed.as_ptr().add(g * BITS));
                largest = _mm256_max_epu32(largest, indices);
                let clamped = _mm256_min_epu32(indices, last_index);
                let values = _mm256_i32gather_ps::<4>(dictionary.as_ptr(), clamped);
                _mm256_storeu_ps(out.as_mut_ptr().add(g * 8), values);
            }
            let mut lanes = [0u32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, largest);
            lanes.iter().all(|&i| i as usize <= last)
        }
    }
}

fn gather_groups_of<const BITS: usize>(packed: &[u8], dictionary: &[f32], out: &mut [f32]) -> bool {
    let Some(last) = dictionary.len().checked_sub(1) else {
        return false;
    };
    let mask = (1u64 << BITS) - 1;
    let mut in_range = true;
    let mut gather = |bytes: &[u8], out: &mut [f32]| {
        for (j, out) in out.iter_mut().enumerate() {
            let at = j * BITS;
            let word = u64::from_le_bytes(bytes[at / 8..at / 8 + 8].try_into().expect("8 bytes"));
            let i = ((word >> (at % 8)) & mask) as usize;
            in_range &= i <= last;
            // SAFETY: `i.min(last)` is below the dictionary's length.
            *out = unsafe { *dictionary.get_unchecked(i.min(last)) };
        }
    };
    let groups = packed.len() / BITS;
    // Groups followed by at least eight bytes are read where they lie (a
    // value's word may reach into the next group); the last few from a
    // padded copy (a copy for every group cost a stalled load a value:
    // the words straddle the copy's stores).
    let direct = (packed.len().saturating_sub(8) / BITS).min(groups);
    for (g, out) in out.chunks_exact_mut(8).enumerate().take(direct) {
        gather(&packed[g * BITS..g * BITS + BITS + 8], out);
    }
    for (g, out) in out
        .chunks_exact_mut(8)
        .enumerate()
        .take(groups)
        .skip(direct)
    {
        let mut bytes = [0u8; 40];
        bytes[..BITS].copy_from_slice(&packed[g * BITS..g * BITS + BITS]);
        gather(&bytes, out);
    }
    in_range
}

/// Unpacks `out.len()` values of `bits` bits from `data`, the first at bit
/// `bit` (least significant bits first).
fn unpack(data: &[u8], mut bit: usize, bits: u32, mut out: &mut [u32]) {
    if bits == 0 {
        out.fill(0);
        return;
    }
    // Whole groups of eight from a byte's start, followed by 16 bytes of
    // `data`, eight at a time with AVX2 (a label's or a slice's codes).
    #[cfg(target_arch = "x86_64")]
    if bit.is_multiple_of(8) && bits <= 16 && std::arch::is_x86_feature_detected!("avx2") {
        let packed = data.get(bit / 8..).unwrap_or_default();
        let groups = (packed.len().saturating_sub(16) / bits as usize).min(out.len() / 8);
        let (head, rest) = out.split_at_mut(groups * 8);
        macro_rules! simd_widths {
            ($($w:literal)*) => {
                match bits {
                    // SAFETY: AVX2 is present (checked above).
                    $($w => unsafe { x86::unpack_groups::<$w>(&packed[..groups * $w + 16], head) },)*
                    _ => unreachable!("values of 1 to 16 bits"),
                }
            };
        }
        if groups > 0 {
            simd_widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
        }
        bit += groups * 8 * bits as usize;
        out = rest;
    }
    let mask = (1u64 << bits) - 1;
    let bits = bits as usize;
    // Values whose eight bytes from their first lie inside `data` are read
    // as one word; the last few from a zero-padded copy.
    let whole = (data.len().saturating_sub(8) * 8).saturating_sub(bit) / bits;
    let whole = whole.min(out.len());
    let mut at = bit;
    for out in &mut out[..whole] {
        // SAFETY: for each of the first `whole` values, `at / 8 + 8 <=
        // data.len()` (see `whole`).
        let word = unsafe { data.as_ptr().add(at / 8).cast::<u64>().read_unaligned() };
        *out = ((u64::from_le(word) >> (at % 8)) & mask) as u32;
        at += bits;
    }
    for (j, out) in out.iter_mut().enumerate().skip(whole) {
        let at = bit + j * bits;
        let mut word = [0u8; 8];
        let tail = &data[(at / 8).min(data.len())..data.len().min(at / 8 + 8)];
        word[..tail.len()].copy_from_slice(tail);
        *out = ((u64::from_le_bytes(word) >> (at % 8)) & mask) as u32;
    }
}

/// An unsigned LEB128 integer at the start of `data`, and its length.
fn uleb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::Frame;

    /// The fixtures' numeric columns (see make_float_pages.py).
    const NUMBERS: [&str; 14] = [
        "dict_nulls",
        "dict_f32",
        "wide_dict",
        "fallback",
        "plain_nulls",
        "required",
        "all_null",
        "count",
        "big",
        "small",
        "tiny",
        "short",
        "unsigned",
        "huge",
    ];

    /// Reads `names` of a fixture in reads of uneven sizes (crossing
    /// pages, blocks and row groups) and checks every value, bit for bit,
    /// and the null count against polars' reading laid out by
    /// `Frame::f32_rows` (and scaled by `scaling` when given).
    fn reads_as_polars_does(file: &str, names: &[&str], scaling: Option<&FeatureScaling>) {
        let path = Path::new("tests/fixtures/float_pages").join(file);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let (mut expected, expected_nulls) = Frame::read(&path, Some(&names))
            .and_then(|f| f.f32_rows(&names))
            .expect("polars reads the fixture");
        let table = Table::open(&path).expect("opened");
        let mut reader = FloatRows::open(&table, &names)
            .expect("metadata read")
            .expect("float columns");
        if let Some(scaling) = scaling {
            scaling.scale_rows(&mut expected);
            reader = reader.scaled(scaling.clone());
        }
        let (mut rows, mut nulls) = (Vec::new(), 0);
        let total = expected.len() / names.len();
        let mut done = 0;
        for n in [1, 7, 300, 4096, 999].iter().cycle() {
            let n = (*n).min(total - done);
            nulls += reader.read(n, &mut rows).expect("read");
            done += n;
            if done == total {
                break;
            }
        }
        assert!([5000, 20_000].contains(&total), "{file}: {total} rows");
        assert_eq!(nulls, expected_nulls, "{file}");
        assert!(nulls > 0, "{file}: the fixture has nulls");
        assert_eq!(rows.len(), expected.len());
        for (i, (a, b)) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{file}: row {}, column {}",
                i / names.len(),
                names[i % names.len()]
            );
        }
        // Past the last row: a clear error, not a panic.
        let err = reader.read(1, &mut rows).expect_err("no more rows");
        assert!(err.to_string().contains("fewer rows"), "{err}");

        // Column by column, in the same pieces: every value where
        // `column_stride` puts it, the same bits.
        let mut reader = FloatRows::open(&table, &names)
            .expect("metadata read")
            .expect("float columns");
        if let Some(scaling) = scaling {
            reader = reader.scaled(scaling.clone());
        }
        let (width, mut nulls, mut done) = (names.len(), 0, 0);
        for n in [1, 7, 300, 4096, 999].iter().cycle() {
            let n = (*n).min(total - done);
            let mut columns = vec![7.0f32];
            nulls += reader.read_columns(n, &mut columns).expect("read");
            let stride = column_stride(n);
            assert_eq!(columns.len(), 1 + stride * width, "{file}");
            for i in 0..n {
                for (j, name) in names.iter().enumerate() {
                    let (a, b) = (
                        columns[1 + j * stride + i],
                        expected[(done + i) * width + j],
                    );
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{file}: row {}, column {name}",
                        done + i
                    );
                }
            }
            done += n;
            if done == total {
                break;
            }
        }
        assert_eq!(nulls, expected_nulls, "{file}");
        let err = reader
            .read_columns(1, &mut Vec::new())
            .expect_err("no more rows");
        assert!(err.to_string().contains("fewer rows"), "{err}");
    }

    #[test]
    fn dictionary_and_plain_pages_read_as_polars_reads_them() {
        for file in ["v1_snappy.parquet", "v2_zstd.parquet", "v1_none.parquet"] {
            reads_as_polars_does(file, &NUMBERS, None);
        }
    }

    /// Dictionaries of distinct values (real traffic's floats) larger than
    /// a snappy block: pages of several literals, read where they lie.
    #[test]
    fn dictionaries_of_several_literals_read_as_polars_reads_them() {
        let names = ["distinct", "distinct_f32", "distinct_int"];
        let mut file =
            File::open("tests/fixtures/float_pages/v1_snappy_wide.parquet").expect("the fixture");
        let metadata = read_metadata(&mut file).expect("its footer");
        let span = FileSpan::map(&file, 0..file.metadata().expect("its length").len());
        for name in names {
            let chunk = column_chunk(&metadata, 0, name).expect("a column");
            let bytes = span
                .as_ref()
                .and_then(|span| span.bytes(&chunk.byte_range()))
                .expect("mapped");
            let mut cursor = Cursor::new(&bytes[..]);
            let mut protocol = TCompactInputProtocol::new(&mut cursor, bytes.len());
            let header = PageHeader::read_from_in_protocol(&mut protocol).expect("a header");
            let start = cursor.position() as usize;
            let stream = &bytes[start..start + header.compressed_page_size as usize];
            let pieces = literal_pieces(stream, header.uncompressed_page_size as usize);
            let kind = Kind::of(chunk).expect("a numeric column");
            // float32 values draw on their 4 bytes alike: no repeat for
            // snappy to copy; float64 and int64 ones repeat their upper
            // bytes, and some pages hold copies (decompressed as before).
            match (name, pieces) {
                ("distinct_f32", Some(pieces)) => {
                    assert!(pieces.len() > 1, "{} literal(s)", pieces.len());
                    let values = mapped_dictionary(&bytes, Compression::Snappy, kind)
                        .expect("read where it lies");
                    let count = header.dictionary_page_header.map(|h| h.num_values as usize);
                    assert_eq!(values.map(|v| v.len()).ok(), count);
                    assert!(count > Some(19_000));
                }
                ("distinct_f32", None) => panic!("distinct_f32's dictionary is literals only"),
                (_, pieces) => {
                    assert_eq!(
                        pieces.is_some(),
                        mapped_dictionary(&bytes, Compression::Snappy, kind).is_some()
                    )
                }
            }
        }
        reads_as_polars_does("v1_snappy_wide.parquet", &names, None);
        let scaling = FeatureScaling {
            offset: vec![1.5, -0.0, 1e9],
            scale: vec![0.5, 3.0, 1e-9],
        };
        reads_as_polars_does("v1_snappy_wide.parquet", &names, Some(&scaling));
    }

    /// A dictionary page whose literals cut its values anywhere (snappy
    /// cuts at 64 KB, a multiple of every value's size; other writers
    /// need not) reads the values it holds; one with a copy in its stream,
    /// or fewer values than its header counts, does not.
    #[test]
    fn a_dictionary_page_is_read_across_its_literals() {
        use polars_parquet_format::thrift::protocol::TCompactOutputProtocol;
        use polars_parquet_format::{DictionaryPageHeader, Encoding};
        let values: Vec<f64> = (0..40).map(|i| i as f64 * 1.25 - 7.0).collect();
        let plain: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let page = |stream: &[u8], count: usize| {
            let header = PageHeader {
                type_: PageType::DICTIONARY_PAGE,
                uncompressed_page_size: plain.len() as i32,
                compressed_page_size: stream.len() as i32,
                crc: None,
                data_page_header: None,
                index_page_header: None,
                dictionary_page_header: Some(DictionaryPageHeader {
                    num_values: count as i32,
                    encoding: Encoding::PLAIN,
                    is_sorted: None,
                }),
                data_page_header_v2: None,
            };
            let mut bytes = Vec::new();
            header
                .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut bytes))
                .expect("written");
            bytes.extend_from_slice(stream);
            bytes
        };
        // Literals of 5, 11, 1, 64 (a length in the byte after the tag)
        // and the rest of the bytes.
        let literals = |cuts: &[usize]| {
            let mut stream = Vec::new();
            let mut n = plain.len();
            while n >= 0x80 {
                stream.push((n as u8) | 0x80);
                n >>= 7;
            }
            stream.push(n as u8);
            let mut at = 0;
            for &len in cuts
                .iter()
                .chain(std::iter::once(&(plain.len() - cuts.iter().sum::<usize>())))
            {
                match len - 1 {
                    short @ 0..60 => stream.push((short as u8) << 2),
                    long => stream.extend_from_slice(&[60 << 2, long as u8]),
                }
                stream.extend_from_slice(&plain[at..at + len]);
                at += len;
            }
            stream
        };
        let stream = literals(&[5, 11, 1, 64]);
        let want: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let snappy = |chunk: &[u8]| mapped_dictionary(chunk, Compression::Snappy, Kind::Double);
        let read = snappy(&page(&stream, values.len()));
        assert_eq!(read, Some(Ok(want.clone())));
        // Fewer values than the header counts: an error, not a guess.
        let read = snappy(&page(&stream, values.len() + 1));
        assert!(matches!(read, Some(Err(e)) if e.contains("fewer than 41")));
        // A copy (tag 01) among the literals: left to decompression.
        let mut copied = literals(&[8]);
        copied.splice(2..2, [0b0000_0001u8, 8]);
        assert_eq!(snappy(&page(&copied, values.len())), None);
        // Bytes as many as the values' is not the mark of a page stored as
        // it is: only the chunk's codec says so.
        let as_is = page(&plain, values.len());
        let raw = mapped_dictionary(&as_is, Compression::Uncompressed, Kind::Double);
        assert_eq!(raw, Some(Ok(want.clone())));
        assert_eq!(snappy(&as_is), None);
        assert_eq!(
            mapped_dictionary(&as_is, Compression::Zstd, Kind::Double),
            None
        );
        // Literals that hold fewer bytes than the stream's length says.
        let short = &stream[..stream.len() - 3];
        assert_eq!(literal_pieces(short, plain.len()), None);
    }

    #[test]
    fn a_scaled_reader_reads_polars_values_scaled() {
        // Dictionaries scaled once, PLAIN values as converted, nulls left
        // NaN, and row groups laid out by polars ("split") scaled as rows:
        // each value the bits `(x - offset) * scale` gives. Offsets of
        // both zeros' signs and scales below, at and past one.
        let mut names = NUMBERS.to_vec();
        names.insert(2, "split");
        let scaling = FeatureScaling {
            offset: (0..names.len())
                .map(|j| [0.0, -0.0, 3.5, -1e6, 0.1][j % 5])
                .collect(),
            scale: (0..names.len())
                .map(|j| [1.0, 0.25, -3.0, 1e-3, 7.0, 0.0][j % 6])
                .collect(),
        };
        for file in ["v1_snappy.parquet", "v2_zstd.parquet", "v1_none.parquet"] {
            let names = match file {
                "v1_snappy.parquet" | "v2_zstd.parquet" => &names[..],
                _ => &NUMBERS[..],
            };
            let scaling = FeatureScaling {
                offset: scaling.offset[..names.len()].to_vec(),
                scale: scaling.scale[..names.len()].to_vec(),
            };
            reads_as_polars_does(file, names, Some(&scaling));
        }
    }

    #[test]
    fn a_reader_seeks_to_any_row_and_reads_on_from_there() {
        // Row groups of 1,700 rows, pages of a few hundred
        // (make_float_pages.py): further into the row group being read
        // (within a page, across pages), into another row group's middle,
        // back, onto a row group's first row, and through row groups laid
        // out by polars ("split"); each read checked bit for bit, nulls
        // too, against polars' reading of the same rows.
        // (first row, rows asked for, rows read: past those asked for
        // too).
        let seeks = [
            (10, 5, 5),
            (40, 30, 30),
            (900, 100, 700),
            (1699, 2, 2),
            (2500, 1000, 1000),
            (1000, 100, 100),
            (1150, 100, 1200),
            (3400, 10, 10),
            (4999, 1, 1),
            (0, 20, 20),
        ];
        let mut with_split = NUMBERS.to_vec();
        with_split.insert(2, "split");
        for (file, names) in [
            ("v1_snappy.parquet", NUMBERS.to_vec()),
            ("v2_zstd.parquet", with_split),
            ("v1_none.parquet", NUMBERS.to_vec()),
        ] {
            let path = Path::new("tests/fixtures/float_pages").join(file);
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let frame = Frame::read(&path, Some(&names)).expect("polars reads the fixture");
            let (expected, _) = frame.f32_rows(&names).expect("laid out");
            let table = Table::open(&path).expect("opened");
            let mut reader = FloatRows::open(&table, &names)
                .expect("metadata read")
                .expect("float columns");
            let width = names.len();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut rows = Vec::new();
            reader.read(3, &mut rows).expect("read");
            let mut nulls_seen = 0;
            for (start, asked, n) in seeks {
                reader.seek(start, asked).expect("a row of the file");
                rows.clear();
                let nulls = reader.read(n, &mut rows).expect("read");
                let (_, expected_nulls) = frame.slice(start, n).f32_rows(&names).expect("laid out");
                assert_eq!(
                    bits(&rows),
                    bits(&expected[start * width..(start + n) * width]),
                    "{file}: from row {start}"
                );
                assert_eq!(nulls, expected_nulls, "{file}: nulls from row {start}");
                nulls_seen += nulls;
            }
            assert!(nulls_seen > 0, "{file}: the rows read hold nulls");
            let err = reader.seek(5000, 1).expect_err("past the last row");
            assert!(err.to_string().contains("row 5000"), "{err}");
        }
    }

    #[test]
    fn row_groups_with_pages_of_other_encodings_are_laid_out_through_polars() {
        let mut names = NUMBERS.to_vec();
        names.insert(2, "split");
        for file in ["v1_snappy.parquet", "v2_zstd.parquet"] {
            reads_as_polars_does(file, &names, None);
        }
    }

    /// Reads copies of the fixtures with one byte of their pages changed
    /// at a time, every `step` bytes (the footer is the metadata reader's:
    /// kept), with `read`: never a panic, and each error one line naming
    /// the file. Returns how many copies were refused.
    pub(in crate::data) fn read_damaged_copies(
        step: usize,
        read: impl Fn(&Path) -> Result<()> + std::panic::RefUnwindSafe,
    ) -> usize {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("damaged.parquet");
        let mut errors = 0;
        for file in ["v1_snappy.parquet", "v1_none.parquet"] {
            let original = std::fs::read(Path::new("tests/fixtures/float_pages").join(file))
                .expect("the fixture");
            let footer = original.len() - 8;
            let metadata_len =
                u32::from_le_bytes(original[footer..footer + 4].try_into().unwrap()) as usize;
            let pages_end = footer - metadata_len;
            for (k, at) in (4..pages_end).step_by(step).enumerate() {
                let mut bytes = original.clone();
                bytes[at] ^= 1 << (k % 8);
                std::fs::write(&path, &bytes).expect("written");
                match std::panic::catch_unwind(|| read(&path)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        errors += 1;
                        let message = e.to_string();
                        assert!(message.contains("damaged.parquet"), "{message}");
                        assert!(!message.contains('\n'), "{message}");
                    }
                    Err(_) => panic!("{file}: a panic with byte {at} changed"),
                }
            }
        }
        errors
    }

    /// A fixture, opened, and its metadata.
    fn fixture(file: &str) -> (File, FileMetadata) {
        let mut f =
            File::open(Path::new("tests/fixtures/float_pages").join(file)).expect("fixture");
        let metadata = read_metadata(&mut f).expect("metadata");
        (f, metadata)
    }

    /// A chunk's pages, decompressed: each page's bytes and values.
    fn decoded(pages: VecDeque<CompressedPage>) -> Vec<(Vec<u8>, usize)> {
        let mut context = DecompressionContext::Unset;
        pages
            .into_iter()
            .map(|page| {
                match decompress(page, &mut Vec::new(), &mut context).expect("decompressed") {
                    Page::Data(page) => (page.buffer().to_vec(), page.num_values()),
                    Page::Dict(page) => (page.buffer.to_vec(), page.num_values),
                }
            })
            .collect()
    }

    /// A snappy page of one literal is its bytes where they lie, the
    /// bytes snappy decompresses it to; any other page is left to
    /// decompression. The fixture has pages of both kinds.
    #[test]
    fn a_page_of_one_literal_is_read_where_it_lies() {
        let (mut f, metadata) = fixture("v1_snappy.parquet");
        let (mut in_place, mut other, mut first) = (0, 0, None);
        for group in 0..metadata.row_groups.len() {
            for name in NUMBERS {
                let chunk = column_chunk(&metadata, group, name).expect("a chunk");
                let descriptor = &chunk.descriptor().descriptor;
                let expected = decoded(read_pages(&mut f, None, chunk).expect("mapped"));
                let pages = read_pages_copied(&mut f, chunk).expect("read");
                for (index, (mut page, (bytes, _))) in pages.into_iter().zip(expected).enumerate() {
                    match one_literal(&mut page, descriptor) {
                        Some(found) => {
                            let found = found.buffer();
                            assert_eq!(found, &bytes[..], "{name}, row group {group}");
                            in_place += 1;
                            first.get_or_insert((group, name, index));
                        }
                        None => other += 1,
                    }
                }
            }
        }
        assert!(in_place > 100 && other > 100, "{in_place} and {other}");
        // A page whose stream goes on one byte past its literal is not
        // read in place, and is left as it was, to be decompressed.
        let (group, name, index) = first.expect("a page of one literal");
        let chunk = column_chunk(&metadata, group, name).expect("a chunk");
        let mut pages = read_pages_copied(&mut f, chunk).expect("read");
        let page = &mut pages[index];
        let CompressedPage::Data(data) = page else {
            unreachable!("a data page has one literal");
        };
        data.slice_mut().to_mut().push(0);
        let size = data.compressed_size();
        assert!(one_literal(page, &chunk.descriptor().descriptor).is_none());
        let CompressedPage::Data(data) = page else {
            unreachable!("still a data page");
        };
        assert_eq!(data.compressed_size(), size);
    }

    #[test]
    fn chunks_read_from_a_map_or_copied_hold_the_same_pages() {
        for file in ["v1_snappy.parquet", "v2_zstd.parquet", "v1_none.parquet"] {
            let (mut f, metadata) = fixture(file);
            let len = f.metadata().expect("length").len();
            let whole = FileSpan::map(&f, 0..len).expect("a file maps");
            assert!(metadata.row_groups.len() > 1);
            for group in 0..metadata.row_groups.len() {
                for name in NUMBERS {
                    let chunk = column_chunk(&metadata, group, name).expect("a chunk");
                    let copied = decoded(read_pages_copied(&mut f, chunk).expect("read"));
                    assert!(copied.iter().map(|(_, n)| n).sum::<usize>() > 0);
                    let own_map = decoded(read_pages(&mut f, None, chunk).expect("mapped"));
                    assert_eq!(own_map, copied, "{file}: {name}, row group {group}");
                    let in_span = decoded(read_pages(&mut f, Some(&whole), chunk).expect("mapped"));
                    assert_eq!(in_span, copied, "{file}: {name}, row group {group}");
                }
            }
            // Bytes a span does not hold are not read from it.
            let span = FileSpan::map(&f, 100..200).expect("a part maps");
            assert!(span.bytes(&(50..150)).is_none() && span.bytes(&(150..250)).is_none());
            let inside = span.bytes(&(120..180)).expect("inside the span");
            let mut expected = vec![0u8; 60];
            f.read_exact_at(&mut expected, 120).expect("read");
            assert_eq!(&inside[..], &expected[..]);
            assert!(FileSpan::map(&f, 100..100).is_none());
        }
    }

    #[test]
    fn a_part_read_without_a_map_holds_the_pages_of_its_rows() {
        // Row groups of 1,700 rows in pages of a few hundred: a part's own
        // pages (a file that cannot be mapped) are the dictionary and the
        // data pages its rows touch, as read in the whole chunk.
        for file in ["v1_snappy.parquet", "v2_zstd.parquet", "v1_none.parquet"] {
            let (mut f, metadata) = fixture(file);
            let chunk = column_chunk(&metadata, 1, NUMBERS[0]).expect("a chunk");
            let whole = decoded(read_pages_copied(&mut f, chunk).expect("read"));
            let (dictionary, data) = whole.split_at(1);
            assert!(data.len() > 2, "{file}: pages of a few hundred rows");
            for (from, to) in [(0, 1), (350, 800), (1200, 1700), (0, 1700)] {
                let (pages, passed) = read_pages_for(&f, chunk, from, to).expect("read");
                let mut expected = dictionary.to_vec();
                let mut rows = 0;
                let mut before = None;
                for (bytes, n) in data {
                    if rows + n > from && rows < to {
                        before.get_or_insert(rows);
                        expected.push((bytes.clone(), *n));
                    }
                    rows += n;
                }
                assert_eq!(decoded(pages), expected, "{file}: rows {from}..{to}");
                assert_eq!(Some(passed), before, "{file}: rows {from}..{to}");
            }
        }
    }

    #[test]
    fn damaged_pages_are_errors_naming_the_file_never_panics() {
        // A compressed and an uncompressed file, each damaged copy read
        // whole, and in parts of row groups (their pages found by their
        // headers).
        let names: Vec<String> = NUMBERS.iter().map(|n| n.to_string()).collect();
        let errors = read_damaged_copies(397, |path| {
            let Some(mut parts) = FloatRows::open_file(path, &names, None)? else {
                return Ok(());
            };
            let mut rows = Vec::new();
            let by_parts = [900, 2000, 4100].into_iter().try_for_each(|start| {
                parts.seek(start, 500)?;
                parts.read(500, &mut rows).map(|_| ())
            });
            let Some(mut whole) = FloatRows::open_file(path, &names, None)? else {
                return Ok(());
            };
            for _ in 0..5 {
                whole.read(1000, &mut rows)?;
            }
            by_parts
        });
        assert!(errors > 40, "{errors} damaged files refused");
    }

    #[test]
    fn a_column_of_another_kind_is_declined() {
        let path = Path::new("tests/fixtures/float_pages/v1_snappy.parquet");
        let table = Table::open(path).expect("opened");
        for declined in ["day", "no_such_column"] {
            let names = ["dict_nulls", declined].map(String::from);
            assert!(
                FloatRows::open(&table, &names).expect("read").is_none(),
                "{declined}"
            );
        }
    }

    #[test]
    fn a_page_buffer_is_lent_at_its_longest_written_length() {
        let mut buffer = PageBuffer::default();
        // A page of 1000 bytes, then one of 10: lent again at 1000, with
        // the first page's bytes past the second's.
        let mut bytes = buffer.lend();
        bytes.resize(1000, 7);
        buffer.give_back(bytes);
        let mut bytes = buffer.lend();
        assert_eq!(bytes.len(), 1000);
        bytes.truncate(10);
        buffer.give_back(bytes);
        let bytes = buffer.lend();
        assert_eq!((bytes.len(), bytes[999]), (1000, 7));
        // Not given back (its page dropped): the next is lent empty.
        drop(bytes);
        assert!(buffer.lend().is_empty());
    }

    #[test]
    fn present_values_are_spread_among_nulls_alike_on_every_path() {
        // Rows of every length around sixteen, nulls none, some, in runs,
        // and all: the AVX-512 path (where the machine has it) and the run
        // by run one give the same bits, each present value in order.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 15, 16, 17, 31, 33, 100, 2184] {
            for nulls_in in [0u64, 2, 10, 64, 1] {
                let levels: Vec<u32> = (0..n)
                    .map(|_| match nulls_in {
                        0 => 1,
                        1 => 0,
                        k => (next() % k != 0) as u32,
                    })
                    .collect();
                let present = levels.iter().filter(|&&l| l == 1).count();
                let values: Vec<f32> = (0..present).map(|i| i as f32 + 0.5).collect();
                let mut expected = vec![0f32; n];
                let mut taken = values.iter();
                for (e, &l) in expected.iter_mut().zip(&levels) {
                    *e = if l == 1 {
                        *taken.next().unwrap()
                    } else {
                        f32::NAN
                    };
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let mut out = vec![0f32; n];
                spread_present(&levels, &values, &mut out);
                assert_eq!(bits(&out), bits(&expected), "{n} rows");
                let mut out = vec![0f32; n];
                spread_present_by_runs(&levels, &values, &mut out);
                assert_eq!(bits(&out), bits(&expected), "{n} rows, run by run");
            }
        }
    }

    #[test]
    fn packed_values_unpack_from_any_bit_in_any_width() {
        // Widths 1 to 32 (up to 16 bits, whole groups from a byte's start
        // go eight at a time with AVX2), from byte starts and from the
        // middle of a byte, in lengths of whole groups and not, with and
        // without 16 bytes after them; each value against its bits read
        // one by one.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..600)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let value_at = |bit: usize, bits: usize| -> u32 {
            (0..bits)
                .filter(|b| data[(bit + b) / 8] >> ((bit + b) % 8) & 1 == 1)
                .map(|b| 1u32 << b)
                .sum()
        };
        for bits in 1..=32usize {
            for start in [0usize, 8, 3, 21, 64] {
                for n in [0, 1, 7, 8, 9, 64, 100] {
                    for end in [data.len(), start.div_ceil(8) + (n * bits).div_ceil(8)] {
                        let data = &data[..end.max((start + n * bits).div_ceil(8))];
                        let mut out = vec![u32::MAX; n];
                        unpack(data, start, bits as u32, &mut out);
                        let expected: Vec<u32> =
                            (0..n).map(|i| value_at(start + i * bits, bits)).collect();
                        assert_eq!(out, expected, "{bits} bits from bit {start}, {n} values");
                    }
                }
            }
        }
    }

    #[test]
    fn hybrid_runs_of_repeats_and_packed_values_unpack_in_order() {
        // A run of 5 x 3 (header 5 << 1), then two groups of eight
        // bit-packed 3-bit values 0..16 (header 2 << 1 | 1), read in
        // reads that cut both runs.
        let values: Vec<u32> = (0..16).map(|v| v % 8).collect();
        let mut packed = vec![0u8; 6];
        for (i, v) in values.iter().enumerate() {
            for b in 0..3 {
                if v >> b & 1 == 1 {
                    let at = i * 3 + b;
                    packed[at / 8] |= 1 << (at % 8);
                }
            }
        }
        let mut data = vec![5 << 1, 3, 2 << 1 | 1];
        data.extend(&packed);
        let mut hybrid = Hybrid::new(0, data.len(), 3);
        let mut out = Vec::new();
        for n in [2, 4, 9, 6] {
            let mut part = vec![0u32; n];
            hybrid.read(&data, &mut part).expect("decoded");
            out.extend(part);
        }
        let mut expected = vec![3; 5];
        expected.extend(values.iter().copied());
        assert_eq!(out, expected);
        // Past the last run: an error.
        assert!(hybrid.read(&data, &mut [0]).is_err());

        // The same stream gathered from a dictionary: in reads that take
        // values one by one up to a group, a whole group, and one by one
        // after it; every width of the whole-group path.
        let dictionary: Vec<f32> = (0..8).map(|i| i as f32 * 1.5).collect();
        let mut gathered = Vec::new();
        let mut hybrid = Hybrid::new(0, data.len(), 3);
        for n in [2, 6, 13] {
            let mut part = vec![0f32; n];
            hybrid
                .read_gathered(&data, &dictionary, &mut part)
                .expect("gathered");
            gathered.extend(part);
        }
        let expected: Vec<f32> = expected.iter().map(|&i| dictionary[i as usize]).collect();
        assert_eq!(gathered, expected);
        for bits in 1..=32usize {
            let values = 1u64 << bits.min(3);
            // Ten groups: with AVX2 the first ones (up to 16 bits) take the
            // vector path, the last ones (within 16 bytes of the end) the
            // scalar one.
            let indices: Vec<u32> = (0..80u64).map(|i| ((i * 5 + 1) % values) as u32).collect();
            let mut packed = vec![0u8; 10 * bits];
            for (i, v) in indices.iter().enumerate() {
                for b in 0..bits {
                    if v >> b & 1 == 1 {
                        let at = i * bits + b;
                        packed[at / 8] |= 1 << (at % 8);
                    }
                }
            }
            let mut out = vec![0f32; 80];
            assert!(
                gather_groups(bits, &packed, &dictionary, &mut out),
                "{bits} bits"
            );
            let expected: Vec<f32> = indices.iter().map(|&i| dictionary[i as usize]).collect();
            assert_eq!(out, expected, "{bits} bits");
            // The page's bytes after the groups are not indices: with them
            // every group is gathered with AVX2, the same values.
            let mut page = packed.clone();
            page.extend([0xff; 16]);
            out.fill(0.0);
            assert!(
                gather_groups(bits, &page, &dictionary, &mut out),
                "{bits} bits"
            );
            assert_eq!(out, expected, "{bits} bits, followed by the page");
            // Index 1 (and more) past a dictionary of one value.
            assert!(
                !gather_groups(bits, &packed, &dictionary[..1], &mut out),
                "{bits} bits"
            );
        }
        // An index past the dictionary is named, on either path.
        for n in [16, 21] {
            let mut hybrid = Hybrid::new(0, data.len(), 3);
            let err = hybrid
                .read_gathered(&data, &dictionary[..6], &mut vec![0f32; n])
                .expect_err("index 6 and 7 are past the dictionary");
            assert_eq!(err, "index 6 past its dictionary of 6 values");
        }
    }
}
