//! 8-bit integer matrix product into int32, as MatMulInteger defines it:
//! C = (A - a_zero_point) (B - b_zero_point), exactly.
//!
//! Every combination of uint8 and int8 operands becomes uint8 x int8 (A + 128
//! when A is signed, B - 128 when B is unsigned, the zero points shifted
//! alike), the form the dot-product instructions take. The kernels compute
//! the raw sums of A'B'; the zero points come in afterwards through the row
//! sums of A' and the column sums of B':
//!   C = S - za * colsum(B') - zb * rowsum(A') + k * za * zb.
//!
//! AMX (Intel's tile unit) multiplies a 16 x 64 block of uint8 by a 64 x 16
//! block of int8 into 16 x 16 int32 sums in one instruction (tdpbusd);
//! ONNX Runtime uses it too where the CPU has it. AVX-512 VNNI multiplies
//! four uint8 x int8 pairs per 32-bit lane in one instruction (vpdpbusd, no
//! saturation). AVX2 widens to 16 bits and uses
//! vpmaddwd, which is exact too (vpmaddubsw would saturate at 2 x 255 x 127).

use rayon::prelude::*;

use super::{amx, isa, threads, Activation, Isa, SharedMut};

const PARALLEL_WORK: usize = 1 << 17;
/// The same for the AMX tiles, which finish a small product quickly: with
/// the pool's threads kept awake during a run (`KeepAwake`), splitting from
/// 4 M multiply-adds on made int8 MiniLM-L3 at 1 x 128 8% faster than
/// waiting for 32 M (which had paid when the other thread slept: 128 x 384
/// x 384 then took 38 us on one thread and 43 us on two).
const PARALLEL_WORK_AMX: usize = 1 << 22;

/// Products of fewer rows than this run on the VNNI kernels even where the
/// weights were packed for AMX (the panels are laid out alike): a tile
/// loads 32 rows, and with 16 real ones the tile loads of the weights
/// dominate; int8 MiniLM-L3 at 1 x 16 tokens took 23% less time this way.
const AMX_MIN_ROWS: usize = 32;

/// (rows per tile, columns per tile, k values per 32-bit lane).
fn tile_shape(isa: Isa) -> (usize, usize, usize) {
    match isa {
        Isa::Avx512Vnni => (12, 32, 4),
        Isa::Avx2 => (6, 16, 2),
        Isa::Neon => (8, 8, 4),
        Isa::Reference => (4, 16, 4),
    }
}

#[derive(Debug)]
enum Panels {
    /// Four int8 values of one column per 32-bit lane (VNNI, reference).
    Bytes(Vec<i8>),
    /// Two int16 values of one column per 32-bit lane (AVX2).
    Words(Vec<i16>),
}

/// B (k x n) as int8 in panels of columns, with its column sums and zero
/// points (one, or one per column), shifted to the signed form.
#[derive(Debug)]
pub struct PackedIntB {
    pub k: usize,
    pub n: usize,
    /// Whether B was int8 (else uint8, stored shifted by -128).
    pub signed: bool,
    isa: Isa,
    /// Packed for the AMX tiles: groups padded to whole tiles of 16.
    amx: bool,
    groups: usize,
    panels: Panels,
    col_sums: Vec<i32>,
    zero_points: Vec<i32>,
}

impl PackedIntB {
    /// `b` holds B's values row-major (uint8 when `!signed`, else int8);
    /// `zero_point` has one value or n.
    pub fn pack(b: &[i32], k: usize, n: usize, signed: bool, zero_point: &[i32]) -> PackedIntB {
        Self::pack_for(isa(), b, k, n, signed, zero_point)
    }

    pub fn pack_for(
        isa: Isa,
        b: &[i32],
        k: usize,
        n: usize,
        signed: bool,
        zero_point: &[i32],
    ) -> PackedIntB {
        Self::pack_with(
            isa,
            isa == Isa::Avx512Vnni && amx(),
            b,
            k,
            n,
            signed,
            zero_point,
        )
    }

    /// As `pack_for`, choosing between the AMX and the VNNI kernels (`amx`
    /// only with the AVX-512 set, on a machine that has it).
    pub fn pack_with(
        isa: Isa,
        amx: bool,
        b: &[i32],
        k: usize,
        n: usize,
        signed: bool,
        zero_point: &[i32],
    ) -> PackedIntB {
        assert!(!amx || isa == Isa::Avx512Vnni);
        let shift = if signed { 0 } else { 128 };
        let (_, nr, group) = tile_shape(isa);
        // The tiles take 64 values of k at a time; the padding is zeros.
        let groups = if amx {
            k.div_ceil(64) * 16
        } else {
            k.div_ceil(group)
        };
        let panel_len = groups * nr * group;
        let panel_count = n.div_ceil(nr);
        let at = |p: usize, j: usize| (b[p * n + j] - shift) as i16;
        let place = |panel: usize, p: usize, c: usize| {
            panel * panel_len + (p / group) * nr * group + c * group + p % group
        };
        let panels = if group == 4 {
            let mut data = vec![0i8; panel_count * panel_len];
            for p in 0..k {
                for j in 0..n {
                    data[place(j / nr, p, j % nr)] = at(p, j) as i8;
                }
            }
            Panels::Bytes(data)
        } else {
            let mut data = vec![0i16; panel_count * panel_len];
            for p in 0..k {
                for j in 0..n {
                    data[place(j / nr, p, j % nr)] = at(p, j);
                }
            }
            Panels::Words(data)
        };
        let col_sums = (0..n)
            .map(|j| (0..k).map(|p| at(p, j) as i32).sum())
            .collect();
        let zero_points = zero_point.iter().map(|z| z - shift).collect();
        PackedIntB {
            k,
            n,
            signed,
            isa,
            amx,
            groups,
            panels,
            col_sums,
            zero_points,
        }
    }

    /// B's values again, row-major (k x n), as given to `pack`.
    pub fn unpack(&self) -> Vec<i32> {
        let (_, nr, group) = tile_shape(self.isa);
        let shift = if self.signed { 0 } else { 128 };
        let panel_len = self.groups * nr * group;
        let mut b = vec![0i32; self.k * self.n];
        for p in 0..self.k {
            for j in 0..self.n {
                let at =
                    (j / nr) * panel_len + (p / group) * nr * group + (j % nr) * group + p % group;
                let v = match &self.panels {
                    Panels::Bytes(d) => d[at] as i32,
                    Panels::Words(d) => d[at] as i32,
                };
                b[p * self.n + j] = v + shift;
            }
        }
        b
    }

    fn zero_point(&self, j: usize) -> i32 {
        if self.zero_points.len() == 1 {
            self.zero_points[0]
        } else {
            self.zero_points[j]
        }
    }
}

/// A as the kernels read it: uint8 values A' (A + 128 when A is int8), one
/// row after another.
pub enum IntA<'a> {
    Unsigned(&'a [u8]),
    Signed(&'a [i16]),
}

/// A scale applied to the product's floats: one value, one per column,
/// one per row.
#[derive(Debug, Clone, Copy)]
pub enum Scale<'a> {
    One(f32),
    PerColumn(&'a [f32]),
    PerRow(&'a [f32]),
}

impl Scale<'_> {
    fn check(&self, m: usize, n: usize) {
        match self {
            Scale::PerColumn(v) => assert!(v.len() >= n),
            Scale::PerRow(v) => assert!(v.len() >= m),
            Scale::One(_) => {}
        }
    }
}

/// Where the sums go: int32 as they are, or floats as Cast, Mul (s1), Mul
/// (s2) and Add (bias) of them would give, in that order, then the
/// activation if any.
pub enum Output<'a> {
    Int32(&'a mut [i32]),
    Float {
        out: &'a mut [f32],
        s1: Scale<'a>,
        s2: Option<Scale<'a>>,
        bias: Option<&'a [f32]>,
        activation: Activation<'a>,
    },
}

/// C (m x n, row-major) = (A - za) (B - zb), A being m x k, written as
/// `output` says; `zero_point` has one value or m (per row).
pub fn matmul_integer(
    m: usize,
    a: IntA,
    zero_point: &[i32],
    b: &PackedIntB,
    output: Output,
    parallel: bool,
) {
    let (k, n) = (b.k, b.n);
    let (c_int, c_float, s1, s2, bias, activation) = match output {
        Output::Int32(c) => {
            assert!(c.len() >= m * n);
            (
                SharedMut(c.as_mut_ptr()),
                SharedMut(std::ptr::null_mut()),
                Scale::One(1.0),
                None,
                None,
                None,
            )
        }
        Output::Float {
            out,
            s1,
            s2,
            bias,
            activation,
        } => {
            assert!(out.len() >= m * n && bias.is_none_or(|b| b.len() >= n));
            s1.check(m, n);
            if let Some(s) = &s2 {
                s.check(m, n);
            }
            (
                SharedMut(std::ptr::null_mut()),
                SharedMut(out.as_mut_ptr()),
                s1,
                s2,
                bias,
                activation,
            )
        }
    };
    let floats = !c_float.get().is_null();
    let (mr, nr, group) = tile_shape(b.isa);
    let groups = b.groups;
    // A' as one 32-bit word per group of k values (row by row, padded with
    // zeros to whole groups), and the row sums of A'.
    let (shift, converted);
    let bytes: &[u8] = match a {
        IntA::Unsigned(v) => {
            shift = 0;
            v
        }
        IntA::Signed(v) => {
            shift = 128;
            converted = v.iter().map(|&x| (x + 128) as u8).collect::<Vec<u8>>();
            &converted
        }
    };
    assert!(bytes.len() >= m * k);
    // The AMX tiles read A' where it lies when its rows are whole tiles of k
    // (k a multiple of 64); otherwise from a copy padded to whole tiles and
    // to 32 rows.
    let amx_here = b.amx && m >= AMX_MIN_ROWS;
    let in_place = amx_here && groups * 4 == k;
    let packed_a = if in_place {
        Vec::new()
    } else {
        let a_rows = if amx_here {
            m.next_multiple_of(AMX_ROWS)
        } else {
            m
        };
        pack_a(m, a_rows, k, groups, group, bytes)
    };
    let za_of = |i: usize| {
        shift
            + if zero_point.len() == 1 {
                zero_point[0]
            } else {
                zero_point[i]
            }
    };
    let per_row_za = zero_point.len() > 1;
    // With one zero point for A, each column's correction is known up front:
    // -za * colsum + k * za * zb; each row then subtracts zb * rowsum.
    let zb: Vec<i32> = (0..n).map(|j| b.zero_point(j)).collect();
    let any_zb = zb.iter().any(|&z| z != 0);
    // The row sums of A' matter only with zero points of B or per row.
    let row_sums: Vec<i32> = if per_row_za || any_zb {
        bytes[..m * k]
            .chunks(k.max(1))
            .take(m)
            .map(|row| row.iter().map(|&x| x as i32).sum())
            .collect()
    } else {
        Vec::new()
    };
    let column_terms: Vec<i32> = (0..n)
        .map(|j| {
            let za = za_of(0);
            -za * b.col_sums[j] + k as i32 * za * zb[j]
        })
        .collect();
    // The end of every path but the register epilogues: the zero points
    // through the row and column sums, then the row stored as int32 or as
    // floats (row i, columns j0.., the raw sums of a tile's row).
    let finish = |i: usize, j0: usize, row: &mut [i32]| {
        let cols = row.len();
        if per_row_za {
            let (za, rs) = (za_of(i), row_sums[i]);
            for (cc, v) in row.iter_mut().enumerate() {
                let j = j0 + cc;
                *v += -za * b.col_sums[j] - zb[j] * rs + k as i32 * za * zb[j];
            }
        } else if any_zb {
            let rs = row_sums[i];
            for ((v, t), z) in row.iter_mut().zip(&column_terms[j0..]).zip(&zb[j0..]) {
                *v += t - z * rs;
            }
        } else {
            for (v, t) in row.iter_mut().zip(&column_terms[j0..]) {
                *v += t;
            }
        }
        // SAFETY: the caller's tile alone writes row i, columns
        // j0..j0+cols, inside the m x n output.
        unsafe {
            if floats {
                let out = std::slice::from_raw_parts_mut(c_float.get().add(i * n + j0), cols);
                let at = |s: &Scale, j: usize| match s {
                    Scale::One(v) => *v,
                    Scale::PerColumn(v) => v[j],
                    Scale::PerRow(v) => v[i],
                };
                for (cc, (o, v)) in out.iter_mut().zip(row.iter()).enumerate() {
                    let j = j0 + cc;
                    let mut x = *v as f32 * at(&s1, j);
                    if let Some(s) = &s2 {
                        x *= at(s, j);
                    }
                    if let Some(b) = bias {
                        x += b[j];
                    }
                    *o = x;
                }
            } else {
                let out = std::slice::from_raw_parts_mut(c_int.get().add(i * n + j0), cols);
                out.copy_from_slice(row);
            }
        }
    };
    // Floats straight from the registers when the zero points reduce to one
    // term per column (the x86 kernels).
    #[cfg(target_arch = "x86_64")]
    let register_epilogue = floats && !per_row_za && !any_zb;
    #[cfg(target_arch = "x86_64")]
    let epilogue = |i0: usize, j0: usize| x86::Epilogue {
        out: c_float.get().wrapping_add(i0 * n + j0),
        ldc: n,
        column_terms: column_terms[j0..].as_ptr(),
        s1: x86::Lane::of(&s1, i0, j0),
        s2: s2.as_ref().map(|s| x86::Lane::of(s, i0, j0)),
        bias: bias.map(|b| b[j0..].as_ptr()),
    };
    let panel_count = n.div_ceil(nr);
    let panel_len = groups * nr * group;
    let threshold = if amx_here {
        PARALLEL_WORK_AMX
    } else {
        PARALLEL_WORK
    };
    let parallel = parallel && threads() > 1 && m * n * k >= threshold;

    #[cfg(target_arch = "x86_64")]
    if amx_here {
        let Panels::Bytes(data) = &b.panels else {
            unreachable!("AMX panels are bytes")
        };
        // Blocks of 32 rows x one 32-column panel; consecutive blocks share
        // the panel, which stays in cache while A' streams by.
        let row_blocks = m.div_ceil(AMX_ROWS);
        let blocks = row_blocks * panel_count;
        let lda = groups * 4;
        // Read in place, the last partial block of rows comes from a
        // zero-padded copy of its own (the tiles load 32 rows).
        let whole_rows = m - m % AMX_ROWS;
        let tail: Vec<u8> = if in_place && whole_rows < m {
            let mut tail = vec![0u8; AMX_ROWS * lda];
            tail[..(m - whole_rows) * lda].copy_from_slice(&bytes[whole_rows * k..m * k]);
            tail
        } else {
            Vec::new()
        };
        let a_block = |i0: usize| -> *const u8 {
            if !in_place {
                (packed_a.as_ptr() as *const u8).wrapping_add(i0 * lda)
            } else if i0 < whole_rows {
                bytes[i0 * k..].as_ptr()
            } else {
                tail.as_ptr()
            }
        };
        let block = |t: usize, sums: &mut [i32; AMX_ROWS * 32]| {
            let (rb, panel) = (t / panel_count, t % panel_count);
            let (i0, j0) = (rb * AMX_ROWS, panel * nr);
            let rows = AMX_ROWS.min(m - i0);
            let cols = nr.min(n - j0);
            // SAFETY: a_block gives 32 rows of `lda` bytes (a multiple of
            // 64: `groups` is a multiple of 16), B's panel has `groups`
            // groups of 128 bytes; `sums` holds 32 x 32 values. The tile
            // configuration is loaded by the caller (with_tiles).
            unsafe {
                x86::amx_sums(
                    groups / 16,
                    a_block(i0),
                    lda,
                    data[panel * panel_len..].as_ptr(),
                    sums.as_mut_ptr(),
                );
                if register_epilogue {
                    // SAFETY: rows i0..i0+rows, columns j0..j0+cols of the
                    // output are this block's alone.
                    x86::float_rows(sums.as_ptr(), 32, rows, cols, &epilogue(i0, j0));
                    return;
                }
            }
            for r in 0..rows {
                finish(i0 + r, j0, &mut sums[r * 32..r * 32 + cols]);
            }
        };
        // Each task loads the tile configuration once for its run of blocks.
        let tasks = if parallel {
            (threads() * 4).min(blocks)
        } else {
            1
        };
        let per_task = blocks.div_ceil(tasks.max(1));
        let task = |task: usize| {
            let mut sums = [0i32; AMX_ROWS * 32];
            // SAFETY: the CPU has AMX and the process its tile state (amx()).
            let range = task * per_task..((task + 1) * per_task).min(blocks);
            unsafe {
                x86::with_tiles(|| {
                    for t in range.clone() {
                        block(t, &mut sums);
                        // The activation on a row block's run of panels in
                        // this task, once it is done, while it is in cache.
                        let (rb, panel) = (t / panel_count, t % panel_count);
                        if let (Some(f), true) =
                            (activation, panel + 1 == panel_count || t + 1 == range.end)
                        {
                            let first = range.start.max(rb * panel_count) % panel_count;
                            let (j0, j1) = (first * nr, ((panel + 1) * nr).min(n));
                            for i in rb * AMX_ROWS..((rb + 1) * AMX_ROWS).min(m) {
                                // SAFETY: these blocks are this task's alone.
                                f(std::slice::from_raw_parts_mut(
                                    c_float.get().add(i * n + j0),
                                    j1 - j0,
                                ));
                            }
                        }
                    }
                })
            };
        };
        if tasks > 1 {
            (0..tasks).into_par_iter().for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
        return;
    }

    let row_blocks = m.div_ceil(mr);
    let tiles = row_blocks * panel_count;
    // Tiles go chunk of rows by chunk of rows, each chunk meeting every
    // panel in turn: a chunk of A' stays in L2 while the panels pass by.
    // Panel by panel over all the rows, A' came from L3 again for every
    // panel once it outgrew L2 (int8 MiniLM-L3 at 8 x 128: 1024 rows, 768
    // KB of A' on AVX2).
    let chunk_blocks = (CHUNK_BYTES / (groups * 4 * mr).max(1)).clamp(1, row_blocks.max(1));
    let run = |t: usize| {
        let chunk = t / (chunk_blocks * panel_count);
        let within = t % (chunk_blocks * panel_count);
        let blocks_here = chunk_blocks.min(row_blocks - chunk * chunk_blocks);
        let panel = within / blocks_here;
        let block = chunk * chunk_blocks + within % blocks_here;
        let (i0, j0) = (block * mr, panel * nr);
        let rows = mr.min(m - i0);
        let cols = nr.min(n - j0);
        let ap = &packed_a[i0 * groups..];
        #[cfg(target_arch = "x86_64")]
        if register_epilogue && b.isa == Isa::Avx512Vnni {
            if let Panels::Bytes(data) = &b.panels {
                // SAFETY: the tile's rows i0..i0+rows and columns j0..j0+cols
                // are inside the m x n output and written by this tile only;
                // the scales and the bias were checked against m and n.
                unsafe {
                    x86::tile_vnni_float(
                        groups,
                        ap,
                        &data[panel * panel_len..],
                        rows,
                        cols,
                        &epilogue(i0, j0),
                    );
                }
                return;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if register_epilogue && b.isa == Isa::Avx2 && cols == nr {
            if let Panels::Words(data) = &b.panels {
                // SAFETY: as for VNNI above; the tile is whole (16 columns).
                unsafe {
                    x86::tile_avx2_float(
                        groups,
                        ap,
                        &data[panel * panel_len..],
                        rows,
                        &epilogue(i0, j0),
                    );
                }
                return;
            }
        }
        // The raw sums of this tile, in a buffer of its own (nr apart).
        let mut tile = [0i32; 12 * 32];
        // SAFETY: the kernels write `rows` rows of `cols` values, nr apart,
        // inside the tile buffer; A' has `rows` rows of `groups` words and
        // the panel is whole.
        unsafe {
            let cp = tile.as_mut_ptr();
            match &b.panels {
                #[cfg(target_arch = "x86_64")]
                Panels::Bytes(data) if b.isa == Isa::Avx512Vnni => {
                    x86::tile_vnni(groups, ap, &data[panel * panel_len..], cp, nr, rows, cols)
                }
                #[cfg(target_arch = "aarch64")]
                Panels::Bytes(data) if b.isa == Isa::Neon => arm::tile_dot(
                    groups,
                    ap,
                    &data[panel * panel_len..],
                    cp,
                    nr,
                    rows,
                    cols,
                    &b.col_sums[j0..],
                ),
                Panels::Bytes(data) => tile_reference(
                    groups,
                    ap,
                    &data[panel * panel_len..(panel + 1) * panel_len],
                    nr,
                    cp,
                    nr,
                    rows,
                    cols,
                ),
                #[cfg(target_arch = "x86_64")]
                Panels::Words(data) => {
                    x86::tile_avx2(groups, ap, &data[panel * panel_len..], cp, nr, rows, cols)
                }
                #[cfg(not(target_arch = "x86_64"))]
                Panels::Words(_) => unreachable!("16-bit panels are packed for AVX2 only"),
            }
        }
        for r in 0..rows {
            finish(i0 + r, j0, &mut tile[r * nr..r * nr + cols]);
        }
    };
    if parallel && tiles > 1 {
        let per_task = (tiles / (threads() * 4)).max(1);
        (0..tiles)
            .into_par_iter()
            .with_min_len(per_task)
            .for_each(run);
    } else {
        (0..tiles).for_each(run);
    }
    if let Some(f) = activation {
        // SAFETY: floats were written to all m x n values above.
        let out = unsafe { std::slice::from_raw_parts_mut(c_float.get(), m * n) };
        let rows_per_task = m.div_ceil(threads() * 4).max(1);
        if parallel && m > 1 {
            out.par_chunks_mut(rows_per_task * n.max(1))
                .for_each(|rows| rows.chunks_mut(n.max(1)).for_each(f));
        } else {
            out.chunks_mut(n.max(1)).for_each(f);
        }
    }
}

/// Bytes of packed A' per chunk of rows that meets every panel in turn
/// (well inside a 512 KB L2 with the panel beside it).
const CHUNK_BYTES: usize = 128 << 10;

/// Rows of A' per AMX block (two tiles of 16).
const AMX_ROWS: usize = 32;

/// Packs the m rows of A' into 32-bit words of `group` values (bytes for
/// groups of 4, 16-bit halves for groups of 2; the first value in the low
/// bits), each row padded with zeros to `groups` words and the rows with
/// zero rows to `rows`.
fn pack_a(m: usize, rows: usize, k: usize, groups: usize, group: usize, a: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; rows * groups];
    for (out, row) in words
        .chunks_mut(groups.max(1))
        .zip(a.chunks(k.max(1)))
        .take(m)
    {
        if group == 4 && cfg!(target_endian = "little") {
            // The bytes of little-endian words are the values in order.
            // SAFETY: u8 has no alignment or validity requirements; the view
            // covers exactly this row's words.
            let view = unsafe {
                std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, out.len() * 4)
            };
            view[..row.len()].copy_from_slice(row);
        } else if group == 2 && cfg!(target_endian = "little") {
            // Likewise the 16-bit halves: each value widened in place (a
            // loop the compiler vectorizes; the general fold below does
            // not, and cost 7% of int8 MiniLM-L3 at 8 x 128 on AVX2).
            // SAFETY: u16 needs less alignment than u32 and has no invalid
            // values; the view covers exactly this row's words.
            let view = unsafe {
                std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u16, out.len() * 2)
            };
            for (half, &v) in view.iter_mut().zip(row) {
                *half = u16::from(v);
            }
        } else {
            let bits = 32 / group as u32;
            for (w, chunk) in out.iter_mut().zip(row.chunks(group)) {
                *w = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |word, (q, &v)| word | (v as u32) << (bits * q as u32));
            }
        }
    }
    words
}

/// The plain version the vector kernels are checked against (raw sums of
/// A'B' over the byte layout).
///
/// # Safety
/// `c` must hold `rows` rows of `ldc` values with `cols` valid columns.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_reference(
    groups: usize,
    a: &[u32],
    b: &[i8],
    nr: usize,
    c: *mut i32,
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    for r in 0..rows {
        for j in 0..cols {
            let mut sum = 0i32;
            for g in 0..groups {
                let word = a[r * groups + g];
                for q in 0..4 {
                    let x = ((word >> (8 * q)) & 0xff) as i32;
                    sum += x * b[g * nr * 4 + j * 4 + q] as i32;
                }
            }
            *c.add(r * ldc + j) = sum;
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    /// Dispatches to the micro-kernel for `rows` rows.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_dot(
        groups: usize,
        a: &[u32],
        b: &[i8],
        c: *mut i32,
        ldc: usize,
        rows: usize,
        cols: usize,
        col_sums: &[i32],
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_dot::<$r>(groups, a.as_ptr(), b.as_ptr(), c, ldc, cols, col_sums.as_ptr()),)*
                    _ => unreachable!("at most 8 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6 7 8)
    }

    /// acc + the four products of signed bytes per lane (sdot; the
    /// intrinsic is not stable in Rust yet).
    #[inline(always)]
    unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        std::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack)
        );
        acc
    }

    /// The raw sums of A'B for an MR x 8 tile. sdot multiplies signed bytes,
    /// so A' - 128 goes in (a flip of each byte's top bit), and 128 times
    /// each column's sum of B comes back at the end.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn kernel_dot<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i8,
        c: *mut i32,
        ldc: usize,
        cols: usize,
        col_sums: *const i32,
    ) {
        let mut acc = [[vdupq_n_s32(0); 2]; MR];
        for g in 0..groups {
            let b0 = vld1q_s8(b.add(g * 32));
            let b1 = vld1q_s8(b.add(g * 32 + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let word = (*a.add(r * groups + g) ^ 0x8080_8080) as i32;
                let x = vreinterpretq_s8_s32(vdupq_n_s32(word));
                acc[0] = sdot(acc[0], x, b0);
                acc[1] = sdot(acc[1], x, b1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut tmp = [0i32; 8];
            vst1q_s32(tmp.as_mut_ptr(), acc[0]);
            vst1q_s32(tmp.as_mut_ptr().add(4), acc[1]);
            for (j, v) in tmp.iter().enumerate().take(cols) {
                *c.add(r * ldc + j) = v + 128 * *col_sums.add(j);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub unsafe fn tile_vnni(
        groups: usize,
        a: &[u32],
        b: &[i8],
        c: *mut i32,
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_vnni::<$r>(groups, a.as_ptr(), b.as_ptr(), c, ldc, cols),)*
                    _ => unreachable!("at most 12 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6 7 8 9 10 11 12)
    }

    /// A scale as the float epilogue reads it, from a tile's corner.
    pub enum Lane {
        One(f32),
        /// One value per column, from the tile's first column.
        Columns(*const f32),
        /// One value per row, from the tile's first row.
        Rows(*const f32),
    }

    impl Lane {
        pub fn of(s: &super::Scale, i0: usize, j0: usize) -> Lane {
            match s {
                super::Scale::One(v) => Lane::One(*v),
                super::Scale::PerColumn(v) => Lane::Columns(v[j0..].as_ptr()),
                super::Scale::PerRow(v) => Lane::Rows(v[i0..].as_ptr()),
            }
        }

        #[inline(always)]
        unsafe fn load(&self, r: usize, c: usize, mask: __mmask16) -> __m512 {
            match self {
                Lane::One(v) => _mm512_set1_ps(*v),
                Lane::Rows(p) => _mm512_set1_ps(*p.add(r)),
                Lane::Columns(p) => _mm512_maskz_loadu_ps(mask, p.add(c)),
            }
        }
    }

    pub struct Epilogue {
        pub out: *mut f32,
        pub ldc: usize,
        pub column_terms: *const i32,
        pub s1: Lane,
        pub s2: Option<Lane>,
        pub bias: Option<*const f32>,
    }

    pub unsafe fn tile_vnni_float(
        groups: usize,
        a: &[u32],
        b: &[i8],
        rows: usize,
        cols: usize,
        e: &Epilogue,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_vnni_float::<$r>(groups, a.as_ptr(), b.as_ptr(), cols, e),)*
                    _ => unreachable!("at most 12 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6 7 8 9 10 11 12)
    }

    /// The VNNI product, then in registers: + column term, to float, * s1,
    /// * s2, + bias, stored as floats (what Cast, Mul, Mul, Add compute).
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn kernel_vnni_float<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i8,
        cols: usize,
        e: &Epilogue,
    ) {
        let acc = vnni_sums::<MR>(groups, a, b);
        let masks = column_masks(cols);
        for (r, acc) in acc.iter().enumerate() {
            float_row(*acc, r, masks, e);
        }
    }

    /// Row r of a tile's raw sums (two halves of 16 columns) through the
    /// float epilogue into the output.
    #[inline(always)]
    unsafe fn float_row(
        sums: [__m512i; 2],
        r: usize,
        (m0, m1): (__mmask16, __mmask16),
        e: &Epilogue,
    ) {
        let row = e.out.add(r * e.ldc);
        for (h, (mask, offset)) in [(m0, 0usize), (m1, 16usize)].into_iter().enumerate() {
            if mask == 0 {
                continue;
            }
            let terms = _mm512_maskz_loadu_epi32(mask, e.column_terms.add(offset));
            let sums = _mm512_add_epi32(sums[h], terms);
            let mut x = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), e.s1.load(r, offset, mask));
            if let Some(s2) = &e.s2 {
                x = _mm512_mul_ps(x, s2.load(r, offset, mask));
            }
            if let Some(bias) = e.bias {
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, bias.add(offset)));
            }
            _mm512_mask_storeu_ps(row.add(offset), mask, x);
        }
    }

    /// The float epilogue of `rows` rows of raw sums, `ld` apart.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn float_rows(sums: *const i32, ld: usize, rows: usize, cols: usize, e: &Epilogue) {
        let masks = column_masks(cols);
        for r in 0..rows {
            let row = sums.add(r * ld);
            let halves = [
                _mm512_loadu_si512(row as *const _),
                _mm512_loadu_si512(row.add(16) as *const _),
            ];
            float_row(halves, r, masks, e);
        }
    }

    /// The AMX tile configuration: palette 1, eight tiles of 16 rows x 64
    /// bytes (tmm0-3: C as 16 x 16 int32; tmm4-5: A', 16 rows of 64 uint8;
    /// tmm6-7: B, 16 groups of 16 columns x 4 int8).
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    /// Runs `f` with the tile configuration loaded on this thread, and
    /// releases the tiles after (so that the thread's context switches stop
    /// saving 8 KB of tile state).
    ///
    /// # Safety
    /// The CPU must have AMX-INT8 and the process its tile state.
    pub unsafe fn with_tiles(f: impl FnOnce()) {
        let mut config = TileConfig([0; 64]);
        config.0[0] = 1;
        for t in 0..8 {
            config.0[16 + 2 * t] = 64;
            config.0[48 + t] = 16;
        }
        std::arch::asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        f();
        std::arch::asm!("tilerelease", options(nostack, nomem));
    }

    /// The raw sums of a 32 x 32 block into `c` (32 rows of 32 int32): 32
    /// rows of A' (`lda` bytes apart) times a 32-column panel of B (groups
    /// of 128 bytes: 32 columns x 4 values), `kblocks` blocks of 64 values
    /// of k. Two A tiles and two B tiles make four C tiles per block of k.
    ///
    /// # Safety
    /// Inside `with_tiles`; A' must hold 32 rows of kblocks x 64 bytes, the
    /// panel kblocks x 16 groups.
    pub unsafe fn amx_sums(kblocks: usize, a: *const u8, lda: usize, b: *const i8, c: *mut i32) {
        use std::arch::asm;
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        for kb in 0..kblocks {
            asm!(
                "tileloadd tmm4, [{a} + {lda}*1]",
                "tileloadd tmm5, [{a16} + {lda}*1]",
                "tileloadd tmm6, [{b} + {ldb}*1]",
                "tileloadd tmm7, [{b16} + {ldb}*1]",
                "tdpbusd tmm0, tmm4, tmm6",
                "tdpbusd tmm1, tmm4, tmm7",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                a = in(reg) a.add(kb * 64),
                a16 = in(reg) a.add(16 * lda + kb * 64),
                lda = in(reg) lda,
                b = in(reg) b.add(kb * 2048),
                b16 = in(reg) b.add(kb * 2048 + 64),
                ldb = in(reg) 128usize,
                options(nostack, readonly)
            );
        }
        asm!(
            "tilestored [{c} + {ldc}*1], tmm0",
            "tilestored [{c1} + {ldc}*1], tmm1",
            "tilestored [{c2} + {ldc}*1], tmm2",
            "tilestored [{c3} + {ldc}*1], tmm3",
            c = in(reg) c,
            c1 = in(reg) c.add(16),
            c2 = in(reg) c.add(16 * 32),
            c3 = in(reg) c.add(16 * 32 + 16),
            ldc = in(reg) 128usize,
            options(nostack)
        );
    }

    /// The raw sums of an MR x 32 tile: four uint8 x int8 products per lane
    /// and group of k.
    #[inline(always)]
    unsafe fn vnni_sums<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i8,
    ) -> [[__m512i; 2]; MR] {
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        for g in 0..groups {
            let b0 = _mm512_loadu_si512(b.add(g * 128) as *const _);
            let b1 = _mm512_loadu_si512(b.add(g * 128 + 64) as *const _);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(*a.add(r * groups + g) as i32);
                acc[0] = _mm512_dpbusd_epi32(acc[0], x, b0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], x, b1);
            }
        }
        acc
    }

    /// Store masks of the two 16-lane halves of a tile `cols` wide.
    #[inline(always)]
    fn column_masks(cols: usize) -> (__mmask16, __mmask16) {
        let m0 = if cols >= 16 {
            0xffff
        } else {
            (1u16 << cols) - 1
        };
        let m1 = if cols >= 32 {
            0xffff
        } else if cols > 16 {
            (1u16 << (cols - 16)) - 1
        } else {
            0
        };
        (m0, m1)
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn kernel_vnni<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i8,
        c: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        let acc = vnni_sums::<MR>(groups, a, b);
        let (m0, m1) = column_masks(cols);
        for (r, acc) in acc.iter().enumerate() {
            let row = c.add(r * ldc);
            _mm512_mask_storeu_epi32(row, m0, acc[0]);
            _mm512_mask_storeu_epi32(row.add(16), m1, acc[1]);
        }
    }

    pub unsafe fn tile_avx2(
        groups: usize,
        a: &[u32],
        b: &[i16],
        c: *mut i32,
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_avx2::<$r>(groups, a.as_ptr(), b.as_ptr(), c, ldc, cols),)*
                    _ => unreachable!("at most 6 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6)
    }

    /// The float epilogue from the registers of a whole AVX2 tile (16
    /// columns): as `tile_vnni_float`.
    pub unsafe fn tile_avx2_float(groups: usize, a: &[u32], b: &[i16], rows: usize, e: &Epilogue) {
        macro_rules! by_rows {
            ($($r:literal)*) => {
                match rows {
                    $($r => kernel_avx2_float::<$r>(groups, a.as_ptr(), b.as_ptr(), e),)*
                    _ => unreachable!("at most 6 rows"),
                }
            };
        }
        by_rows!(1 2 3 4 5 6)
    }

    /// The raw sums of an AVX2 tile: MR rows x 16 columns, two k values of
    /// 16 bits per 32-bit lane (vpmaddwd multiplies and adds the pair
    /// exactly).
    #[inline(always)]
    unsafe fn avx2_sums<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i16,
    ) -> [[__m256i; 2]; MR] {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for g in 0..groups {
            let b0 = _mm256_loadu_si256(b.add(g * 32) as *const _);
            let b1 = _mm256_loadu_si256(b.add(g * 32 + 16) as *const _);
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_epi32(*a.add(r * groups + g) as i32);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, b0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, b1));
            }
        }
        acc
    }

    #[target_feature(enable = "avx2")]
    unsafe fn kernel_avx2<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i16,
        c: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        let acc = avx2_sums::<MR>(groups, a, b);
        for (r, acc) in acc.iter().enumerate() {
            let mut tmp = [0i32; 16];
            _mm256_storeu_si256(tmp.as_mut_ptr() as *mut _, acc[0]);
            _mm256_storeu_si256(tmp.as_mut_ptr().add(8) as *mut _, acc[1]);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), c.add(r * ldc), cols);
        }
    }

    /// The AVX2 product, then in registers: plus the column term, to float,
    /// times s1, times s2, plus the bias, stored as floats: the order of
    /// `finish`, so the same bits (the conversion rounds to nearest like
    /// `as f32`, and nothing is fused).
    #[target_feature(enable = "avx2")]
    unsafe fn kernel_avx2_float<const MR: usize>(
        groups: usize,
        a: *const u32,
        b: *const i16,
        e: &Epilogue,
    ) {
        let acc = avx2_sums::<MR>(groups, a, b);
        let lane = |l: &Lane, r: usize, c: usize| match l {
            Lane::One(v) => _mm256_set1_ps(*v),
            Lane::Rows(p) => _mm256_set1_ps(*p.add(r)),
            Lane::Columns(p) => _mm256_loadu_ps(p.add(c)),
        };
        for (r, sums) in acc.iter().enumerate() {
            let row = e.out.add(r * e.ldc);
            for (h, sums) in sums.iter().enumerate() {
                let offset = h * 8;
                let terms = _mm256_loadu_si256(e.column_terms.add(offset) as *const _);
                let sums = _mm256_add_epi32(*sums, terms);
                let mut x = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), lane(&e.s1, r, offset));
                if let Some(s2) = &e.s2 {
                    x = _mm256_mul_ps(x, lane(s2, r, offset));
                }
                if let Some(bias) = e.bias {
                    x = _mm256_add_ps(x, _mm256_loadu_ps(bias.add(offset)));
                }
                _mm256_storeu_ps(row.add(offset), x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(len: usize, seed: u64, lo: i32, hi: i32) -> Vec<i32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lo + ((s >> 33) % (hi - lo + 1) as u64) as i32
            })
            .collect()
    }

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[i32],
        za: &[i32],
        b: &[i32],
        zb: &[i32],
    ) -> Vec<i32> {
        let z = |v: &[i32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let mut c = vec![0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| (a[i * k + p] - z(za, i)) * (b[p * n + j] - z(zb, j)))
                    .sum();
            }
        }
        c
    }

    /// Every kernel this machine runs: each instruction set, and the AMX
    /// tiles where there are some.
    fn kernels() -> Vec<(Isa, bool)> {
        let mut all: Vec<(Isa, bool)> = Isa::available().into_iter().map(|i| (i, false)).collect();
        if amx() {
            all.insert(0, (Isa::Avx512Vnni, true));
        }
        all
    }

    #[test]
    fn every_kernel_is_exact_for_every_signedness_and_zero_point() {
        for (isa, amx) in kernels() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (13, 33, 7),
                (25, 70, 130),
                (12, 32, 64),
                (3, 100, 30),
                (1, 384, 1536),
                (70, 40, 200),
                (70, 40, 128),
                (64, 33, 64),
                // Rows in several chunks that each meet every panel, the
                // last chunk partial.
                (400, 40, 384),
            ] {
                for (a_signed, b_signed) in
                    [(false, true), (false, false), (true, true), (true, false)]
                {
                    let range = |s: bool| if s { (-128, 127) } else { (0, 255) };
                    let (alo, ahi) = range(a_signed);
                    let (blo, bhi) = range(b_signed);
                    let a = ints(m * k, m as u64 + 7, alo, ahi);
                    let b = ints(k * n, n as u64 + 9, blo, bhi);
                    // Extreme values too: the saturating instructions fail there.
                    let mut a = a;
                    a[0] = ahi;
                    let mut b = b;
                    b[0] = blo;
                    let za = if m > 2 {
                        ints(m, 3, alo, ahi)
                    } else {
                        vec![alo + 3]
                    };
                    let zb = if n > 2 {
                        ints(n, 4, blo, bhi)
                    } else {
                        vec![bhi - 1]
                    };
                    let expected = naive(m, n, k, &a, &za, &b, &zb);
                    let packed = PackedIntB::pack_with(isa, amx, &b, k, n, b_signed, &zb);
                    for parallel in [false, true] {
                        let mut c = vec![i32::MIN; m * n];
                        let (bytes, words): (Vec<u8>, Vec<i16>) = (
                            a.iter().map(|&x| x as u8).collect(),
                            a.iter().map(|&x| x as i16).collect(),
                        );
                        let source = if a_signed {
                            IntA::Signed(&words)
                        } else {
                            IntA::Unsigned(&bytes)
                        };
                        matmul_integer(m, source, &za, &packed, Output::Int32(&mut c), parallel);
                        assert_eq!(
                            c, expected,
                            "{isa:?} amx {amx} {m}x{n}x{k} a_signed {a_signed} b_signed {b_signed}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unpacking_gives_b_back() {
        for (isa, amx) in kernels() {
            for (k, n) in [(1, 1), (7, 33), (130, 70)] {
                for signed in [true, false] {
                    let b = if signed {
                        ints(k * n, 13, -128, 127)
                    } else {
                        ints(k * n, 13, 0, 255)
                    };
                    let packed = PackedIntB::pack_with(isa, amx, &b, k, n, signed, &[1]);
                    assert_eq!(
                        packed.unpack(),
                        b,
                        "{isa:?} amx {amx} {k}x{n} signed {signed}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_activation_is_applied_once_to_every_value() {
        for (isa, amx) in kernels() {
            for (m, n, k) in [(70, 100, 128), (13, 45, 70), (100, 300, 64)] {
                let a: Vec<u8> = ints(m * k, 11, 0, 255).iter().map(|&x| x as u8).collect();
                let packed =
                    PackedIntB::pack_with(isa, amx, &ints(k * n, 12, -127, 127), k, n, true, &[0]);
                let float = |activation: Activation, parallel: bool| {
                    let mut out = vec![f32::NAN; m * n];
                    let output = Output::Float {
                        out: &mut out,
                        s1: Scale::One(0.01),
                        s2: None,
                        bias: None,
                        activation,
                    };
                    matmul_integer(m, IntA::Unsigned(&a), &[5], &packed, output, parallel);
                    out
                };
                let plain = float(None, false);
                let twice_plus_one =
                    |row: &mut [f32]| row.iter_mut().for_each(|v| *v = *v * 2.0 + 1.0);
                for parallel in [false, true] {
                    let activated = float(Some(&twice_plus_one), parallel);
                    for (p, q) in plain.iter().zip(&activated) {
                        assert_eq!(p * 2.0 + 1.0, *q, "{isa:?} amx {amx} {m}x{n}x{k}");
                    }
                }
            }
        }
    }

    #[test]
    fn float_output_is_the_cast_mul_mul_add_of_the_sums_bit_for_bit() {
        // The second shape is read in place by the AMX tiles (k = 128),
        // with a partial block of rows; the third takes several chunks of
        // rows.
        for (m, n, k) in [(13, 45, 70), (45, 45, 128), (400, 45, 384)] {
            float_output_matches_the_sums(m, n, k);
        }
    }

    fn float_output_matches_the_sums(m: usize, n: usize, k: usize) {
        let a: Vec<u8> = ints(m * k, 5, 0, 255).iter().map(|&x| x as u8).collect();
        let b = ints(k * n, 6, -127, 127);
        let rows_scale: Vec<f32> = (0..m).map(|i| 0.01 + i as f32 * 1e-3).collect();
        let cols_scale: Vec<f32> = (0..n).map(|j| 0.02 + j as f32 * 3e-4).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.125 - 2.0).collect();
        for (isa, amx) in kernels() {
            let packed = PackedIntB::pack_with(isa, amx, &b, k, n, true, &[0]);
            let mut sums = vec![0i32; m * n];
            matmul_integer(
                m,
                IntA::Unsigned(&a),
                &[3],
                &packed,
                Output::Int32(&mut sums),
                false,
            );
            for (s1, s2) in [
                (Scale::One(0.5), None),
                (
                    Scale::PerRow(&rows_scale),
                    Some(Scale::PerColumn(&cols_scale)),
                ),
                (Scale::PerColumn(&cols_scale), Some(Scale::One(0.25))),
            ] {
                let at = |s: &Scale, i: usize, j: usize| match s {
                    Scale::One(v) => *v,
                    Scale::PerColumn(v) => v[j],
                    Scale::PerRow(v) => v[i],
                };
                let mut out = vec![f32::NAN; m * n];
                let output = Output::Float {
                    out: &mut out,
                    s1,
                    s2,
                    bias: Some(&bias),
                    activation: None,
                };
                matmul_integer(m, IntA::Unsigned(&a), &[3], &packed, output, true);
                for i in 0..m {
                    for j in 0..n {
                        let mut x = sums[i * n + j] as f32 * at(&s1, i, j);
                        if let Some(s) = &s2 {
                            x *= at(s, i, j);
                        }
                        x += bias[j];
                        assert_eq!(
                            out[i * n + j].to_bits(),
                            x.to_bits(),
                            "{isa:?} amx {amx} [{i},{j}]"
                        );
                    }
                }
            }
        }
    }
}
