//! Hand-written CPU kernels for the operators that dominate real models:
//! float matrix products (`sgemm`), 8-bit integer matrix products (`igemm`)
//! and the row-wise float operations of transformer encoders (`rows`).
//!
//! Each kernel has a plain reference implementation, and the vector versions
//! (AVX-512, AVX2, NEON) are chosen once at run time from the CPU's features; the
//! tests compare every version the machine can run against the reference.
//! Other devices (CUDA) keep candle's kernels.

pub mod igemm;
pub mod rows;
pub mod sgemm;

use std::sync::OnceLock;

use candle_core::{DType, Device, Storage, Tensor, WithDType};

/// The instruction set the kernels use on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F with VNNI (8-bit dot products into 32-bit sums).
    Avx512Vnni,
    /// AVX2 with FMA.
    Avx2,
    /// ARM NEON with the dot-product instructions (sdot: Graviton 2 on,
    /// Ampere, Apple M1 on).
    Neon,
    /// Portable Rust.
    Reference,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512f+avx512vnni",
            Isa::Avx2 => "avx2+fma",
            Isa::Neon => "neon+dotprod",
            Isa::Reference => "portable",
        }
    }

    /// Every instruction set this machine can run, best first (for tests).
    pub fn available() -> Vec<Isa> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512bw")
            {
                all.push(Isa::Avx512Vnni);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            all.push(Isa::Neon);
        }
        all.push(Isa::Reference);
        all
    }
}

/// The best instruction set of this machine, unless MLCTL_ISA names a lesser
/// one (`avx2`, `portable`) to measure or to work around a CPU.
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let available = Isa::available();
        let wanted = std::env::var("MLCTL_ISA").unwrap_or_default();
        available
            .iter()
            .copied()
            .find(|isa| wanted.is_empty() || isa.name().starts_with(wanted.as_str()))
            .unwrap_or(available[0])
    })
}

/// Whether the 8-bit products run on AMX tiles (Intel's matrix unit, from
/// Sapphire Rapids on): with the AVX-512 kernels chosen, when the CPU has
/// AMX-INT8 and Linux grants the process its tile state. `MLCTL_ISA=avx512`
/// keeps the VNNI kernels instead.
pub fn amx() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let wanted = std::env::var("MLCTL_ISA").unwrap_or_default();
        isa() == Isa::Avx512Vnni && (wanted.is_empty() || wanted == "amx") && amx_granted()
    })
}

/// The kernels in use, for reports: the instruction set, and AMX for the
/// 8-bit products when it is on.
pub fn kernels_in_use() -> String {
    if amx() {
        format!("{}+amx-int8", isa().name())
    } else {
        isa().name().to_string()
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_granted() -> bool {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    // CPUID leaf 7, EDX: bit 24 AMX-TILE, bit 25 AMX-INT8.
    #[allow(unused_unsafe)]
    let has_amx =
        unsafe { __get_cpuid_max(0).0 >= 7 && __cpuid_count(7, 0).edx & (3 << 24) == 3 << 24 };
    // Linux hands a process the 8 KB of tile state only on request; without
    // it the first tile instruction faults.
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with this request reads no memory of ours.
    has_amx
        && unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        } == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn amx_granted() -> bool {
    false
}

/// Threads the kernels may use (rayon's pool, which `--threads` sizes;
/// one inside a [`Serial`] stretch).
pub fn threads() -> usize {
    if SERIAL.with(std::cell::Cell::get) {
        1
    } else {
        rayon::current_num_threads()
    }
}

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, the kernels called on this thread run on it alone. For a
/// short run outside the pool: each parallel operator would hand its work
/// to the pool and wait, two thread wake-ups that cost more than the split
/// saves (the sample model_v2 at 4,096 rows ran at 19M rows/s on two
/// threads against 32M on one).
pub struct Serial(bool);

impl Serial {
    pub fn start() -> Serial {
        Serial(SERIAL.with(|s| s.replace(true)))
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        let before = self.0;
        SERIAL.with(|s| s.set(before));
    }
}

/// How long a kept-awake thread (`KeepAwake`) looks for work without
/// finding any before it goes to sleep after all: a run that spends this
/// long in one single-threaded operator does not hold a core idle-busy.
const AWAKE_IDLE: std::time::Duration = std::time::Duration::from_millis(2);

/// While alive, keeps the other threads of the current rayon pool looking
/// for work instead of going to sleep between two parallel operators.
/// rayon parks an idle thread within microseconds, and waking it again
/// takes longer than a small operator lasts (on this virtual machine a
/// parallel step of 2 x 20 us took 43 us after a pause of 1 ms, 22 us with
/// the other thread kept awake); ONNX Runtime's pool spins the same way.
/// Does nothing outside a pool or in a pool of one thread.
pub struct KeepAwake(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl KeepAwake {
    pub fn start() -> KeepAwake {
        use std::sync::atomic::{AtomicBool, Ordering};
        let Some(me) = rayon::current_thread_index() else {
            return KeepAwake(None);
        };
        if rayon::current_num_threads() < 2 {
            return KeepAwake(None);
        }
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let over = done.clone();
        rayon::spawn_broadcast(move |thread| {
            if thread.index() == me {
                return;
            }
            let mut idle_since = std::time::Instant::now();
            while !over.load(Ordering::Acquire) {
                match rayon::yield_now() {
                    Some(rayon::Yield::Executed) => idle_since = std::time::Instant::now(),
                    _ if idle_since.elapsed() > AWAKE_IDLE => break,
                    _ => std::hint::spin_loop(),
                }
            }
        });
        KeepAwake(Some(done))
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        if let Some(done) = &self.0 {
            done.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// Below this many values a row-wise pass runs on the calling thread.
const PARALLEL_VALUES: usize = 1 << 15;

/// Splits `out` into runs of whole rows of `row` values for the threads and
/// calls `f(first_row, run)` on each, in parallel when there are enough
/// values to pay for waking the pool (the row-wise passes between the
/// products otherwise leave the other threads idle).
pub fn for_row_runs<T: Send>(out: &mut [T], row: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    let row = row.max(1);
    let rows = out.len() / row;
    let workers = threads();
    if workers == 1 || out.len() < PARALLEL_VALUES || rows < 2 {
        f(0, out);
        return;
    }
    let per_run = rows.div_ceil(workers * 2);
    out.par_chunks_mut(per_run * row)
        .enumerate()
        .for_each(|(run, values)| f(run * per_run, values));
}

/// Where batch `i` of a batched operand starts: `base` plus its index over
/// the batch dimensions `batch_dims` times their `strides` (in elements).
pub fn batch_start(i: usize, base: usize, batch_dims: &[usize], strides: &[usize]) -> usize {
    let (mut rest, mut offset) = (i, base);
    for axis in (0..batch_dims.len()).rev() {
        offset += (rest % batch_dims[axis]) * strides[axis];
        rest /= batch_dims[axis];
    }
    offset
}

/// A buffer of `len` values that `fill` writes, without zero-filling it
/// first: the outputs of the products, which every path overwrites whole
/// (zero-filling them was 7% of an int8 MiniLM-L3 run). Returns the buffer
/// and what `fill` returned.
///
/// # Safety
/// `fill` must write every one of the `len` values before reading any, or
/// return something that tells the caller to drop the buffer unread.
pub unsafe fn written_by<T: Copy, R>(len: usize, fill: impl FnOnce(&mut [T]) -> R) -> (Vec<T>, R) {
    let mut buffer: Vec<T> = Vec::with_capacity(len);
    // SAFETY: the capacity is `len`; the caller's `fill` writes each value
    // before anything reads it (T is a plain number type: any bits written
    // are a valid value).
    let done = fill(unsafe { std::slice::from_raw_parts_mut(buffer.as_mut_ptr(), len) });
    unsafe { buffer.set_len(len) };
    (buffer, done)
}

/// A new buffer made from `x` run by run of whole rows of `row` values:
/// `f(first_row, run, out)` writes the results of the run starting at row
/// `first_row` to `out`, as long as the run. Nothing is zero-filled first;
/// runs go to the threads when there are enough values, each writing its
/// part of the one buffer (collecting a buffer per run and joining them
/// cost a copy of the whole output: a small MLP's Scaler took three times
/// as long on two threads as on one).
///
/// # Safety
/// `f` must write every value of `out` (it is not initialized).
pub unsafe fn map_rows(
    x: &[f32],
    row: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let row = row.max(1);
    let rows = x.len() / row;
    let workers = threads();
    // SAFETY: every value is written by `f` (the caller's promise), over
    // runs that cover `x`, and so the buffer, exactly.
    let (out, ()) = unsafe {
        written_by(x.len(), |out: &mut [f32]| {
            if workers == 1 || x.len() < PARALLEL_VALUES || rows < 2 {
                f(0, x, out);
                return;
            }
            let per_run = rows.div_ceil(workers * 2) * row;
            out.par_chunks_mut(per_run)
                .zip(x.par_chunks(per_run))
                .enumerate()
                .for_each(|(i, (out, run))| f(i * per_run / row, run, out));
        })
    };
    out
}

/// What a product applies to its output once finished, while it is still
/// in cache (the activation that follows a MatMul in the graph); in place,
/// once for every value. Element-wise: it is given stretches of rows, or
/// whole blocks of rows at once.
pub type Activation<'a> = Option<&'a (dyn Fn(&mut [f32]) + Sync)>;

/// A raw pointer that parallel tasks share, each writing its own disjoint
/// part of the buffer behind it.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T);
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the Send wrapper whole).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Runs `f` on the elements of a CPU tensor of type `T`, in row-major order,
/// without copying when the tensor is already contiguous. `None` when the
/// tensor is elsewhere (CUDA) or of another type: the caller falls back to
/// candle.
pub fn with_slice<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Option<R> {
    if !matches!(t.device(), Device::Cpu) || t.dtype() != T::DTYPE {
        return None;
    }
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous().ok()?
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return None;
    };
    let (start, end) = layout.contiguous_offsets()?;
    let all: &[T] = cpu.as_slice::<T>().ok()?;
    Some(f(&all[start..end]))
}

/// Runs `f` on the whole buffer behind a CPU tensor of type `T`, with the
/// tensor's start offset and strides (in elements), so that a transposed
/// view is read where it lies instead of copied.
pub fn with_strided<T: WithDType, R>(
    t: &Tensor,
    f: impl FnOnce(&[T], usize, &[usize]) -> R,
) -> Option<R> {
    if !matches!(t.device(), Device::Cpu) || t.dtype() != T::DTYPE {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return None;
    };
    let all: &[T] = cpu.as_slice::<T>().ok()?;
    Some(f(all, layout.start_offset(), layout.stride()))
}

/// A CPU tensor from a vector, without copying.
pub fn tensor_from<T: WithDType>(data: Vec<T>, dims: &[usize]) -> Result<Tensor, String> {
    Tensor::from_vec(data, dims, &Device::Cpu).map_err(|e| e.to_string())
}

/// Whether the fast CPU kernels can take this tensor.
pub fn on_cpu(t: &Tensor, dtype: DType) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == dtype
}

/// Integer values of an 8-bit tensor as i32 (uint8 in U8 storage, int8 in
/// the 16-bit storage mlctl keeps it in).
pub fn small_ints(t: &Tensor) -> Option<Vec<i32>> {
    match t.dtype() {
        DType::U8 => with_slice::<u8, _>(t, |v| v.iter().map(|&x| x as i32).collect()),
        DType::I16 => with_slice::<i16, _>(t, |v| v.iter().map(|&x| x as i32).collect()),
        _ => None,
    }
}
