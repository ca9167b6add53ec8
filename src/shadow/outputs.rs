//! From a model's outputs to answers: which output holds the class, which
//! the probabilities, which the value. The two models may name and shape
//! their outputs differently; each is read by role, not by name.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{DType, Tensor};

use super::compare::Task;
use crate::runtime::{kernels, Value};

/// Class labels as integer codes: a label that reads as an integer is that
/// integer (so the class `1`, the text "1" and 1.0 agree), any other text
/// gets a code of its own.
#[derive(Debug, Default)]
pub struct ClassCodes {
    texts: HashMap<String, i64>,
    names: HashMap<i64, String>,
}

impl ClassCodes {
    pub fn code(&mut self, label: &str) -> i64 {
        if let Ok(v) = label.trim().parse::<i64>() {
            return v;
        }
        if let Some(&c) = self.texts.get(label) {
            return c;
        }
        // Text labels count up from the bottom of i64, far from real integers.
        let c = i64::MIN + self.texts.len() as i64;
        self.texts.insert(label.to_string(), c);
        self.names.insert(c, label.to_string());
        c
    }

    /// A number as a class: integral values only.
    pub fn number(v: f64) -> Option<i64> {
        (v.is_finite() && v.fract() == 0.0 && v.abs() < 9e15).then_some(v as i64)
    }

    pub fn name(&self, code: i64) -> String {
        self.names
            .get(&code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }
}

/// Which outputs a model's answers come from.
#[derive(Debug, Clone)]
pub struct Roles {
    pub task: Task,
    /// An integer output of one value per row: the predicted class.
    pub class: Option<String>,
    /// Class probabilities (a ZipMap, or a float output of width 2 or more).
    pub probabilities: Option<String>,
    /// Regression: a float output of one value per row.
    pub value: Option<String>,
}

impl Roles {
    /// The outputs used, for the report.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.class {
            parts.push(format!("class from '{c}'"));
        }
        if let Some(p) = &self.probabilities {
            parts.push(format!("probabilities from '{p}'"));
        }
        if let Some(v) = &self.value {
            parts.push(format!("value from '{v}'"));
        }
        parts.join(", ")
    }
}

fn one_per_row(t: &Tensor) -> bool {
    matches!(t.dims(), [_] | [_, 1])
}

/// Reads the roles from a first batch of outputs. `task` forces the task
/// when the outputs could be read either way.
pub fn roles(outputs: &[(String, Value)], task: Option<Task>) -> Result<Roles, String> {
    let mut class = None;
    let mut probabilities = None;
    let mut value = None;
    for (name, v) in outputs {
        match v {
            Value::ClassMap { .. } => {
                probabilities.get_or_insert(name.clone());
            }
            Value::Tensor(t) if one_per_row(t) && !t.dtype().is_float() => {
                class.get_or_insert(name.clone());
            }
            Value::Tensor(t) if one_per_row(t) => {
                value.get_or_insert(name.clone());
            }
            Value::Tensor(t) if t.dtype().is_float() && t.rank() == 2 => {
                probabilities.get_or_insert(name.clone());
            }
            Value::Tensor(_) => {}
        }
    }
    let names = || {
        outputs
            .iter()
            .map(|(n, v)| match v {
                Value::Tensor(t) => format!("{n} {:?} {:?}", t.dtype(), t.dims()),
                Value::ClassMap { .. } => format!("{n} (class probabilities)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let classification = class.is_some() || probabilities.is_some();
    match (task, classification, value.is_some()) {
        (Some(Task::Regression), _, true) | (None, false, true) => Ok(Roles {
            task: Task::Regression,
            class: None,
            probabilities: None,
            value,
        }),
        (Some(Task::Classification), true, _) | (None, true, _) => Ok(Roles {
            task: Task::Classification,
            class,
            probabilities,
            value: None,
        }),
        (Some(Task::Regression), _, false) => Err(format!(
            "no output gives one number per row for a regression (outputs: {})",
            names()
        )),
        _ => Err(format!(
            "no output gives a class or class probabilities per row (outputs: {})",
            names()
        )),
    }
}

/// Runs `f` on a tensor's values as float32 rows: read where they lie
/// when the tensor already is a float32 one on the CPU, else converted.
fn with_f32_rows<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R, String> {
    if kernels::on_cpu(t, DType::F32) {
        if let Some(v) = t.flatten_all().ok().and_then(|t| t.contiguous().ok()) {
            return kernels::with_slice::<f32, _>(&v, f)
                .ok_or_else(|| "cannot read a float32 output".to_string());
        }
    }
    let v = t
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| e.to_string())?;
    Ok(f(&v))
}

/// Appends a tensor's values, as integers, to `classes`.
fn extend_classes(t: &Tensor, classes: &mut Vec<i64>) -> Result<(), String> {
    if kernels::with_slice::<i64, _>(t, |v| classes.extend_from_slice(v)).is_some() {
        return Ok(());
    }
    let v = t
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::I64))
        .and_then(|t| t.to_vec1::<i64>())
        .map_err(|e| e.to_string())?;
    classes.extend(v);
    Ok(())
}

/// Classes and scores of one batch, in `classes` and `scores` (cleared
/// first; a replay hands in the buffers of a batch already judged, so
/// that nothing is allocated a batch). A binary classifier's score is the
/// probability of its second class (the positive one); with more classes,
/// the probability of the predicted class. `codes` is locked only to code a
/// class map's labels (a few a batch): a replay's workers share it (to
/// answer and to read labels), and held through a whole batch's conversion
/// it made each wait on the others for that long.
pub fn answers(
    outputs: &[(String, Value)],
    roles: &Roles,
    codes: &Mutex<ClassCodes>,
    classes: &mut Vec<i64>,
    scores: &mut Vec<f64>,
) -> Result<(), String> {
    let find = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("output '{name}' missing from a batch"))
    };
    classes.clear();
    scores.clear();
    if let Some(name) = &roles.value {
        let t = find(name)?.tensor()?;
        return with_f32_rows(t, |v| scores.extend(v.iter().map(|&x| f64::from(x))));
    }
    if let Some(name) = &roles.class {
        extend_classes(find(name)?.tensor()?, classes)?;
    }
    match &roles.probabilities {
        Some(name) => {
            let (class_labels, t) = match find(name)? {
                Value::ClassMap {
                    labels,
                    probabilities,
                } => (
                    Some({
                        let mut codes = codes.lock().expect("class codes");
                        labels.iter().map(|l| codes.code(l)).collect::<Vec<_>>()
                    }),
                    probabilities,
                ),
                Value::Tensor(t) => (None, t),
            };
            let width = t.dims().get(1).copied().unwrap_or(1).max(1);
            let with_class = roles.class.is_some();
            with_f32_rows(t, |probabilities| match width {
                // A binary classifier with a class output: the score is the
                // second column, nothing to search.
                2 if with_class => {
                    scores.extend(probabilities.chunks_exact(2).map(|row| f64::from(row[1])))
                }
                _ => {
                    for row in probabilities.chunks_exact(width) {
                        let top = (0..width)
                            .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                            .unwrap_or(0);
                        if !with_class {
                            classes.push(class_labels.as_ref().map_or(top as i64, |l| l[top]));
                        }
                        let score = if width == 2 { row[1] } else { row[top] };
                        scores.push(f64::from(score));
                    }
                }
            })?;
        }
        None => scores.extend(std::iter::repeat_n(f64::NAN, classes.len())),
    }
    if classes.len() != scores.len() {
        return Err(format!(
            "the class output has {} rows, the probabilities {}",
            classes.len(),
            scores.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_labels_and_their_text_share_a_code() {
        let mut codes = ClassCodes::default();
        assert_eq!(codes.code("1"), 1);
        assert_eq!(ClassCodes::number(1.0), Some(1));
        assert_eq!(ClassCodes::number(0.5), None);
        let cat = codes.code("cat");
        assert_eq!(codes.code("cat"), cat);
        assert_ne!(codes.code("dog"), cat);
        assert_eq!(codes.name(cat), "cat");
    }

    #[test]
    fn probabilities_alone_give_the_argmax_class() {
        let device = candle_core::Device::Cpu;
        let p = Tensor::from_vec(vec![0.2f32, 0.8, 0.7, 0.3], (2, 2), &device).unwrap();
        let outputs = vec![("probs".to_string(), Value::Tensor(p))];
        let roles = roles(&outputs, None).unwrap();
        assert_eq!(roles.task, Task::Classification);
        // A replay hands in the buffers of a batch already judged.
        let (mut classes, mut scores) = (vec![7, 7, 7], vec![0.5; 3]);
        let codes = Mutex::new(ClassCodes::default());
        answers(&outputs, &roles, &codes, &mut classes, &mut scores).unwrap();
        assert_eq!(classes, vec![1, 0]);
        assert!((scores[0] - 0.8).abs() < 1e-6 && (scores[1] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn a_class_output_and_probabilities_give_the_class_and_the_positive_score() {
        let device = candle_core::Device::Cpu;
        let p = Tensor::from_vec(vec![0.2f32, 0.8, 0.7, 0.3, 0.4, 0.6], (3, 2), &device).unwrap();
        // The class output need not agree with the probabilities, and one
        // of another integer type reads as int64 classes.
        let c = Tensor::from_vec(vec![1i64, 1, 0], 3, &device).unwrap();
        let u = Tensor::from_vec(vec![1u32, 1, 0], 3, &device).unwrap();
        let codes = Mutex::new(ClassCodes::default());
        for class in [c, u] {
            let outputs = vec![
                ("label".to_string(), Value::Tensor(class)),
                ("probabilities".to_string(), Value::Tensor(p.clone())),
            ];
            let roles = roles(&outputs, None).unwrap();
            let (mut classes, mut scores) = (vec![9; 5], vec![0.1; 5]);
            answers(&outputs, &roles, &codes, &mut classes, &mut scores).unwrap();
            assert_eq!(classes, vec![1, 1, 0]);
            assert_eq!(scores, vec![0.8f32 as f64, 0.3f32 as f64, 0.6f32 as f64]);
        }
    }
}
