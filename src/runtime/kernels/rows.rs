//! Element-wise and row-wise float32 loops (quantization, softmax, erf),
//! written so that the compiler vectorizes them: each public function is
//! compiled three times (AVX-512, AVX2, portable) and the machine's best
//! version runs. exp and erf are polynomial approximations accurate to a few
//! units in the last place, branch-free so that they vectorize.

#[cfg(target_arch = "x86_64")]
use super::Isa;

/// Defines `pub fn NAME(args)` whose body is compiled for AVX-512, for AVX2
/// and portably, the version chosen by `kernels::isa()` at run time.
macro_rules! vectorized {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                match super::isa() {
                    // SAFETY: isa() reports only what this CPU has.
                    Isa::Avx512Vnni => return unsafe { wide($($arg),*) },
                    Isa::Avx2 => return unsafe { narrow($($arg),*) },
                    Isa::Neon | Isa::Reference => {}
                }
            }
            body($($arg),*)
        }
    };
}

vectorized! {
    /// The smallest and largest value, starting from 0 (DynamicQuantizeLinear's
    /// range always includes 0). NaN is skipped.
    pub fn min_max_with_zero(x: &[f32]) -> (f32, f32) {
        // Four independent 16-lane accumulators, so that the min/max
        // latency overlaps; `f32::min` skips NaN.
        let mut lo = [0f32; 64];
        let mut hi = [0f32; 64];
        let mut chunks = x.chunks_exact(64);
        for chunk in &mut chunks {
            for q in 0..64 {
                lo[q] = lo[q].min(chunk[q]);
                hi[q] = hi[q].max(chunk[q]);
            }
        }
        let mut lo = lo.iter().copied().fold(0f32, f32::min);
        let mut hi = hi.iter().copied().fold(0f32, f32::max);
        for &v in chunks.remainder() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        (lo, hi)
    }
}

vectorized! {
    /// round-half-to-even(x / scale) + zero point, saturated to uint8 (the
    /// division in float32, as ONNX Runtime does it).
    pub fn quantize_u8(x: &[f32], scale: f32, zero_point: f32, out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            // max/min rather than clamp: they send NaN to a bound, so the
            // unchecked conversion below (which vectorizes, unlike `as`)
            // always sees a value in 0..=255.
            #[allow(clippy::manual_clamp)]
            let q = ((v / scale).round_ties_even() + zero_point).max(0.0).min(255.0);
            // SAFETY: q is finite and within 0..=255.
            *o = unsafe { q.to_int_unchecked::<i32>() } as u8;
        }
    }
}

/// e^x for float32, Cephes' polynomial after range reduction by powers of 2:
/// within 2 ulp for x in [-87, 88]; below, a tiny positive number (never 0:
/// the callers only divide by sums of it).
#[inline(always)]
fn exp(x: f32) -> f32 {
    // max/min send NaN to a bound (NaN is put back at the end), so that the
    // unchecked conversion of n, which vectorizes, sees a small integer.
    let input = x;
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    // Fused multiply-adds: one rounding each instead of two, and half the
    // instructions (on x86 the vector versions are built with FMA).
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let z = r * r;
    let mut p = 1.987_569_1e-4f32.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = p.mul_add(z, r) + 1.0;
    // SAFETY: n is an integer in -126..=127 (x was clamped above).
    let power = f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) as u32) << 23);
    if input.is_nan() {
        input
    } else {
        y * power
    }
}

/// erf for float32: x P(x^2) / Q(x^2) on [-4, 4] (beyond, erf is 1 to
/// float precision), the rational approximation Eigen uses; within 1e-7.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let z = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p.mul_add(z, 2.770_681_4e-8);
    p = p.mul_add(z, -2.101_024e-6);
    p = p.mul_add(z, -5.692_506_4e-5);
    p = p.mul_add(z, -7.349_906_3e-4);
    p = p.mul_add(z, -2.954_600_1e-3);
    p = p.mul_add(z, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5f32;
    q = q.mul_add(z, -2.133_740_6e-4);
    q = q.mul_add(z, -1.682_827e-3);
    q = q.mul_add(z, -7.373_329_2e-3);
    q = q.mul_add(z, -1.426_474e-2);
    x * p / q
}

/// Sum in 16 independent lanes (so that it vectorizes), then across them.
#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for chunk in &mut chunks {
        for q in 0..16 {
            lanes[q] += chunk[q];
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Sum in 32 lanes (four vectors of 8), folded pairwise: vectors 0+1 and
/// 2+3, then those two, then the halves of the 8 lanes, then pairs; the
/// values past the last whole 32 are added one by one at the end.
#[inline(always)]
fn sum_32_lanes(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 32];
    let mut chunks = x.chunks_exact(32);
    for chunk in &mut chunks {
        for q in 0..32 {
            lanes[q] += chunk[q];
        }
    }
    let mut v = [0f32; 8];
    for q in 0..8 {
        v[q] = (lanes[q] + lanes[8 + q]) + (lanes[16 + q] + lanes[24 + q]);
    }
    let t = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    let mut sum = (t[0] + t[1]) + (t[2] + t[3]);
    for &r in chunks.remainder() {
        sum += r;
    }
    sum
}

/// Maximum in 16 independent lanes (NaN is skipped).
#[inline(always)]
fn max_lanes(x: &[f32]) -> f32 {
    // `f32::max` (NaN skipped, as the comparison it replaced did): the
    // compiler turned `if a > b { a } else { b }` into lane shuffles.
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for chunk in &mut chunks {
        for q in 0..16 {
            lanes[q] = lanes[q].max(chunk[q]);
        }
    }
    let rest = chunks.remainder().iter().copied();
    lanes
        .iter()
        .copied()
        .chain(rest)
        .fold(f32::NEG_INFINITY, f32::max)
}

vectorized! {
    /// Softmax over each row of `row_len` values, in place.
    pub fn softmax_rows(x: &mut [f32], row_len: usize) {
        for row in x.chunks_mut(row_len.max(1)) {
            let max = max_lanes(row);
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let scale = 1.0 / sum_lanes(row);
            for v in row.iter_mut() {
                *v *= scale;
            }
        }
    }
}

vectorized! {
    /// softmax(x / divisor + mask) over rows of `row` values: row i's mask
    /// starts at mask[offsets[i]] (a whole row, or one value when
    /// `!whole_rows`). Written to `out`.
    pub fn scaled_masked_softmax(
        x: &[f32],
        mask: &[f32],
        offsets: &[usize],
        whole_rows: bool,
        row: usize,
        divisor: f32,
        out: &mut [f32],
    ) {
        for ((o, xr), &offset) in out.chunks_mut(row.max(1)).zip(x.chunks(row.max(1))).zip(offsets) {
            if whole_rows {
                for ((o, v), m) in o.iter_mut().zip(xr).zip(&mask[offset..offset + row]) {
                    *o = v / divisor + m;
                }
            } else {
                let m = mask[offset];
                for (o, v) in o.iter_mut().zip(xr) {
                    *o = v / divisor + m;
                }
            }
            let max = max_lanes(o);
            for v in o.iter_mut() {
                *v = exp(*v - max);
            }
            let scale = 1.0 / sum_lanes(o);
            for v in o.iter_mut() {
                *v *= scale;
            }
        }
    }
}

vectorized! {
    /// GELU as exporters spell it, in place, in its order of operations:
    /// (x * (erf(x / scale) + one)) * half (x * scale when `!divide`).
    pub fn gelu_in_place(x: &mut [f32], scale: f32, divide: bool, one: f32, half: f32) {
        for v in x.iter_mut() {
            let t = if divide { *v / scale } else { *v * scale };
            *v = (*v * (erf(t) + one)) * half;
        }
    }
}

vectorized! {
    /// `gelu_in_place` from `x` into `out`.
    pub fn gelu_into(x: &[f32], out: &mut [f32], scale: f32, divide: bool, one: f32, half: f32) {
        for (o, v) in out.iter_mut().zip(x) {
            let t = if divide { *v / scale } else { *v * scale };
            *o = (*v * (erf(t) + one)) * half;
        }
    }
}

vectorized! {
    /// erf of every value, in place.
    pub fn erf_in_place(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = erf(*v);
        }
    }
}

/// One row of LayerNormalization into `out`; returns its mean and
/// 1 / sqrt(var + eps). `centred` is scratch of the row's length.
///
/// Sums in 32 lanes folded pairwise (`sum_32_lanes`), means by multiplying
/// with 1/n. A dynamically quantized model rounds the output to uint8 next,
/// and these last bits decide on which side of a rounding step values land:
/// in this order the int8 MiniLM agrees with ONNX Runtime, where a sum from
/// first to last flips a zero point on a 1 x 16 input.
#[inline(always)]
fn layer_norm_row(
    row: &[f32],
    out: &mut [f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f32,
    centred: &mut [f32],
) -> (f32, f32) {
    let reciprocal = (1.0 / gamma.len().max(1) as f64) as f32;
    let mean = sum_32_lanes(row) * reciprocal;
    for (c, v) in centred.iter_mut().zip(row.iter()) {
        *c = (v - mean) * (v - mean);
    }
    let var = sum_32_lanes(centred) * reciprocal;
    let inv = 1.0 / (var + epsilon).sqrt();
    match beta {
        Some(beta) => {
            for (((o, v), g), b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
                *o = (*v - mean) * inv * g + b;
            }
        }
        None => {
            for ((o, v), g) in out.iter_mut().zip(row).zip(gamma) {
                *o = (*v - mean) * inv * g;
            }
        }
    }
    (mean, inv)
}

vectorized! {
    /// LayerNormalization over rows of `gamma.len()` values of `x`, into
    /// `out`: (x - mean) / sqrt(var + eps) * gamma + beta (beta optional);
    /// each row's mean and 1 / sqrt(var + eps) go to `means` and `inv_stds`.
    pub fn layer_norm_rows(
        x: &[f32],
        out: &mut [f32],
        gamma: &[f32],
        beta: Option<&[f32]>,
        epsilon: f32,
        means: &mut [f32],
        inv_stds: &mut [f32],
    ) {
        let n = gamma.len().max(1);
        let mut centred = vec![0f32; n];
        let rows = x.chunks(n).zip(out.chunks_mut(n));
        for (((row, o), m), s) in rows.zip(means.iter_mut()).zip(inv_stds.iter_mut()) {
            (*m, *s) = layer_norm_row(row, o, gamma, beta, epsilon, &mut centred);
        }
    }
}

vectorized! {
    /// LayerNormalization of a + b over rows of `gamma.len()` values, into
    /// `out` (the residual connection and its norm): each row's sum as the
    /// Add would have made it, normalised as `layer_norm_rows` does, without
    /// writing the sum out.
    pub fn add_layer_norm_rows(
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        gamma: &[f32],
        beta: Option<&[f32]>,
        epsilon: f32,
    ) {
        let n = gamma.len().max(1);
        let (mut sum, mut centred) = (vec![0f32; n], vec![0f32; n]);
        for ((a, b), o) in a.chunks(n).zip(b.chunks(n)).zip(out.chunks_mut(n)) {
            for ((s, x), y) in sum.iter_mut().zip(a).zip(b) {
                *s = x + y;
            }
            layer_norm_row(&sum, o, gamma, beta, epsilon, &mut centred);
        }
    }
}

/// The four arithmetic operators of ONNX's element-wise binary ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

vectorized! {
    /// out[i] = a[i] op b[i % b.len()]: B the same size as A, or repeating
    /// along A's leading dimensions (numpy broadcasting of a suffix);
    /// `b_first` computes b op a instead.
    pub fn arith_cycle(op: Arith, a: &[f32], b: &[f32], b_first: bool, out: &mut [f32]) {
        let step = b.len().max(1);
        for (o, a) in out.chunks_mut(step).zip(a.chunks(step)) {
            let pairs = o.iter_mut().zip(a.iter().zip(b));
            match (op, b_first) {
                (Arith::Add, _) => pairs.for_each(|(o, (a, b))| *o = a + b),
                (Arith::Mul, _) => pairs.for_each(|(o, (a, b))| *o = a * b),
                (Arith::Sub, false) => pairs.for_each(|(o, (a, b))| *o = a - b),
                (Arith::Sub, true) => pairs.for_each(|(o, (a, b))| *o = b - a),
                (Arith::Div, false) => pairs.for_each(|(o, (a, b))| *o = a / b),
                (Arith::Div, true) => pairs.for_each(|(o, (a, b))| *o = b / a),
            }
        }
    }
}

/// Per-row symmetric quantization stored as uint8 around 128: scale =
/// max(max|x| / limit, floor), q = clip(round-half-even(x / scale) + 128,
/// 128 - limit, 128 + limit); gives q and the scales.
pub fn quantize_rows_u8(x: &[f32], row: usize, limit: f32, floor: f32) -> (Vec<u8>, Vec<f32>) {
    use rayon::prelude::*;
    let row = row.max(1);
    let rows = x.len() / row;
    let mut q = vec![0u8; rows * row];
    let mut scales = vec![0f32; rows];
    let quantize = |q: &mut [u8], scales: &mut [f32], x: &[f32]| {
        for ((o, r), s) in q.chunks_mut(row).zip(x.chunks(row)).zip(scales) {
            *s = (abs_max(r) / limit).max(floor);
            quantize_row_u8(r, *s, limit, o);
        }
    };
    // Runs of rows on the threads, as the other row-wise passes.
    let workers = super::threads();
    if workers > 1 && x.len() >= super::PARALLEL_VALUES && rows >= 2 {
        let per_run = rows.div_ceil(workers * 2);
        q.par_chunks_mut(per_run * row)
            .zip(scales.par_chunks_mut(per_run))
            .zip(x.par_chunks(per_run * row))
            .for_each(|((q, s), x)| quantize(q, s, x));
    } else {
        quantize(&mut q, &mut scales, x);
    }
    (q, scales)
}

vectorized! {
    /// The largest |x| (NaN skipped), from 0.
    pub fn abs_max(x: &[f32]) -> f32 {
        let mut lanes = [0f32; 16];
        let mut chunks = x.chunks_exact(16);
        for chunk in &mut chunks {
            for q in 0..16 {
                // f32::max skips NaN as the comparison did, and compiles to
                // one instruction instead of lane shuffles.
                lanes[q] = lanes[q].max(chunk[q].abs());
            }
        }
        let rest = chunks.remainder().iter().map(|v| v.abs());
        lanes.iter().copied().chain(rest).fold(0f32, f32::max)
    }
}

vectorized! {
    /// clip(round-half-even(x / scale) + 128, 128 - limit, 128 + limit).
    pub fn quantize_row_u8(x: &[f32], scale: f32, limit: f32, out: &mut [u8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            #[allow(clippy::manual_clamp)]
            let q = ((v / scale).round_ties_even() + 128.0).max(128.0 - limit).min(128.0 + limit);
            // SAFETY: q is finite and within 1..=255 (NaN went to a bound
            // through max/min).
            *o = unsafe { q.to_int_unchecked::<i32>() } as u8;
        }
    }
}

vectorized! {
    /// out[i] = a[i] op s (or s op a[i] with `s_first`).
    pub fn arith_scalar(op: Arith, a: &[f32], s: f32, s_first: bool, out: &mut [f32]) {
        let pairs = out.iter_mut().zip(a);
        match (op, s_first) {
            (Arith::Add, _) => pairs.for_each(|(o, a)| *o = a + s),
            (Arith::Mul, _) => pairs.for_each(|(o, a)| *o = a * s),
            (Arith::Sub, false) => pairs.for_each(|(o, a)| *o = a - s),
            (Arith::Sub, true) => pairs.for_each(|(o, a)| *o = s - a),
            (Arith::Div, false) => pairs.for_each(|(o, a)| *o = a / s),
            (Arith::Div, true) => pairs.for_each(|(o, a)| *o = s / a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        (-4000..4000)
            .map(|i| i as f32 * 0.0023)
            .chain([0.0, -0.0, 1e-6, -1e-6, 1e-30])
            .collect()
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        for x in (-8700..8800).map(|i| i as f32 * 0.01) {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 3.0 * f32::EPSILON * want,
                "exp({x}) = {got}, libm {want}"
            );
        }
    }

    #[test]
    fn erf_is_within_1e_7_of_libm_and_relative_near_zero() {
        for x in grid() {
            let (got, want) = (erf(x), libm_erf(x as f64));
            assert!(
                (got as f64 - want).abs() <= 1e-7 + 1e-5 * want.abs(),
                "erf({x}) = {got}, libm {want}"
            );
        }
    }

    fn libm_erf(x: f64) -> f64 {
        statrs::function::erf::erf(x)
    }

    #[test]
    fn every_version_agrees_with_the_portable_one() {
        let x = grid();
        let mut out = vec![0u8; x.len()];
        quantize_u8(&x, 0.037, 12.0, &mut out);
        for (o, v) in out.iter().zip(&x) {
            let want = ((v / 0.037f32).round_ties_even() + 12.0).clamp(0.0, 255.0) as u8;
            assert_eq!(*o, want, "{v}");
        }
        let (lo, hi) = min_max_with_zero(&x);
        assert_eq!(
            (lo, hi),
            (
                x.iter().copied().fold(0f32, f32::min),
                x.iter().copied().fold(0f32, f32::max)
            )
        );
        let mut s: Vec<f32> = x[..1000].to_vec();
        softmax_rows(&mut s, 100);
        for (row, src) in s.chunks(100).zip(x[..1000].chunks(100)) {
            let max = src.iter().copied().fold(f32::MIN, f32::max);
            let total: f64 = src.iter().map(|v| ((v - max) as f64).exp()).sum();
            for (got, v) in row.iter().zip(src) {
                let want = ((v - max) as f64).exp() / total;
                assert!(
                    (*got as f64 - want).abs() <= 1e-6 * want + 1e-9,
                    "{got} vs {want}"
                );
            }
        }
    }
}
