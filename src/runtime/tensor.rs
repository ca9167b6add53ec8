//! ONNX tensors to candle tensors: element types, and initializers stored
//! either as raw bytes or in the typed repeated fields (`float_data`,
//! `int64_data`, ...), which some exporters use and candle-onnx reads as empty.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use candle_core::{DType, Device, Tensor};
use candle_onnx::onnx::tensor_proto::DataType;
use candle_onnx::onnx::TensorProto;

/// The candle type for an ONNX element type; `None` when mlctl cannot hold it.
pub fn dtype_of(onnx_type: i32) -> Option<DType> {
    match DataType::try_from(onnx_type).ok()? {
        DataType::Float => Some(DType::F32),
        DataType::Double => Some(DType::F64),
        DataType::Float16 => Some(DType::F16),
        DataType::Bfloat16 => Some(DType::BF16),
        DataType::Int64 => Some(DType::I64),
        DataType::Int32 => Some(DType::I32),
        // candle has no 8-bit signed type: int8 values are held in i16,
        // losslessly; operators that care (QuantizeLinear) saturate to the
        // int8 range themselves.
        DataType::Int16 | DataType::Int8 => Some(DType::I16),
        // Nor an unsigned 16-bit one: uint16 lives in i32, losslessly.
        DataType::Uint16 => Some(DType::I32),
        DataType::Uint8 | DataType::Bool => Some(DType::U8),
        DataType::Uint32 => Some(DType::U32),
        _ => None,
    }
}

/// Bytes per element of an ONNX element type (`None` for strings and
/// sub-byte types).
pub fn element_size(onnx_type: i32) -> Option<usize> {
    Some(match DataType::try_from(onnx_type).ok()? {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 | DataType::Complex64 => 8,
        DataType::Complex128 => 16,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz => 1,
        _ => return None,
    })
}

pub fn type_name(onnx_type: i32) -> String {
    DataType::try_from(onnx_type)
        .map(|t| t.as_str_name().to_ascii_lowercase())
        .unwrap_or_else(|_| format!("type {onnx_type}"))
}

/// Opens where an initializer keeps its bytes in an external file:
/// `location` (relative to the model's folder, which it may not leave),
/// `offset` and `length` from its `external_data` entries. The file comes
/// positioned at the offset, with the length checked against its size.
fn external_source(
    t: &TensorProto,
    folder: Option<&Path>,
) -> Result<(std::fs::File, u64, std::path::PathBuf), String> {
    let folder = folder
        .ok_or("its data is in an external file, and the model was not read from a folder")?;
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = entry("location").ok_or("external data without a location")?;
    let relative = Path::new(location);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(format!(
            "external data location '{location}' leaves the model's folder"
        ));
    }
    let number = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data {key} '{v}' is not a number"))
            })
            .transpose()
    };
    let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
    let path = folder.join(relative);
    let mut file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let length = length.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!(
            "{}: {length} bytes at offset {offset} run past the end ({size} bytes)",
            path.display()
        ));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    Ok((file, length, path))
}

/// Reads the bytes an initializer keeps in an external file.
fn external_bytes(t: &TensorProto, folder: Option<&Path>) -> Result<Vec<u8>, String> {
    let (mut file, length, path) = external_source(t, folder)?;
    let mut bytes = vec![0; length as usize];
    file.read_exact(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// A float32 initializer in an external file, read a megabyte at a time
/// straight into the tensor's values (a weight is never held as bytes and
/// as floats at once).
fn external_f32(t: &TensorProto, folder: Option<&Path>, device: &Device) -> Result<Tensor, String> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let n: usize = dims.iter().product();
    let (mut file, length, path) = external_source(t, folder)?;
    if length != 4 * n as u64 {
        return Err(format!(
            "holds {length} bytes of data, its shape {dims:?} needs {}",
            4 * n
        ));
    }
    let mut values = Vec::with_capacity(n);
    let mut chunk = vec![0u8; (1 << 20).min(4 * n)];
    while values.len() < n {
        let part = &mut chunk[..(4 * (n - values.len())).min(1 << 20)];
        file.read_exact(part)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        values.extend(
            part.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Tensor::from_vec(values, dims.as_slice(), device).map_err(|e| e.to_string())
}

/// Builds a tensor from an initializer or a `.pb` test file. `folder` is the
/// model's folder, where external data files live.
pub fn from_proto_in(
    t: &TensorProto,
    device: &Device,
    folder: Option<&Path>,
) -> Result<Tensor, String> {
    if t.external_data.is_empty() {
        return from_proto(t, device);
    }
    if t.data_type == DataType::Float as i32 {
        return external_f32(t, folder, device);
    }
    let mut inline = t.clone();
    inline.raw_data = external_bytes(t, folder)?;
    inline.external_data.clear();
    inline.data_location = 0;
    from_proto(&inline, device)
}

/// Moves an initializer's external data into the model itself (for a model
/// written elsewhere than the one it came from).
pub fn inline_external(t: &mut TensorProto, folder: Option<&Path>) -> Result<(), String> {
    if !t.external_data.is_empty() {
        t.raw_data = external_bytes(t, folder)?;
        t.external_data.clear();
        t.data_location = 0;
    }
    Ok(())
}

/// Builds a tensor from an initializer or a `.pb` test file whose data is
/// inline.
pub fn from_proto(t: &TensorProto, device: &Device) -> Result<Tensor, String> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    if !t.external_data.is_empty() {
        return Err("its data is in an external file".into());
    }
    let dtype = dtype_of(t.data_type)
        .ok_or_else(|| format!("element type {} is not supported", type_name(t.data_type)))?;
    let n: usize = dims.iter().product();
    let err = |e: candle_core::Error| e.to_string();
    let tensor = if !t.raw_data.is_empty() && t.data_type == DataType::Uint16 as i32 {
        if t.raw_data.len() != 2 * n {
            return Err(format!(
                "holds {} bytes of data, its shape {:?} needs {}",
                t.raw_data.len(),
                dims,
                2 * n
            ));
        }
        let values: Vec<i32> = t
            .raw_data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as i32)
            .collect();
        Tensor::from_vec(values, dims.as_slice(), &Device::Cpu).map_err(err)?
    } else if !t.raw_data.is_empty() && t.data_type == DataType::Int8 as i32 {
        if t.raw_data.len() != n {
            return Err(format!(
                "holds {} bytes of data, its shape {:?} needs {}",
                t.raw_data.len(),
                dims,
                n
            ));
        }
        let values: Vec<i16> = t.raw_data.iter().map(|&b| b as i8 as i16).collect();
        Tensor::from_vec(values, dims.as_slice(), &Device::Cpu).map_err(err)?
    } else if !t.raw_data.is_empty() {
        let expected = n * dtype.size_in_bytes();
        if t.raw_data.len() != expected {
            return Err(format!(
                "holds {} bytes of data, its shape {:?} needs {}",
                t.raw_data.len(),
                dims,
                expected
            ));
        }
        Tensor::from_raw_buffer(&t.raw_data, dtype, &dims, &Device::Cpu).map_err(err)?
    } else {
        let typed = |len: usize| -> Result<(), String> {
            if len != n {
                Err(format!("holds {len} values, its shape {dims:?} needs {n}"))
            } else {
                Ok(())
            }
        };
        match dtype {
            DType::F32 => {
                typed(t.float_data.len())?;
                Tensor::from_slice(&t.float_data, dims.as_slice(), &Device::Cpu).map_err(err)?
            }
            DType::F64 => {
                typed(t.double_data.len())?;
                Tensor::from_slice(&t.double_data, dims.as_slice(), &Device::Cpu).map_err(err)?
            }
            DType::I64 => {
                typed(t.int64_data.len())?;
                Tensor::from_slice(&t.int64_data, dims.as_slice(), &Device::Cpu).map_err(err)?
            }
            DType::U32 => {
                typed(t.uint64_data.len())?;
                let v: Vec<u32> = t.uint64_data.iter().map(|&x| x as u32).collect();
                Tensor::from_vec(v, dims.as_slice(), &Device::Cpu).map_err(err)?
            }
            // int32, int16, uint8, bool, float16 and bfloat16 all travel in int32_data.
            DType::I32 | DType::I16 | DType::U8 | DType::F16 | DType::BF16 => {
                typed(t.int32_data.len())?;
                let as_i32 = Tensor::from_slice(&t.int32_data, dims.as_slice(), &Device::Cpu)
                    .map_err(err)?;
                match dtype {
                    DType::I32 => as_i32,
                    DType::F16 | DType::BF16 => {
                        // Stored as the 16-bit pattern, not the value.
                        let bits: Vec<u16> = t.int32_data.iter().map(|&x| x as u16).collect();
                        let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
                        Tensor::from_raw_buffer(&bytes, dtype, &dims, &Device::Cpu).map_err(err)?
                    }
                    other => as_i32.to_dtype(other).map_err(err)?,
                }
            }
            other => return Err(format!("element type {other:?} is not supported")),
        }
    };
    tensor.to_device(device).map_err(err)
}

/// Drops a tensor's data from its protobuf form, keeping its name, type and
/// shape (for weights already converted).
pub fn drop_data(t: &mut TensorProto) {
    t.raw_data = Vec::new();
    t.float_data = Vec::new();
    t.int32_data = Vec::new();
    t.int64_data = Vec::new();
    t.double_data = Vec::new();
    t.uint64_data = Vec::new();
    t.string_data = Vec::new();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_are_read() {
        let t = TensorProto {
            dims: vec![2],
            data_type: DataType::Int64 as i32,
            int64_data: vec![3, -4],
            ..Default::default()
        };
        let x = from_proto(&t, &Device::Cpu).unwrap();
        assert_eq!(x.to_vec1::<i64>().unwrap(), vec![3, -4]);
    }

    #[test]
    fn int8_raw_bytes_are_signed() {
        let t = TensorProto {
            dims: vec![3],
            data_type: DataType::Int8 as i32,
            raw_data: vec![0x80, 0xff, 0x7f],
            ..Default::default()
        };
        let x = from_proto(&t, &Device::Cpu).unwrap();
        assert_eq!(x.to_vec1::<i16>().unwrap(), vec![-128, -1, 127]);
    }

    #[test]
    fn a_size_mismatch_is_an_error_not_a_panic() {
        let t = TensorProto {
            dims: vec![3],
            data_type: DataType::Float as i32,
            raw_data: vec![0; 8],
            ..Default::default()
        };
        assert!(from_proto(&t, &Device::Cpu)
            .unwrap_err()
            .contains("needs 12"));
    }
}
