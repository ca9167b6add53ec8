//! Loading a model without holding its weights twice.
//!
//! Decoding the whole protobuf copies every weight out of the file's bytes,
//! so the file and the decoded model would both sit in memory (138 MB for a
//! 69 MB encoder) before a single tensor exists. Instead the model is
//! decoded from a copy with the large initializers' `raw_data` cut out,
//! each of them marked as external data at its own offset in the model
//! file: the loader then reads every weight from the file straight into
//! its tensor, the way it reads ONNX's external data files.

/// Fields of onnx.proto that the rewrite reads or writes.
const MODEL_GRAPH: u64 = 7;
const GRAPH_INITIALIZER: u64 = 5;
const TENSOR_RAW_DATA: u64 = 9;
const TENSOR_EXTERNAL_DATA: u64 = 13;
const TENSOR_DATA_LOCATION: u64 = 14;
/// TensorProto.DataLocation.EXTERNAL.
const EXTERNAL: u64 = 1;
/// Smaller raw data stays inline: the planner reads small constants.
const CUT_FROM: usize = 4096;

/// One field of a protobuf message: its number, wire type, where its
/// payload starts (in the message) and the field's whole byte range.
struct Field {
    number: u64,
    wire_type: u64,
    payload: std::ops::Range<usize>,
    whole: std::ops::Range<usize>,
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The fields of a message, in order.
fn fields(bytes: &[u8]) -> Result<Vec<Field>, String> {
    let mut all = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let tag = varint(bytes, &mut at)?;
        let (number, wire_type) = (tag >> 3, tag & 7);
        let payload_start;
        match wire_type {
            0 => {
                payload_start = at;
                varint(bytes, &mut at)?;
            }
            1 => {
                payload_start = at;
                at += 8;
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).map_err(|e| e.to_string())?;
                payload_start = at;
                at = at.checked_add(len).ok_or("length overflows")?;
            }
            5 => {
                payload_start = at;
                at += 4;
            }
            other => return Err(format!("unsupported wire type {other}")),
        }
        if at > bytes.len() {
            return Err("field runs past the end of its message".into());
        }
        all.push(Field {
            number,
            wire_type,
            payload: payload_start..at,
            whole: start..at,
        });
    }
    Ok(all)
}

fn put_bytes_field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// An external_data entry (StringStringEntryProto: key 1, value 2).
fn put_entry(out: &mut Vec<u8>, key: &str, value: &str) {
    let mut entry = Vec::new();
    put_bytes_field(&mut entry, 1, key.as_bytes());
    put_bytes_field(&mut entry, 2, value.as_bytes());
    put_bytes_field(out, TENSOR_EXTERNAL_DATA, &entry);
}

/// A TensorProto (at `offset` in the file) with its large raw data cut out
/// and pointed to in `file_name` instead.
fn tensor(bytes: &[u8], offset: usize, file_name: &str) -> Result<Vec<u8>, String> {
    let all = fields(bytes)?;
    let raw = all
        .iter()
        .position(|f| f.number == TENSOR_RAW_DATA && f.wire_type == 2);
    let already_external = all
        .iter()
        .any(|f| f.number == TENSOR_EXTERNAL_DATA || f.number == TENSOR_DATA_LOCATION);
    let Some(raw) = raw.filter(|&r| all[r].payload.len() >= CUT_FROM && !already_external) else {
        return Ok(bytes.to_vec());
    };
    let mut out = Vec::with_capacity(256);
    for (i, f) in all.iter().enumerate() {
        if i != raw {
            out.extend_from_slice(&bytes[f.whole.clone()]);
        }
    }
    let payload = &all[raw].payload;
    put_entry(&mut out, "location", file_name);
    put_entry(&mut out, "offset", &(offset + payload.start).to_string());
    put_entry(&mut out, "length", &payload.len().to_string());
    put_varint(&mut out, TENSOR_DATA_LOCATION << 3);
    put_varint(&mut out, EXTERNAL);
    Ok(out)
}

/// Rewrites a submessage: its bytes and their offset in the file.
type Rewriter<'a> = &'a dyn Fn(&[u8], usize) -> Result<Vec<u8>, String>;

/// Rewrites the submessages numbered `number` of a message (at `offset` in
/// the file) with `inner`, copying every other field as it is.
fn rewrite(bytes: &[u8], offset: usize, number: u64, inner: Rewriter) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for f in fields(bytes)? {
        if f.number == number && f.wire_type == 2 {
            let rewritten = inner(&bytes[f.payload.clone()], offset + f.payload.start)?;
            put_bytes_field(&mut out, number, &rewritten);
        } else {
            out.extend_from_slice(&bytes[f.whole]);
        }
    }
    Ok(out)
}

/// The model's bytes with the raw data of its large initializers replaced
/// by references to where they lie in `file_name` (the model file itself,
/// in the folder the loader reads external data from).
pub fn cut_weights(model: &[u8], file_name: &str) -> Result<Vec<u8>, String> {
    rewrite(model, 0, MODEL_GRAPH, &|graph, at| {
        rewrite(graph, at, GRAPH_INITIALIZER, &|t, at| {
            tensor(t, at, file_name)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_onnx::onnx::{GraphProto, ModelProto, TensorProto};
    use prost::Message;

    #[test]
    fn large_raw_data_becomes_a_reference_to_its_bytes_in_the_file() {
        let big: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let small = vec![1u8, 2, 3, 4];
        let tensor = |name: &str, raw: &[u8]| TensorProto {
            name: name.into(),
            data_type: 1,
            dims: vec![raw.len() as i64 / 4],
            raw_data: raw.to_vec(),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 8,
            graph: Some(GraphProto {
                name: "g".into(),
                initializer: vec![tensor("w", &big), tensor("b", &small)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = model.encode_to_vec();
        let cut = cut_weights(&bytes, "model.onnx").unwrap();
        assert!(cut.len() < 1000, "{} bytes", cut.len());
        let decoded = ModelProto::decode(cut.as_slice()).unwrap();
        let graph = decoded.graph.unwrap();
        let (w, b) = (&graph.initializer[0], &graph.initializer[1]);
        assert_eq!(
            (w.name.as_str(), w.dims.as_slice()),
            ("w", &[10_000i64][..])
        );
        assert!(w.raw_data.is_empty());
        assert_eq!(w.data_location, EXTERNAL as i32);
        let entry = |key: &str| {
            w.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
                .unwrap()
        };
        assert_eq!(entry("location"), "model.onnx");
        let offset: usize = entry("offset").parse().unwrap();
        let length: usize = entry("length").parse().unwrap();
        assert_eq!(&bytes[offset..offset + length], big.as_slice());
        // Small constants stay inline, untouched.
        assert_eq!(b.raw_data, small);
        assert!(b.external_data.is_empty());
    }

    #[test]
    fn broken_bytes_are_an_error_not_a_panic() {
        for bytes in [&[0x3a, 0x05, 0x2a][..], &[0xff; 12][..], &[0x3b][..]] {
            assert!(cut_weights(bytes, "m.onnx").is_err());
        }
    }
}
