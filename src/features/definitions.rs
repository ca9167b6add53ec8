//! The `[features]` section of mlctl.toml: entities, sources, feature views
//! and window aggregations, parsed and checked once. Both paths (the
//! training set and the online store) compute from these definitions, and
//! from nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::Location;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    /// A SQLite file (relative to the config file) or a redis:// URL.
    store: Option<String>,
    #[serde(default)]
    entities: BTreeMap<String, EntityConfig>,
    #[serde(default)]
    sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    views: BTreeMap<String, ViewConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityConfig {
    join_keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceConfig {
    path: String,
    timestamp: String,
    created: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewConfig {
    entity: String,
    source: String,
    ttl: Option<String>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    windows: Vec<WindowConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowConfig {
    name: String,
    column: String,
    aggregation: String,
    window: String,
}

/// A window aggregation over a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Mean,
    Count,
    Min,
    Max,
    CountDistinct,
}

impl Aggregation {
    fn parse(text: &str) -> Option<Aggregation> {
        Some(match text {
            "sum" => Aggregation::Sum,
            "mean" => Aggregation::Mean,
            "count" => Aggregation::Count,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "count_distinct" => Aggregation::CountDistinct,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Mean => "mean",
            Aggregation::Count => "count",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::CountDistinct => "count_distinct",
        }
    }
}

/// One feature of a view: the latest value of a source column, or an
/// aggregation of a column's events over a trailing window.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Latest {
        name: String,
    },
    Window {
        name: String,
        column: String,
        aggregation: Aggregation,
        /// Microseconds: events in (t - window, t].
        window: i64,
    },
}

impl Feature {
    pub fn name(&self) -> &str {
        match self {
            Feature::Latest { name } | Feature::Window { name, .. } => name,
        }
    }

    /// The source column it reads.
    pub fn column(&self) -> &str {
        match self {
            Feature::Latest { name } => name,
            Feature::Window { column, .. } => column,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: PathBuf,
    pub timestamp: String,
    pub created: Option<String>,
}

#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub entity: String,
    pub join_keys: Vec<String>,
    pub source: Source,
    /// Microseconds; None: values never expire.
    pub ttl: Option<i64>,
    pub features: Vec<Feature>,
}

impl View {
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name() == name)
    }

    /// The longest window (0 without windows).
    pub fn longest_window(&self) -> i64 {
        self.features
            .iter()
            .map(|f| match f {
                Feature::Window { window, .. } => *window,
                Feature::Latest { .. } => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Definitions {
    pub store: Location,
    pub views: Vec<View>,
}

impl Definitions {
    pub fn view(&self, name: &str) -> Result<&View> {
        self.views.iter().find(|v| v.name == name).ok_or_else(|| {
            Error::usage(format!(
                "no feature view '{name}' in [features.views] (views: {})",
                self.views
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Resolves `view:feature` references (or `view` for all of a view's
    /// features), in the order given, each feature once.
    pub fn resolve(&self, references: &[String]) -> Result<Vec<(&View, &Feature)>> {
        let mut out = Vec::new();
        for reference in references {
            let (view_name, feature_name) = match reference.split_once(':') {
                Some((v, f)) => (v, Some(f)),
                None => (reference.as_str(), None),
            };
            let view = self.view(view_name)?;
            match feature_name {
                Some(f) => {
                    let feature = view.feature(f).ok_or_else(|| {
                        Error::usage(format!(
                            "unknown feature '{reference}': view '{view_name}' has {}",
                            view.features
                                .iter()
                                .map(|f| f.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                    out.push((view, feature));
                }
                None => out.extend(view.features.iter().map(|f| (view, f))),
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|(v, f)| seen.insert((v.name.as_str(), f.name())));
        Ok(out)
    }
}

/// A duration: 30s, 15m, 6h, 7d, 2w (in microseconds), as `--window`
/// takes it.
pub fn parse_duration(text: &str) -> Option<i64> {
    match text.parse() {
        Ok(crate::drift::window::Window::Time(micros)) => Some(micros),
        _ => None,
    }
}

/// Parses the `[features]` section (`section` is its TOML value); relative
/// paths are relative to `base` (the config file's folder).
pub fn parse(
    section: Option<&toml::Value>,
    config_path: &Path,
    base: &Path,
) -> Result<Definitions> {
    let bad = |message: String| Error::input(config_path, message);
    let section: Section = section
        .ok_or_else(|| bad("no [features] section: define entities, sources and views there (docs/features.md)".into()))?
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[features]: {e}")))?;
    let store = match section.store.as_deref() {
        None => Location::Sqlite(base.join("features.db")),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Location::Redis(url.to_string())
        }
        Some(path) => Location::Sqlite(base.join(path.strip_prefix("sqlite://").unwrap_or(path))),
    };
    let mut views = Vec::new();
    for (name, v) in &section.views {
        let entity = section.entities.get(&v.entity).ok_or_else(|| {
            bad(format!(
                "view '{name}': no entity '{}' in [features.entities]",
                v.entity
            ))
        })?;
        if entity.join_keys.is_empty() {
            return Err(bad(format!("entity '{}': join_keys is empty", v.entity)));
        }
        let s = section.sources.get(&v.source).ok_or_else(|| {
            bad(format!(
                "view '{name}': no source '{}' in [features.sources]",
                v.source
            ))
        })?;
        let ttl = match &v.ttl {
            None => None,
            Some(t) => Some(parse_duration(t).ok_or_else(|| {
                bad(format!(
                    "view '{name}': bad ttl '{t}' (expected 30s, 15m, 6h, 7d or 2w)"
                ))
            })?),
        };
        let mut features: Vec<Feature> = v
            .features
            .iter()
            .map(|f| Feature::Latest { name: f.clone() })
            .collect();
        for w in &v.windows {
            let aggregation = Aggregation::parse(&w.aggregation).ok_or_else(|| {
                bad(format!(
                    "view '{name}', window '{}': unknown aggregation '{}' (sum, mean, count, min, max, count_distinct)",
                    w.name, w.aggregation
                ))
            })?;
            let window = parse_duration(&w.window).ok_or_else(|| {
                bad(format!(
                    "view '{name}', window '{}': bad window '{}'",
                    w.name, w.window
                ))
            })?;
            features.push(Feature::Window {
                name: w.name.clone(),
                column: w.column.clone(),
                aggregation,
                window,
            });
        }
        if features.is_empty() {
            return Err(bad(format!("view '{name}' has no features")));
        }
        let mut names: Vec<&str> = features.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
            return Err(bad(format!("view '{name}' defines '{}' twice", pair[0])));
        }
        views.push(View {
            name: name.clone(),
            entity: v.entity.clone(),
            join_keys: entity.join_keys.clone(),
            source: Source {
                name: v.source.clone(),
                path: base.join(&s.path),
                timestamp: s.timestamp.clone(),
                created: s.created.clone(),
            },
            ttl,
            features,
        });
    }
    if views.is_empty() {
        return Err(bad("[features] defines no views".into()));
    }
    Ok(Definitions { store, views })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Definitions> {
        let value: toml::Value = toml::from_str(text).unwrap();
        parse(
            value.get("features"),
            Path::new("mlctl.toml"),
            Path::new("/project"),
        )
    }

    const SAMPLE: &str = r#"
        [features]
        store = "store.db"
        [features.entities.aircraft]
        join_keys = ["tailnum"]
        [features.sources.flights]
        path = "flights/*.parquet"
        timestamp = "time_hour"
        [features.views.delays]
        entity = "aircraft"
        source = "flights"
        ttl = "7d"
        features = ["dep_delay"]
        [[features.views.delays.windows]]
        name = "dep_delay_mean_7d"
        column = "dep_delay"
        aggregation = "mean"
        window = "7d"
    "#;

    #[test]
    fn definitions_resolve_to_views_and_features() {
        let d = parse_text(SAMPLE).unwrap();
        assert_eq!(d.store, Location::Sqlite("/project/store.db".into()));
        let v = d.view("delays").unwrap();
        assert_eq!(v.ttl, Some(7 * 86_400_000_000));
        assert_eq!(v.source.path, PathBuf::from("/project/flights/*.parquet"));
        assert_eq!(v.longest_window(), 7 * 86_400_000_000);
        let all = d.resolve(&["delays".into()]).unwrap();
        assert_eq!(all.len(), 2);
        let twice = d
            .resolve(&["delays".into(), "delays:dep_delay".into()])
            .unwrap();
        assert_eq!(twice.len(), 2, "a feature asked for twice comes once");
        let one = d.resolve(&["delays:dep_delay_mean_7d".into()]).unwrap();
        assert!(matches!(
            one[0].1,
            Feature::Window {
                aggregation: Aggregation::Mean,
                ..
            }
        ));
    }

    #[test]
    fn unknown_references_and_bad_definitions_are_named() {
        let d = parse_text(SAMPLE).unwrap();
        let e = d.resolve(&["delays:nope".into()]).unwrap_err().to_string();
        assert!(
            e.contains("delays:nope") && e.contains("dep_delay_mean_7d"),
            "{e}"
        );
        let e = d.resolve(&["other".into()]).unwrap_err().to_string();
        assert!(e.contains("'other'"), "{e}");
        let e = parse_text(&SAMPLE.replace("\"mean\"", "\"median\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("median"), "{e}");
        let e = parse_text(&SAMPLE.replace("ttl = \"7d\"", "ttl = \"7 days\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ttl"), "{e}");
        let e = parse_text(&SAMPLE.replace("entity = \"aircraft\"", "entity = \"plane\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("plane"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90_000_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000_000));
        assert_eq!(parse_duration("0d"), None);
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("d"), None);
    }
}
