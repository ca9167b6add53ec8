//! Float32 matrix product C = A B, with B packed once into panels of
//! columns (weights are packed when first used and kept).
//!
//! The micro-kernels hold an MR x NR block of C in registers and stream one
//! row of the B panel and one column of A per step: 12 x 32 on AVX-512
//! (24 accumulators of 16 lanes), 6 x 16 on AVX2 (12 of 8 lanes), 4 x 8 in
//! portable Rust. Tiles run in parallel on rayon's pool when the product is
//! large enough to pay for it.

use rayon::prelude::*;

use super::{isa, threads, Activation, Isa, SharedMut};

/// Below this many multiply-adds a product runs on the calling thread:
/// waking the pool costs more than it saves.
const PARALLEL_WORK: usize = 1 << 17;

fn tile_shape(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512Vnni => (12, 32),
        Isa::Avx2 => (6, 16),
        Isa::Neon => (8, 8),
        Isa::Reference => (4, 8),
    }
}

/// The kernels for a product of `n` columns: at most 16 columns on
/// AVX-512 go to the AVX2 kernels, whose tiles are 16 columns wide where
/// AVX-512's are 32 (half their work thrown away: a small MLP's second
/// layer). Both compute every value by the same multiply-adds in the same
/// order, so the bits are the same.
fn isa_for_columns(isa: Isa, n: usize) -> Isa {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512Vnni
        && n <= 16
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
    {
        return Isa::Avx2;
    }
    let _ = n;
    isa
}

/// B (k x n) in panels of `nr` columns, each panel k rows of `nr` values,
/// zero-padded past column n.
#[derive(Debug)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    isa: Isa,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs B, element (p, j) at `b[p * row_stride + j * col_stride]` (so a
    /// transposed B packs without a copy first).
    pub fn pack(b: &[f32], k: usize, n: usize, row_stride: usize, col_stride: usize) -> PackedB {
        Self::pack_for(isa_for_columns(isa(), n), b, k, n, row_stride, col_stride)
    }

    pub fn pack_for(
        isa: Isa,
        b: &[f32],
        k: usize,
        n: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> PackedB {
        let mut packed = PackedB {
            k: 0,
            n: 0,
            isa,
            data: Vec::new(),
        };
        packed.fill(b, k, n, row_stride, col_stride);
        packed
    }

    /// An empty packing, for [`PackedB::repack`] to fill.
    pub fn empty() -> PackedB {
        PackedB {
            k: 0,
            n: 0,
            isa: isa(),
            data: Vec::new(),
        }
    }

    /// Packs B as [`PackedB::pack`] does, into this packing's memory: an
    /// attention packs every head's keys and values, and a fresh zeroed
    /// buffer per head cost more than the copy.
    pub fn repack(&mut self, b: &[f32], k: usize, n: usize, row_stride: usize, col_stride: usize) {
        self.isa = isa_for_columns(isa(), n);
        self.fill(b, k, n, row_stride, col_stride);
    }

    /// Writes every value of the panels (padding included), so that memory
    /// left from an earlier packing is never read.
    fn fill(&mut self, b: &[f32], k: usize, n: usize, row_stride: usize, col_stride: usize) {
        let nr = tile_shape(self.isa).1;
        let panels = n.div_ceil(nr);
        let len = panels * k * nr;
        if self.data.len() != len {
            self.data.clear();
            self.data.resize(len, 0.0);
        }
        (self.k, self.n) = (k, n);
        // (With k = 0 there is nothing to pack: no chunk of size 0.)
        for (panel, out) in self
            .data
            .chunks_mut((k * nr).max(1))
            .enumerate()
            .take(panels * (k > 0) as usize)
        {
            let j0 = panel * nr;
            let cols = nr.min(n - j0);
            if col_stride == 1 {
                // Rows of B where they lie (attention's V, weights).
                for (p, row) in out.chunks_exact_mut(nr).enumerate() {
                    let start = p * row_stride + j0;
                    row[..cols].copy_from_slice(&b[start..start + cols]);
                    row[cols..].fill(0.0);
                }
            } else if row_stride == 1 {
                // A transposed B (attention's K^T): read each column where it
                // lies, in order, and scatter it down the panel.
                let first =
                    pack_columns_by_eight(&b[j0 * col_stride..], k, col_stride, cols, out, nr);
                for c in first..cols {
                    let column = &b[(j0 + c) * col_stride..];
                    for (p, v) in column[..k].iter().enumerate() {
                        out[p * nr + c] = *v;
                    }
                }
                for row in out.chunks_exact_mut(nr) {
                    row[cols..].fill(0.0);
                }
            } else {
                for (p, row) in out.chunks_exact_mut(nr).enumerate() {
                    for (c, v) in row[..cols].iter_mut().enumerate() {
                        *v = b[p * row_stride + (j0 + c) * col_stride];
                    }
                    row[cols..].fill(0.0);
                }
            }
        }
    }

    /// B again, row-major (k x n).
    pub fn unpack(&self) -> Vec<f32> {
        let nr = tile_shape(self.isa).1;
        let mut b = vec![0f32; self.k * self.n];
        for (p, row) in b.chunks_mut(self.n.max(1)).enumerate().take(self.k) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.data[(j / nr) * self.k * nr + p * nr + j % nr];
            }
        }
        b
    }
}

/// Packs the first columns of a panel of a transposed B (column c's `k`
/// values at `b[c * col_stride..]`) eight at a time, through a
/// transposition in registers where AVX is; returns how many it packed.
/// (One value stored at a time was most of packing an attention head's
/// keys.)
fn pack_columns_by_eight(
    b: &[f32],
    k: usize,
    col_stride: usize,
    cols: usize,
    out: &mut [f32],
    nr: usize,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut first = 0;
        if is_x86_feature_detected!("avx") {
            assert!(out.len() >= k * nr);
            while first + 8 <= cols {
                let start = first * col_stride;
                assert!(start + 7 * col_stride + k <= b.len());
                // SAFETY: AVX is present; the eight columns lie within `b`
                // (asserted), `out` holds k rows of nr (asserted) and
                // first + 8 <= cols <= nr.
                unsafe { x86::pack_columns8(&b[start..], col_stride, k, out, nr, first) };
                first += 8;
            }
        }
        first
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (b, k, col_stride, cols, out, nr);
        0
    }
}

/// How far ahead of its reads (in floats: 2 KB) a micro-kernel asks for
/// the next lines of its B panel. A weight matrix is read from L3 or memory
/// on every call (MiniLM's 21 MB of weights do not stay in L2), and the
/// hardware prefetcher restarts at every 4 KB page and every jump between
/// panels; asking ahead made MiniLM-L3 5-9% faster at every batch size here
/// (1 KB or 4 KB ahead: less). A prefetch past the panel's end reads a line
/// that is not used, never faults.
const PREFETCH_AHEAD: usize = 512;

/// Depth of one block of k: a kc x NR slice of a B panel (32 KB on
/// AVX-512) stays in L1 while the micro-kernels sweep it.
const KC: usize = 256;
/// Rows of A per unit of work: MC x KC floats (about 100 KB) stay in L2
/// while every panel of B passes by.
const MC: usize = 96;

/// The depth of each block of k: k split into equal blocks of at most KC
/// (384 gives two blocks of 192, not 256 and 128), a multiple of 8.
fn block_depth(k: usize) -> usize {
    let blocks = k.div_ceil(KC);
    k.div_ceil(blocks).next_multiple_of(8).min(k)
}

/// Rows per micro-tile for a product of `m` rows: AVX-512's 12, except
/// for a few rows that 8 divides better (16 rows as 8 + 8, not 12 + 4: a
/// 4-row tile keeps too few accumulators to hide the multiply-adds'
/// latency, and a batch of one sequence of 16 tokens is all such tiles).
fn small_batch_rows(isa: Isa, m: usize, mr: usize) -> usize {
    let waste = |r: usize| m.next_multiple_of(r) - m;
    if isa == Isa::Avx512Vnni && m < 48 && waste(8) < waste(mr) {
        8
    } else {
        mr
    }
}

/// Where element (i, p) of A lies in its slice: row by row (row i at
/// `a[i * lda..]`), or column by column (column p at `a[p * lda..]`: a
/// transposed view, as a replay lays out a batch's features, each
/// column's values where its pages were decoded).
#[inline(always)]
fn at<const BY_COLUMNS: bool>(i: usize, p: usize, lda: usize) -> usize {
    if BY_COLUMNS {
        i + p * lda
    } else {
        i * lda + p
    }
}

/// C (m x n, row-major, `c.len() >= m * n`) = A (m x k, row i at
/// `a[i * lda..]`) times packed B, plus `bias` (one value per column) when
/// given. Parallel when `parallel` and large enough.
///
/// Blocked as in GotoBLAS, except that A is read where it lies (as ONNX
/// Runtime's MLAS does): copying it into micro-kernel order cost 14% of a
/// 1024 x 384 x 384 product, more than the strided reads it saves. Each
/// block of rows meets every panel of B; blocks of k after the first add
/// into C.
#[allow(clippy::too_many_arguments)] // the BLAS shape of it: sizes, operands, epilogue
pub fn sgemm(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    activation: Activation,
    c: &mut [f32],
    parallel: bool,
) {
    sgemm_laid_out::<false>(m, a, lda, b, bias, activation, c, parallel);
}

/// `sgemm` of A row by row (`BY_COLUMNS` false: `sgemm`) or column by
/// column (column p at `a[p * lda..]`, `lda >= m`): the same multiply-adds
/// in the same order either way, so the same bits for the same matrix. A
/// micro-kernel reads one value of each of its rows at each step: by
/// columns, side by side. Columns a multiple of 4 KB apart all fall in the
/// same few sets of the cache: lay them out a cache line further apart
/// (4,096 rows: 16 KB; model_v2's 30 x 16 layer took 54 us a batch against
/// 40 by rows, 43 with the line).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_laid_out<const BY_COLUMNS: bool>(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    activation: Activation,
    c: &mut [f32],
    parallel: bool,
) {
    let (k, n) = (b.k, b.n);
    // A's last value read is (m - 1, k - 1).
    let in_a = m == 0 || k == 0 || a.len() > at::<BY_COLUMNS>(m - 1, k - 1, lda);
    assert!(c.len() >= m * n && in_a);
    assert!(bias.is_none_or(|b| b.len() == n));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for row in c[..m * n].chunks_mut(n) {
            match bias {
                Some(b) => row.copy_from_slice(b),
                None => row.fill(0.0),
            }
            if let Some(f) = activation {
                f(row);
            }
        }
        return;
    }
    let (mr, nr) = tile_shape(b.isa);
    #[cfg(target_arch = "x86_64")]
    if n == 1 && matches!(b.isa, Isa::Avx512Vnni | Isa::Avx2) {
        column_product::<BY_COLUMNS>(m, a, lda, b, bias, activation, c, parallel);
        return;
    }
    let mr = small_batch_rows(b.isa, m, mr);
    let panels = n.div_ceil(nr);
    // Rows split evenly into chunks of at most MC (128 rows as 72 + 56,
    // not 96 + 32, which left one thread idle for half the product).
    let row_chunks = m.div_ceil(MC);
    let chunk_rows = m.div_ceil(row_chunks).next_multiple_of(mr);
    let workers = if parallel && m * n * k >= PARALLEL_WORK {
        threads()
    } else {
        1
    };
    // Units of work: a chunk of rows times a run of panels, as many as
    // a multiple of the threads (11 chunks of rows on 2 threads become 22
    // units, not 6 against 5). Few rows (small batches) split the panels
    // among the threads instead.
    let panel_runs = if workers == 1 {
        1
    } else if row_chunks >= workers * 2 {
        (1..=panels)
            .find(|p| (row_chunks * p).is_multiple_of(workers))
            .unwrap_or(1)
    } else {
        (workers * 2).div_ceil(row_chunks).min(panels)
    };
    let panels_per_run = panels.div_ceil(panel_runs);
    // No run may be left empty (9 panels in runs of 3 are 3 runs, not 4).
    let panel_runs = panels.div_ceil(panels_per_run);
    let units = row_chunks * panel_runs;
    let c_ptr = SharedMut(c.as_mut_ptr());
    let run = |unit: usize| {
        let (chunk, run) = (unit / panel_runs, unit % panel_runs);
        let i0 = chunk * chunk_rows;
        let rows_here = chunk_rows.min(m - i0);
        let panel_range = (run * panels_per_run)..((run + 1) * panels_per_run).min(panels);
        let depth = block_depth(k);
        for k0 in (0..k).step_by(depth) {
            let kc = depth.min(k - k0);
            for panel in panel_range.clone() {
                let j0 = panel * nr;
                let cols = nr.min(n - j0);
                let bp = &b.data[panel * k * nr + k0 * nr..panel * k * nr + (k0 + kc) * nr];
                for block in 0..rows_here.div_ceil(mr) {
                    let rows = mr.min(rows_here - block * mr);
                    let ap = &a[at::<BY_COLUMNS>(i0 + block * mr, k0, lda)..];
                    // SAFETY: this unit alone writes rows i0..i0+rows_here
                    // and columns of its panels, inside C's m x n; the
                    // kernels read kc values of `rows` rows of A (lda apart,
                    // or by columns kc columns lda apart of `rows` values;
                    // inside `a` by the assertion above) and kc x nr of the
                    // panel.
                    unsafe {
                        let cp = c_ptr.get().add((i0 + block * mr) * n + j0);
                        let add = k0 > 0;
                        // The bias goes on after the last block of k.
                        let tile_bias = bias.filter(|_| k0 + kc == k).map(|b| &b[j0..j0 + cols]);
                        // Whether the kernel added the bias itself.
                        let biased = match b.isa {
                            #[cfg(target_arch = "x86_64")]
                            Isa::Avx512Vnni => {
                                let bias = tile_bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
                                x86::tile_avx512::<BY_COLUMNS>(
                                    kc, ap, lda, bp, cp, n, rows, cols, add, bias,
                                );
                                true
                            }
                            #[cfg(target_arch = "x86_64")]
                            Isa::Avx2 => {
                                let bias = tile_bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
                                x86::tile_avx2::<BY_COLUMNS>(
                                    kc, ap, lda, bp, cp, n, rows, cols, add, bias,
                                );
                                true
                            }
                            #[cfg(target_arch = "aarch64")]
                            Isa::Neon => {
                                arm::tile_neon::<BY_COLUMNS>(
                                    kc, ap, lda, bp, cp, n, rows, cols, add,
                                );
                                false
                            }
                            _ => {
                                tile_reference::<BY_COLUMNS>(
                                    kc, ap, lda, bp, nr, cp, n, rows, cols, add,
                                );
                                false
                            }
                        };
                        // Otherwise the bias, while the tile is still in cache.
                        if let (Some(bias), false) = (tile_bias, biased) {
                            for r in 0..rows {
                                let row = std::slice::from_raw_parts_mut(cp.add(r * n), cols);
                                for (v, b) in row.iter_mut().zip(bias) {
                                    *v += b;
                                }
                            }
                        }
                    }
                }
            }
        }
        // The activation on the unit's finished rows, still in cache.
        if let Some(f) = activation {
            let (j0, j1) = (panel_range.start * nr, (panel_range.end * nr).min(n));
            if j0 == 0 && j1 == n {
                // Whole rows: one call over the unit's rows (the activation
                // is element-wise), not one per row, whose calls cost more
                // than a narrow row's values (16 or 32 in a small MLP).
                // SAFETY: as above, these rows are this unit's.
                let block = unsafe {
                    std::slice::from_raw_parts_mut(c_ptr.get().add(i0 * n), rows_here * n)
                };
                f(block);
                return;
            }
            for i in i0..i0 + rows_here {
                // SAFETY: as above, these rows and columns are this unit's.
                let row =
                    unsafe { std::slice::from_raw_parts_mut(c_ptr.get().add(i * n + j0), j1 - j0) };
                f(row);
            }
        }
    };
    if workers > 1 && units > 1 {
        (0..units).into_par_iter().for_each(run);
    } else {
        (0..units).for_each(run);
    }
}

/// C = A times a single column of B (the last layer of a binary
/// classifier or of a regressor), for the FMA kernels: a tile would
/// compute its 32 (AVX2: 16) columns to keep one, a tenth of a small MLP's
/// time. Row by row instead, with the tiles' arithmetic in their order
/// (each block of k summed by multiply-adds from zero, added to the blocks
/// before it, then the bias), so the same bits.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn column_product<const BY_COLUMNS: bool>(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    activation: Activation,
    c: &mut [f32],
    parallel: bool,
) {
    let (k, nr) = (b.k, tile_shape(b.isa).1);
    let column: Vec<f32> = (0..k).map(|p| b.data[p * nr]).collect();
    let (depth, bias) = (block_depth(k), bias.map(|b| b[0]));
    let rows = |first: usize, out: &mut [f32]| {
        let a = &a[at::<BY_COLUMNS>(first, 0, lda)..];
        // SAFETY: AVX2 and FMA are present (both ISAs that come here have
        // them); rows first..first + out.len() of A lie inside `a`
        // (sgemm's assertion).
        unsafe { x86::column_rows::<BY_COLUMNS>(a, lda, &column, depth, bias, out) };
        if let Some(f) = activation {
            f(out);
        }
    };
    let c = &mut c[..m];
    let workers = if parallel && m * k >= PARALLEL_WORK {
        threads()
    } else {
        1
    };
    if workers > 1 {
        let per = m.div_ceil(workers);
        c.par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, out)| rows(i * per, out));
    } else {
        rows(0, c);
    }
}

/// The plain version every vector kernel is checked against.
///
/// # Safety
/// `c` must hold `rows` rows of `ldc` values with `cols` valid columns.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_reference<const BY_COLUMNS: bool>(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    nr: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    for r in 0..rows {
        let mut acc = [0f32; 64];
        for p in 0..kc {
            let x = a[at::<BY_COLUMNS>(r, p, lda)];
            for (j, acc) in acc.iter_mut().enumerate().take(cols) {
                *acc = x.mul_add(b[p * nr + j], *acc);
            }
        }
        for (j, v) in acc.iter().enumerate().take(cols) {
            let out = c.add(r * ldc + j);
            *out = if add { *out + *v } else { *v };
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    /// Dispatches to the micro-kernel for `rows` rows.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_neon<const BY_COLUMNS: bool>(
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        add: bool,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_neon::<$r, BY_COLUMNS>(kc, a.as_ptr(), lda, b.as_ptr(), c, ldc, cols, add),)*
                    _ => unreachable!("at most 8 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6 7 8)
    }

    /// MR rows of A, `lda` apart; B 8 columns per step (16 accumulators of
    /// 4 lanes).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "neon")]
    unsafe fn kernel_neon<const MR: usize, const BY_COLUMNS: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        add: bool,
    ) {
        let mut acc = [[vdupq_n_f32(0.0); 2]; MR];
        for p in 0..kc {
            let b0 = vld1q_f32(b.add(p * 8));
            let b1 = vld1q_f32(b.add(p * 8 + 4));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = vdupq_n_f32(*a.add(super::at::<BY_COLUMNS>(r, p, lda)));
                acc[0] = vfmaq_f32(acc[0], x, b0);
                acc[1] = vfmaq_f32(acc[1], x, b1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut tmp = [0f32; 8];
            vst1q_f32(tmp.as_mut_ptr(), acc[0]);
            vst1q_f32(tmp.as_mut_ptr().add(4), acc[1]);
            let row = c.add(r * ldc);
            for (j, v) in tmp.iter().enumerate().take(cols) {
                let out = row.add(j);
                *out = if add { *out + v } else { *v };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::simd::x86::transpose8;

    /// `out.len()` rows of A (`lda` apart, or by columns `lda` apart) times
    /// `column`: per block of `depth` values of k, a sum from zero by
    /// multiply-adds in k's order, added to the blocks before it, then
    /// `bias`. Eight rows at a time, one per lane: by rows, eight values of
    /// k of each row are loaded together and transposed in registers (a
    /// row's values are contiguous, a lane's are a row apart); by columns,
    /// the eight rows' values at each p lie side by side.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn column_rows<const BY_COLUMNS: bool>(
        a: &[f32],
        lda: usize,
        column: &[f32],
        depth: usize,
        bias: Option<f32>,
        out: &mut [f32],
    ) {
        let k = column.len();
        let depth = depth.max(1);
        let rows = out.len();
        let mut first = 0;
        while first + 8 <= rows {
            // SAFETY (all loads): values p..p + 8 (or p) below k of rows
            // first..first + 8 of A, or by columns rows first..first + 8 of
            // column p, lie inside `a` (the caller's assertion).
            let row = |r: usize| a.as_ptr().add((first + r) * lda);
            let mut sum = _mm256_setzero_ps();
            for k0 in (0..k).step_by(depth) {
                let end = (k0 + depth).min(k);
                let mut acc = _mm256_setzero_ps();
                if BY_COLUMNS {
                    for (p, &w) in column.iter().enumerate().take(end).skip(k0) {
                        let values = _mm256_loadu_ps(a.as_ptr().add(first + p * lda));
                        acc = _mm256_fmadd_ps(values, _mm256_set1_ps(w), acc);
                    }
                } else {
                    let mut p = k0;
                    while p + 8 <= end {
                        let by_row = std::array::from_fn(|r| _mm256_loadu_ps(row(r).add(p)));
                        for (q, values) in transpose8(by_row).into_iter().enumerate() {
                            acc = _mm256_fmadd_ps(values, _mm256_set1_ps(column[p + q]), acc);
                        }
                        p += 8;
                    }
                    for (p, &w) in column.iter().enumerate().take(end).skip(p) {
                        let values: [f32; 8] = std::array::from_fn(|r| *row(r).add(p));
                        acc = _mm256_fmadd_ps(
                            _mm256_loadu_ps(values.as_ptr()),
                            _mm256_set1_ps(w),
                            acc,
                        );
                    }
                }
                sum = if k0 == 0 {
                    acc
                } else {
                    _mm256_add_ps(acc, sum)
                };
            }
            if let Some(b) = bias {
                sum = _mm256_add_ps(sum, _mm256_set1_ps(b));
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(first), sum);
            first += 8;
        }
        // The last rows one by one, with the same operations.
        for (r, o) in out.iter_mut().enumerate().skip(first) {
            let value = |p: usize| a[super::at::<BY_COLUMNS>(r, p, lda)];
            let mut sum = 0f32;
            for k0 in (0..k).step_by(depth) {
                let end = (k0 + depth).min(k);
                let mut acc = 0f32;
                for (p, w) in column.iter().enumerate().take(end).skip(k0) {
                    acc = value(p).mul_add(*w, acc);
                }
                sum = if k0 == 0 { acc } else { acc + sum };
            }
            *o = match bias {
                Some(b) => sum + b,
                None => sum,
            };
        }
    }

    /// Eight columns of a transposed B (column c's `k` values at
    /// `b[c * stride..]`) into places `first..first + 8` of each of the
    /// first `k` rows of a panel `nr` wide.
    ///
    /// # Safety
    /// AVX must be present, `b` must hold `7 * stride + k` values and `out`
    /// `k * nr`, with `first + 8 <= nr`.
    #[target_feature(enable = "avx")]
    pub unsafe fn pack_columns8(
        b: &[f32],
        stride: usize,
        k: usize,
        out: &mut [f32],
        nr: usize,
        first: usize,
    ) {
        let (b, out) = (b.as_ptr(), out.as_mut_ptr());
        let mut p = 0;
        while p + 8 <= k {
            let columns = std::array::from_fn(|c| _mm256_loadu_ps(b.add(c * stride + p)));
            for (q, values) in transpose8(columns).into_iter().enumerate() {
                _mm256_storeu_ps(out.add((p + q) * nr + first), values);
            }
            p += 8;
        }
        for p in p..k {
            for c in 0..8 {
                *out.add(p * nr + first + c) = *b.add(c * stride + p);
            }
        }
    }

    /// Dispatches to the micro-kernel for `rows` rows (a const generic, so
    /// the accumulators stay in registers).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_avx512<const BY_COLUMNS: bool>(
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        add: bool,
        bias: *const f32,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_avx512::<$r, BY_COLUMNS>(kc, a.as_ptr(), lda, b.as_ptr(), c, ldc, cols, add, bias),)*
                    _ => unreachable!("at most 12 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6 7 8 9 10 11 12)
    }

    /// MR rows of A, `lda` apart (or by columns: each step's MR values side
    /// by side, steps `lda` apart); B 32 columns per step. `bias` (null for
    /// none) holds `cols` values added to each row as it is stored, after
    /// the earlier blocks' sums, in the order a separate pass adds them.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_avx512<const MR: usize, const BY_COLUMNS: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        add: bool,
        bias: *const f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..kc {
            let ahead = b.wrapping_add(p * 32 + super::PREFETCH_AHEAD);
            _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(16) as *const i8);
            let b0 = _mm512_loadu_ps(b.add(p * 32));
            let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(super::at::<BY_COLUMNS>(r, p, lda)));
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
        let m0: __mmask16 = if cols >= 16 {
            0xffff
        } else {
            (1u16 << cols) - 1
        };
        let m1: __mmask16 = if cols >= 32 {
            0xffff
        } else if cols > 16 {
            (1u16 << (cols - 16)) - 1
        } else {
            0
        };
        let (b0, b1) = if bias.is_null() {
            (None, None)
        } else {
            (
                Some(_mm512_maskz_loadu_ps(m0, bias)),
                Some(_mm512_maskz_loadu_ps(m1, bias.wrapping_add(16))),
            )
        };
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            let (mut v0, mut v1) = (acc[0], acc[1]);
            if add {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row.add(16)));
            }
            if let (Some(b0), Some(b1)) = (b0, b1) {
                v0 = _mm512_add_ps(v0, b0);
                v1 = _mm512_add_ps(v1, b1);
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row.add(16), m1, v1);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_avx2<const BY_COLUMNS: bool>(
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        add: bool,
        bias: *const f32,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_avx2::<$r, BY_COLUMNS>(kc, a.as_ptr(), lda, b.as_ptr(), c, ldc, cols, add, bias),)*
                    _ => unreachable!("at most 6 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6)
    }

    /// MR rows of A, `lda` apart (or by columns, as in `kernel_avx512`); B
    /// 16 columns per step. `bias` (null for
    /// none) as in `kernel_avx512`. A whole tile is stored from its
    /// registers; only the last, narrower panel goes value by value (storing
    /// every tile through a scratch copy, with the bias in a second pass,
    /// cost a tenth of a 1024 x 1536 x 384 product).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_avx2<const MR: usize, const BY_COLUMNS: bool>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        add: bool,
        bias: *const f32,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..kc {
            let ahead = b.wrapping_add(p * 16 + super::PREFETCH_AHEAD);
            _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
            let b0 = _mm256_loadu_ps(b.add(p * 16));
            let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_ps(*a.add(super::at::<BY_COLUMNS>(r, p, lda)));
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
        if cols == 16 {
            for (r, acc) in acc.iter().enumerate() {
                let row = c.add(r * ldc);
                let (mut v0, mut v1) = (acc[0], acc[1]);
                if add {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row.add(8)));
                }
                if !bias.is_null() {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias.add(8)));
                }
                _mm256_storeu_ps(row, v0);
                _mm256_storeu_ps(row.add(8), v1);
            }
            return;
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            let mut tmp = [0f32; 16];
            _mm256_storeu_ps(tmp.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[1]);
            for (j, v) in tmp.iter().enumerate().take(cols) {
                let out = row.add(j);
                let mut v = if add { *out + v } else { *v };
                if !bias.is_null() {
                    v += *bias.add(j);
                }
                *out = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                    .sum();
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_kernel_matches_the_naive_product_on_ragged_shapes() {
        for isa in Isa::available() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (13, 33, 7),
                (25, 70, 130),
                (12, 32, 64),
                (3, 100, 30),
                (40, 17, 1),
                (128, 40, 300),
                (673, 9, 3),
            ] {
                let a = values(m * k, 1 + m as u64);
                let b = values(k * n, 2 + n as u64);
                let expected = naive(m, n, k, &a, &b);
                for parallel in [false, true] {
                    let packed = PackedB::pack_for(isa, &b, k, n, n, 1);
                    let mut c = vec![f32::NAN; m * n];
                    sgemm(m, &a, k, &packed, None, None, &mut c, parallel);
                    for (i, (x, e)) in c.iter().zip(&expected).enumerate() {
                        assert!(
                            (*x as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()) * k as f64,
                            "{isa:?} {m}x{n}x{k} [{i}]: {x} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_by_columns_gives_the_bits_of_the_same_a_by_rows() {
        // Every kernel (one column of B too: column_product), ragged
        // edges, several blocks of k, columns a cache line further apart
        // than the rows, with a bias and an activation.
        let relu = |row: &mut [f32]| row.iter_mut().for_each(|v| *v = v.max(0.0));
        for isa in Isa::available() {
            for &(m, n, k) in &[
                (13, 33, 7),
                (25, 70, 300),
                (40, 16, 30),
                (37, 1, 30),
                (673, 9, 3),
            ] {
                let a = values(m * k, 7 + m as u64);
                let b = values(k * n, 8 + n as u64);
                let bias = values(n, 9);
                let lda = m + 16;
                let mut columns = vec![f32::NAN; lda * k];
                for i in 0..m {
                    for p in 0..k {
                        columns[p * lda + i] = a[i * k + p];
                    }
                }
                let packed = PackedB::pack_for(isa, &b, k, n, n, 1);
                for parallel in [false, true] {
                    let mut by_rows = vec![f32::NAN; m * n];
                    let mut by_columns = vec![f32::NAN; m * n];
                    sgemm(
                        m,
                        &a,
                        k,
                        &packed,
                        Some(&bias),
                        Some(&relu),
                        &mut by_rows,
                        parallel,
                    );
                    sgemm_laid_out::<true>(
                        m,
                        &columns,
                        lda,
                        &packed,
                        Some(&bias),
                        Some(&relu),
                        &mut by_columns,
                        parallel,
                    );
                    for (i, (x, y)) in by_rows.iter().zip(&by_columns).enumerate() {
                        assert_eq!(x.to_bits(), y.to_bits(), "{isa:?} {m}x{n}x{k} [{i}]");
                    }
                }
            }
        }
    }

    #[test]
    fn a_bias_gives_the_bits_of_a_separate_addition_after_the_product() {
        // Over several blocks of k and ragged edges: the fused bias must
        // round exactly as MatMul then Add does.
        for isa in Isa::available() {
            for &(m, n, k) in &[(13, 33, 300), (25, 70, 600), (1, 8, 5), (40, 17, 260)] {
                let a = values(m * k, 3 + m as u64);
                let b = values(k * n, 4 + n as u64);
                let bias = values(n, 5);
                let packed = PackedB::pack_for(isa, &b, k, n, n, 1);
                let mut fused = vec![f32::NAN; m * n];
                sgemm(m, &a, k, &packed, Some(&bias), None, &mut fused, true);
                let mut separate = vec![f32::NAN; m * n];
                sgemm(m, &a, k, &packed, None, None, &mut separate, true);
                for row in separate.chunks_mut(n) {
                    for (v, b) in row.iter_mut().zip(&bias) {
                        *v += b;
                    }
                }
                for (i, (x, y)) in fused.iter().zip(&separate).enumerate() {
                    assert_eq!(x.to_bits(), y.to_bits(), "{isa:?} {m}x{n}x{k} [{i}]");
                }
            }
        }
    }

    #[test]
    fn narrow_products_give_the_same_bits_on_avx2_tiles_as_on_avx512() {
        // At most 16 columns pack for the AVX2 kernels on an AVX-512
        // machine; the values must be those of the AVX-512 kernels.
        let isas = Isa::available();
        if !(isas.contains(&Isa::Avx512Vnni) && isas.contains(&Isa::Avx2)) {
            return;
        }
        for &(m, n, k) in &[(4096, 16, 32), (13, 5, 300), (1, 16, 600), (37, 9, 17)] {
            let a = values(m * k, 21 + m as u64);
            let b = values(k * n, 22 + n as u64);
            let bias = values(n, 23);
            let narrow = PackedB::pack(&b, k, n, n, 1);
            assert_eq!(narrow.isa, Isa::Avx2);
            let wide = PackedB::pack_for(Isa::Avx512Vnni, &b, k, n, n, 1);
            let (mut x, mut y) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            sgemm(m, &a, k, &narrow, Some(&bias), None, &mut x, true);
            sgemm(m, &a, k, &wide, Some(&bias), None, &mut y, true);
            for (i, (x, y)) in x.iter().zip(&y).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "{m}x{n}x{k} [{i}]");
            }
        }
    }

    #[test]
    fn a_single_column_gives_the_bits_of_the_tiles() {
        // A product with n = 1 takes its own path: its values must be those
        // of the first column of the same product through the tiles (n =
        // 2), over several blocks of k, ragged groups of eight rows, with
        // and without the bias and on several threads.
        for isa in Isa::available() {
            for &(m, k) in &[
                (1, 1),
                (7, 5),
                (8, 16),
                (13, 30),
                (100, 300),
                (37, 700),
                (4096, 16),
            ] {
                let a = values(m * k, 11 + m as u64);
                let column = values(k, 12 + k as u64);
                let wide: Vec<f32> = column.iter().flat_map(|&v| [v, 0.5 - v]).collect();
                let bias = [0.25f32, -1.0];
                let one = PackedB::pack_for(isa, &column, k, 1, 1, 1);
                let two = PackedB::pack_for(isa, &wide, k, 2, 2, 1);
                for with_bias in [false, true] {
                    let (b1, b2) = if with_bias {
                        (Some(&bias[..1]), Some(&bias[..]))
                    } else {
                        (None, None)
                    };
                    let mut single = vec![f32::NAN; m];
                    sgemm(m, &a, k, &one, b1, None, &mut single, true);
                    let mut tiles = vec![f32::NAN; m * 2];
                    sgemm(m, &a, k, &two, b2, None, &mut tiles, true);
                    for (i, x) in single.iter().enumerate() {
                        let y = tiles[i * 2];
                        assert_eq!(
                            x.to_bits(),
                            y.to_bits(),
                            "{isa:?} {m}x{k} bias {with_bias} [{i}]"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros_or_the_bias() {
        for isa in Isa::available() {
            let packed = PackedB::pack_for(isa, &[], 0, 3, 3, 1);
            let mut c = vec![f32::NAN; 6];
            sgemm(2, &[], 0, &packed, None, None, &mut c, false);
            assert_eq!(c, vec![0.0; 6]);
            sgemm(
                2,
                &[],
                0,
                &packed,
                Some(&[1.0, 2.0, 3.0]),
                None,
                &mut c,
                false,
            );
            assert_eq!(c, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        }
    }

    #[test]
    fn the_bias_is_added_to_every_row() {
        let (m, n, k) = (30, 45, 600);
        let a = values(m * k, 5);
        let b = values(k * n, 6);
        let bias = values(n, 7);
        let packed = PackedB::pack(&b, k, n, n, 1);
        let (mut plain, mut biased) = (vec![0f32; m * n], vec![0f32; m * n]);
        sgemm(m, &a, k, &packed, None, None, &mut plain, false);
        sgemm(m, &a, k, &packed, Some(&bias), None, &mut biased, true);
        for (i, (p, q)) in plain.iter().zip(&biased).enumerate() {
            assert_eq!(p + bias[i % n], *q);
        }
    }

    #[test]
    fn the_activation_is_applied_once_to_every_value() {
        // (7, 270, 100): 9 panels of 32 for 4 runs once left the last run empty.
        for &(m, n, k) in &[(200, 300, 50), (7, 70, 300), (7, 270, 100), (1, 5, 0)] {
            let a = values(m * k, 8);
            let b = values(k * n, 9);
            let bias = values(n, 10);
            let packed = PackedB::pack(&b, k, n, n, 1);
            let (mut plain, mut activated) = (vec![0f32; m * n], vec![0f32; m * n]);
            sgemm(m, &a, k, &packed, Some(&bias), None, &mut plain, false);
            let twice_plus_one = |row: &mut [f32]| row.iter_mut().for_each(|v| *v = *v * 2.0 + 1.0);
            sgemm(
                m,
                &a,
                k,
                &packed,
                Some(&bias),
                Some(&twice_plus_one),
                &mut activated,
                true,
            );
            for (p, q) in plain.iter().zip(&activated) {
                assert_eq!(p * 2.0 + 1.0, *q, "{m}x{n}x{k}");
            }
        }
    }

    #[test]
    fn unpacking_gives_b_back() {
        for isa in Isa::available() {
            for &(k, n) in &[(1, 1), (7, 33), (64, 100), (0, 3)] {
                let b = values(k * n, 11);
                assert_eq!(
                    PackedB::pack_for(isa, &b, k, n, n, 1).unpack(),
                    b,
                    "{isa:?} {k}x{n}"
                );
            }
        }
    }

    /// B (k x n) laid out with the given strides, the gaps filled with
    /// values that must not be packed.
    fn strided(b: &[f32], k: usize, n: usize, row_stride: usize, col_stride: usize) -> Vec<f32> {
        let len = (k.max(1) - 1) * row_stride + (n.max(1) - 1) * col_stride + 1;
        let mut v = vec![f32::NAN; len];
        for p in 0..k {
            for j in 0..n {
                v[p * row_stride + j * col_stride] = b[p * n + j];
            }
        }
        v
    }

    #[test]
    fn every_layout_packs_b_and_a_reused_packing_equals_a_fresh_one() {
        // One packing reused across shapes and layouts, as an attention's
        // heads reuse theirs: every value (padding included) must be what a
        // fresh packing holds, whatever was packed before.
        let mut reused = PackedB::empty();
        // Row-major with a gap after each row, transposed with a gap after
        // each column (an attention head's keys among others'), and both
        // strides above one.
        type Strides = fn(usize, usize) -> (usize, usize);
        let layouts: [Strides; 3] = [|_, n| (n + 3, 1), |k, _| (1, k + 5), |_, n| (2 * n + 1, 2)];
        for layout in layouts {
            // (8 x 32 then 16 x 8: the same length, the second with padding
            // where the first had values.)
            for &(k, n) in &[
                (37, 45),
                (32, 128),
                (5, 3),
                (8, 32),
                (16, 8),
                (19, 8),
                (0, 4),
                (8, 0),
            ] {
                let b = values(k * n, (k * 100 + n) as u64);
                let (rs, cs) = layout(k, n);
                let laid = strided(&b, k, n, rs, cs);
                let fresh = PackedB::pack(&laid, k, n, rs, cs);
                assert_eq!(fresh.unpack(), b, "{k}x{n} strides {rs},{cs}");
                reused.repack(&laid, k, n, rs, cs);
                assert_eq!(
                    reused.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    fresh.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{k}x{n} strides {rs},{cs}"
                );
                assert_eq!((reused.k, reused.n, reused.isa), (k, n, fresh.isa));
            }
        }
    }

    #[test]
    fn a_transposed_b_packs_through_its_strides() {
        let (m, n, k) = (5, 9, 11);
        let a = values(m * k, 3);
        let b = values(k * n, 4);
        // bt is B transposed (n x k): element (p, j) of B sits at bt[j * k + p].
        let mut bt = vec![0f32; n * k];
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        let mut c1 = vec![0f32; m * n];
        let mut c2 = vec![0f32; m * n];
        sgemm(
            m,
            &a,
            k,
            &PackedB::pack(&b, k, n, n, 1),
            None,
            None,
            &mut c1,
            false,
        );
        sgemm(
            m,
            &a,
            k,
            &PackedB::pack(&bt, k, n, 1, k),
            None,
            None,
            &mut c2,
            false,
        );
        assert_eq!(c1, c2);
    }
}
