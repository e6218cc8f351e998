//! The hardware and model catalog: peak GPU figures, model parameter counts and rental prices,
//! which NVML and vLLM do not report but the roofline needs.
//!
//! The catalog is two TOML files, `catalog/gpus.toml` and `catalog/models.toml`, compiled into
//! the binary so that analysis works anywhere, and loadable from a directory instead
//! (`--catalog DIR`) so that a user can correct a figure without rebuilding. Each entry says
//! where its figures come from. Entries keep file order everywhere (matching ties, listings),
//! so the same files always give the same answers.
//!
//! Names are matched by tokens, not substrings, so that "gb200" never reads as "b200" and
//! "mistralai" never reads as "mistral"; see [`tokens`] and [`Catalog::match_gpu`].
//!
//! [`roofline`] and [`economics`] hold the formulas that turn these figures into ceilings,
//! footprints and costs.

pub mod economics;
pub mod roofline;

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Embedded copy of `catalog/gpus.toml`.
const EMBEDDED_GPUS: &str = include_str!("../../catalog/gpus.toml");
/// Embedded copy of `catalog/models.toml`.
const EMBEDDED_MODELS: &str = include_str!("../../catalog/models.toml");

/// File name of the GPU table inside a catalog directory.
pub const GPUS_FILE: &str = "gpus.toml";
/// File name of the model table inside a catalog directory.
pub const MODELS_FILE: &str = "models.toml";

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A catalog file could not be read.
    #[error("cannot read catalog file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A catalog file is not valid TOML or does not have the expected shape. The message from
    /// the TOML parser names the line, column and key.
    #[error("invalid catalog file {file}: {message}")]
    Parse {
        /// The file (a path, or `embedded gpus.toml`).
        file: String,
        /// What the parser said.
        message: String,
    },
    /// One entry parsed but its contents make no sense (a negative bandwidth, an empty match
    /// set, a duplicate id, ...).
    #[error("invalid catalog entry {entry} in {file}: {message}")]
    Entry {
        /// The file (a path, or `embedded gpus.toml`).
        file: String,
        /// The entry, as `gpu[3] "h100-sxm"`.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

/// One GPU of the catalog. Peak figures are optional: an entry may carry prices only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Stable identifier, e.g. `h100-sxm`.
    pub id: String,
    /// Display name, e.g. `H100 SXM`.
    pub name: String,
    /// Architecture, e.g. `Hopper`.
    pub arch: Option<String>,
    /// Dense FP32 throughput without tensor cores, TFLOP/s: the spec's conservative compute
    /// input to the prefill ceiling.
    pub fp32_tflops: Option<f64>,
    /// Peak memory bandwidth, GB/s (GB = 1e9 bytes): the input to the decode ceiling.
    pub mem_bw_gbps: Option<f64>,
    /// Market-average on-demand rental, US dollars per GPU-hour.
    pub on_demand_usd_per_hour: Option<f64>,
    /// Market-average spot rental, US dollars per GPU-hour.
    pub spot_usd_per_hour: Option<f64>,
    /// Memory as marketed, GB. For listings only: analysis reads the total from NVML.
    pub vram_gb: Option<f64>,
    /// Token sets, any one of which identifies this GPU in an NVML name.
    #[serde(rename = "match")]
    pub match_sets: Vec<Vec<String>>,
    /// Tokens that rule this entry out even when a match set is present.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where the figures come from.
    pub source: String,
    /// Why the entry matches what it matches.
    pub note: Option<String>,
}

impl GpuSpec {
    /// Whether the entry has both peak figures, which every ceiling needs. A10G and GB200
    /// carry prices only and have no roofline.
    pub fn has_roofline(&self) -> bool {
        self.fp32_tflops.is_some() && self.mem_bw_gbps.is_some()
    }
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Stable identifier, e.g. `llama-3-70b`.
    pub id: String,
    /// Display name, e.g. `Llama 3 70B`.
    pub name: String,
    /// All parameters, billions. Sets the weight footprint.
    pub total_params_b: Option<f64>,
    /// Parameters used per token, billions. Sets the ceilings; below the total for a mixture
    /// of experts.
    pub active_params_b: Option<f64>,
    /// Whether the model is a mixture of experts.
    pub moe: bool,
    /// The dtype the published weights ship in, the third step of the dtype resolution.
    pub default_dtype: Option<String>,
    /// Token sets, any one of which identifies this model in a served model name.
    #[serde(rename = "match")]
    pub match_sets: Vec<Vec<String>>,
    /// Tokens that rule this entry out even when a match set is present.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where the figures come from.
    pub source: String,
    /// Which names map here, and why.
    pub note: Option<String>,
}

impl ModelSpec {
    /// Parameters that bound the ceilings, absolute count: active if known, else total
    /// (spec, Math / Roofline, baseline input `roofline_params`).
    pub fn roofline_params(&self) -> Option<f64> {
        roofline::roofline_params(self.active_params_b, self.total_params_b)
    }

    /// Parameters that occupy memory, absolute count: total if known, else active
    /// (spec, Math / Roofline, baseline input `weight_params`).
    pub fn weight_params(&self) -> Option<f64> {
        roofline::weight_params(self.active_params_b, self.total_params_b)
    }
}

/// The on-disk shape of `gpus.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuFile {
    #[serde(default)]
    gpu: Vec<GpuSpec>,
}

/// The on-disk shape of `models.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    #[serde(default)]
    model: Vec<ModelSpec>,
}

/// A loaded, validated catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    origin: String,
    gpus: Vec<GpuSpec>,
    models: Vec<ModelSpec>,
}

/// Both tables of a catalog in file order, with where they came from: what `profile catalog`
/// prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntries<'a> {
    /// `embedded` or the directory loaded.
    pub origin: &'a str,
    /// GPUs, in file order.
    pub gpus: &'a [GpuSpec],
    /// Models, in file order.
    pub models: &'a [ModelSpec],
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Catalog::from_toml_strs(
            "embedded",
            EMBEDDED_GPUS,
            "embedded gpus.toml",
            EMBEDDED_MODELS,
            "embedded models.toml",
        )
    }

    /// Loads `gpus.toml` and `models.toml` from `dir`. Both must be present: a half-replaced
    /// catalog would mix sources silently.
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|text| (text, path.display().to_string()))
                .map_err(|source| CatalogError::Read { path, source })
        };
        let (gpus, gpus_label) = read(GPUS_FILE)?;
        let (models, models_label) = read(MODELS_FILE)?;
        Catalog::from_toml_strs(
            &dir.display().to_string(),
            &gpus,
            &gpus_label,
            &models,
            &models_label,
        )
    }

    /// Parses and validates the two tables from text. The labels name the inputs in errors.
    pub fn from_toml_strs(
        origin: &str,
        gpus_toml: &str,
        gpus_label: &str,
        models_toml: &str,
        models_label: &str,
    ) -> Result<Catalog, CatalogError> {
        let gpus: GpuFile = toml::from_str(gpus_toml).map_err(|e| CatalogError::Parse {
            file: gpus_label.to_string(),
            message: e.to_string(),
        })?;
        let models: ModelFile = toml::from_str(models_toml).map_err(|e| CatalogError::Parse {
            file: models_label.to_string(),
            message: e.to_string(),
        })?;
        let mut ids = BTreeSet::new();
        for (i, g) in gpus.gpu.iter().enumerate() {
            let entry_err = |message: String| CatalogError::Entry {
                file: gpus_label.to_string(),
                entry: format!("gpu[{i}] {:?}", g.id),
                message,
            };
            let figures = [
                ("fp32_tflops", g.fp32_tflops),
                ("mem_bw_gbps", g.mem_bw_gbps),
                ("vram_gb", g.vram_gb),
            ];
            check_positive(&figures).map_err(entry_err)?;
            let prices = [
                ("on_demand_usd_per_hour", g.on_demand_usd_per_hour),
                ("spot_usd_per_hour", g.spot_usd_per_hour),
            ];
            check_non_negative(&prices).map_err(entry_err)?;
            check_common(&g.id, &g.name, &g.match_sets, &g.exclude, &mut ids).map_err(entry_err)?;
        }
        let mut ids = BTreeSet::new();
        for (i, m) in models.model.iter().enumerate() {
            let entry_err = |message: String| CatalogError::Entry {
                file: models_label.to_string(),
                entry: format!("model[{i}] {:?}", m.id),
                message,
            };
            let figures = [
                ("total_params_b", m.total_params_b),
                ("active_params_b", m.active_params_b),
            ];
            check_positive(&figures).map_err(entry_err)?;
            if let (Some(total), Some(active)) = (m.total_params_b, m.active_params_b) {
                if active > total {
                    return Err(entry_err(format!(
                        "active_params_b {active} exceeds total_params_b {total}"
                    )));
                }
            }
            if let Some(dtype) = &m.default_dtype {
                if roofline::bytes_per_param(dtype).is_none() {
                    return Err(entry_err(format!(
                        "default_dtype {dtype:?} is not a known dtype"
                    )));
                }
            }
            check_common(&m.id, &m.name, &m.match_sets, &m.exclude, &mut ids).map_err(entry_err)?;
        }
        Ok(Catalog {
            origin: origin.to_string(),
            gpus: gpus.gpu,
            models: models.model,
        })
    }

    /// Where this catalog came from: `embedded` or a directory.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// GPU entries in file order.
    pub fn gpus(&self) -> &[GpuSpec] {
        &self.gpus
    }

    /// Model entries in file order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// Both tables with their origin, for `profile catalog`.
    pub fn entries(&self) -> CatalogEntries<'_> {
        CatalogEntries {
            origin: &self.origin,
            gpus: &self.gpus,
            models: &self.models,
        }
    }

    /// The GPU entry for a name as NVML reports it (`NVIDIA H100 80GB HBM3`), if any.
    ///
    /// An entry matches when all tokens of one of its match sets occur in the name and none of
    /// its exclude tokens does; the entry whose matching set is longest wins, and a tie goes to
    /// the entry listed first. A name that says too little (a bare `NVIDIA A100`) matches
    /// nothing rather than a guess.
    pub fn match_gpu(&self, nvml_name: &str) -> Option<&GpuSpec> {
        let name = tokens(nvml_name);
        best_match(
            self.gpus
                .iter()
                .map(|g| (g, match_score(&name, &g.match_sets, &g.exclude))),
        )
    }

    /// The model entry for a model name as vLLM reports it (`meta-llama/Llama-3.1-70B-Instruct`),
    /// if any, by the same rule as [`Catalog::match_gpu`].
    pub fn match_model(&self, vllm_model_name: &str) -> Option<&ModelSpec> {
        let name = tokens(vllm_model_name);
        best_match(
            self.models
                .iter()
                .map(|m| (m, match_score(&name, &m.match_sets, &m.exclude))),
        )
    }
}

/// Splits a name into lower-case tokens at every character that is not a letter or digit:
/// `NVIDIA A100-SXM4-80GB` gives `nvidia a100 sxm4 80gb`, `Llama-3.1-70B` gives `llama 3 1 70b`,
/// `Mixtral-8x7B` gives `mixtral 8x7b`.
pub fn tokens(name: &str) -> BTreeSet<String> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The length of the longest match set wholly present in `name`, or `None` when no set is, or
/// when an exclude token is present.
fn match_score(name: &BTreeSet<String>, sets: &[Vec<String>], exclude: &[String]) -> Option<usize> {
    if exclude.iter().any(|t| name.contains(t)) {
        return None;
    }
    sets.iter()
        .filter(|set| set.iter().all(|t| name.contains(t)))
        .map(Vec::len)
        .max()
}

/// The first entry with the highest score (file order breaks ties).
fn best_match<'a, T>(scored: impl Iterator<Item = (&'a T, Option<usize>)>) -> Option<&'a T> {
    let mut best: Option<(&'a T, usize)> = None;
    for (entry, score) in scored {
        if let Some(score) = score {
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((entry, score));
            }
        }
    }
    best.map(|(entry, _)| entry)
}

/// Each given figure, when present, must be finite and above zero.
fn check_positive(figures: &[(&str, Option<f64>)]) -> Result<(), String> {
    for (name, v) in figures {
        if let Some(v) = v {
            if !(v.is_finite() && *v > 0.0) {
                return Err(format!("{name} must be a positive number, got {v}"));
            }
        }
    }
    Ok(())
}

/// Each given price, when present, must be finite and not negative.
fn check_non_negative(figures: &[(&str, Option<f64>)]) -> Result<(), String> {
    for (name, v) in figures {
        if let Some(v) = v {
            if !(v.is_finite() && *v >= 0.0) {
                return Err(format!("{name} must be zero or more, got {v}"));
            }
        }
    }
    Ok(())
}

/// Checks what GPU and model entries share: a unique non-empty id, a name, and match and
/// exclude tokens in the form [`tokens`] produces (otherwise they could never match).
fn check_common(
    id: &str,
    name: &str,
    sets: &[Vec<String>],
    exclude: &[String],
    seen: &mut BTreeSet<String>,
) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("id is empty".to_string());
    }
    if !seen.insert(id.to_string()) {
        return Err(format!("duplicate id {id:?}"));
    }
    if name.trim().is_empty() {
        return Err("name is empty".to_string());
    }
    if sets.is_empty() {
        return Err("no match set: the entry could never match".to_string());
    }
    for set in sets {
        if set.is_empty() {
            return Err("an empty match set would match every name".to_string());
        }
    }
    for t in sets.iter().flatten().chain(exclude) {
        let normal = tokens(t);
        if normal.len() != 1 || !normal.contains(t) {
            return Err(format!(
                "token {t:?} is not one lower-case run of letters and digits, so it never matches"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalog {
        Catalog::embedded().unwrap()
    }

    fn gpu_id(name: &str) -> Option<String> {
        cat().match_gpu(name).map(|g| g.id.clone())
    }

    fn model_id(name: &str) -> Option<String> {
        cat().match_model(name).map(|m| m.id.clone())
    }

    #[test]
    fn tokens_split_at_non_alphanumerics_and_lowercase() {
        let t: Vec<String> = tokens("NVIDIA A100-SXM4-80GB").into_iter().collect();
        assert_eq!(t, ["80gb", "a100", "nvidia", "sxm4"]);
        let t: Vec<String> = tokens("mistralai/Mixtral-8x7B-Instruct-v0.1")
            .into_iter()
            .collect();
        assert_eq!(t, ["1", "8x7b", "instruct", "mistralai", "mixtral", "v0"]);
        let t: Vec<String> = tokens("meta-llama/Llama-3.1-70B").into_iter().collect();
        assert_eq!(t, ["1", "3", "70b", "llama", "meta"]);
        assert!(tokens(" -/ ").is_empty());
    }

    #[test]
    fn embedded_catalog_has_every_spec_row() {
        let c = cat();
        assert_eq!(c.origin(), "embedded");
        let gpus: Vec<&str> = c.gpus().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            gpus,
            [
                "H100 PCIe",
                "H100 SXM",
                "H200",
                "A100 80GB",
                "A100 40GB",
                "A10G",
                "L40S",
                "RTX 4090",
                "RTX Pro 6000 Blackwell",
                "B200",
                "GB200",
                "GB10 (DGX Spark)"
            ]
        );
        assert_eq!(c.models().len(), 32);
        assert!(c.gpus().iter().all(|g| !g.source.is_empty()));
        assert!(c.models().iter().all(|m| !m.source.is_empty()));
    }

    #[test]
    fn gpu_figures_carry_over_from_the_spec_table() {
        // (id, fp32 TFLOPs, GB/s, on-demand, spot), as in the spec's GPU table.
        type Row = (
            &'static str,
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        let rows: [Row; 12] = [
            (
                "h100-pcie",
                Some(60.0),
                Some(2000.0),
                Some(2.20),
                Some(0.90),
            ),
            ("h100-sxm", Some(67.0), Some(3350.0), Some(3.45), Some(1.85)),
            ("h200", Some(67.0), Some(4800.0), Some(3.50), Some(2.00)),
            (
                "a100-80gb",
                Some(19.5),
                Some(2039.0),
                Some(1.50),
                Some(0.60),
            ),
            (
                "a100-40gb",
                Some(19.5),
                Some(1555.0),
                Some(1.50),
                Some(0.60),
            ),
            ("a10g", None, None, Some(1.00), Some(0.40)),
            ("l40s", Some(91.6), Some(864.0), Some(1.80), Some(0.80)),
            ("rtx-4090", Some(82.6), Some(1008.0), None, None),
            (
                "rtx-pro-6000-blackwell",
                Some(125.0),
                Some(960.0),
                None,
                None,
            ),
            ("b200", Some(20.0), Some(8000.0), Some(6.00), Some(3.50)),
            ("gb200", None, None, Some(8.50), Some(4.00)),
            ("gb10", Some(20.0), Some(273.0), None, None),
        ];
        let c = cat();
        for (g, (id, tflops, bw, od, spot)) in c.gpus().iter().zip(rows) {
            assert_eq!(g.id, id);
            assert_eq!(
                (
                    g.fp32_tflops,
                    g.mem_bw_gbps,
                    g.on_demand_usd_per_hour,
                    g.spot_usd_per_hour
                ),
                (tflops, bw, od, spot),
                "{id}"
            );
        }
        let no_roofline: Vec<&str> = c
            .gpus()
            .iter()
            .filter(|g| !g.has_roofline())
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(no_roofline, ["a10g", "gb200"]);
    }

    #[test]
    fn model_figures_carry_over_from_the_spec_table() {
        let c = cat();
        let get = |id: &str| c.models().iter().find(|m| m.id == id).unwrap();
        let mixtral = get("mixtral-8x7b");
        assert_eq!(
            (mixtral.total_params_b, mixtral.active_params_b),
            (Some(47.0), Some(13.0))
        );
        assert!(mixtral.moe);
        let kimi = get("kimi-k2");
        assert_eq!(
            (kimi.total_params_b, kimi.active_params_b),
            (Some(1000.0), Some(32.0))
        );
        let l70 = get("llama-3-70b");
        assert_eq!(
            (l70.total_params_b, l70.active_params_b),
            (Some(70.0), Some(70.0))
        );
        assert!(!l70.moe);
        // Every MoE row has fewer active than total parameters, every dense row the same.
        for m in c.models() {
            let (t, a) = (m.total_params_b.unwrap(), m.active_params_b.unwrap());
            assert_eq!(m.moe, a < t, "{}", m.id);
        }
        // The spec's model table, row by row: (display name, total B, active B).
        let table = [
            ("Llama 4 Maverick", 400.0, 17.0),
            ("Llama 4 Scout", 109.0, 17.0),
            ("Llama 3 405B", 405.0, 405.0),
            ("Llama 3 70B", 70.0, 70.0),
            ("Llama 3 8B", 8.0, 8.0),
            ("Nemotron 70B", 70.0, 70.0),
            ("Nemotron 8B", 8.0, 8.0),
            ("Qwen3 235B", 235.0, 22.0),
            ("Qwen3 72B", 72.0, 72.0),
            ("Qwen3 32B", 32.0, 32.0),
            ("Qwen3 30B", 30.0, 3.0),
            ("Qwen3 14B", 14.0, 14.0),
            ("Qwen3 7B", 7.0, 7.0),
            ("Qwen2.5 72B", 72.0, 72.0),
            ("Qwen2.5 32B", 32.0, 32.0),
            ("Qwen2.5 14B", 14.0, 14.0),
            ("Qwen2.5 7B", 7.0, 7.0),
            ("DeepSeek 671B / R1 / V3", 671.0, 37.0),
            ("DeepSeek 70B", 70.0, 70.0),
            ("DeepSeek 7B", 7.0, 7.0),
            ("Mistral Large 675B", 675.0, 52.0),
            ("Mistral Large 123B", 123.0, 123.0),
            ("Mixtral 8x22B", 141.0, 39.0),
            ("Mixtral 8x7B", 47.0, 13.0),
            ("Mistral 7B", 7.0, 7.0),
            ("Gemma 27B", 27.0, 27.0),
            ("Gemma 9B", 9.0, 9.0),
            ("Kimi K2", 1000.0, 32.0),
            ("GLM 744B", 744.0, 56.0),
            ("GLM 32B", 32.0, 32.0),
            ("Phi 4 32B", 32.0, 32.0),
            ("Phi 4 14B", 14.0, 14.0),
        ];
        assert_eq!(c.models().len(), table.len());
        for (m, (name, total, active)) in c.models().iter().zip(table) {
            assert_eq!(
                (m.name.as_str(), m.total_params_b, m.active_params_b),
                (name, Some(total), Some(active))
            );
        }
        assert_eq!(c.models().iter().filter(|m| m.moe).count(), 10);
        assert_eq!(get("deepseek-671b").default_dtype.as_deref(), Some("fp8"));
        assert_eq!(get("llama-3-8b").default_dtype, None);
    }

    #[test]
    fn gpu_names_match_as_documented() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", Some("h100-sxm")),
            ("NVIDIA H100 SXM5 80GB", Some("h100-sxm")),
            ("NVIDIA H100 PCIe", Some("h100-pcie")),
            ("NVIDIA H100 NVL", None),
            ("NVIDIA H100", None),
            ("NVIDIA H200", Some("h200")),
            ("NVIDIA H200 NVL", Some("h200")),
            ("NVIDIA GH200 480GB", None),
            ("NVIDIA A100-SXM4-80GB", Some("a100-80gb")),
            ("NVIDIA A100 80GB PCIe", Some("a100-80gb")),
            ("NVIDIA A100-PCIE-40GB", Some("a100-40gb")),
            ("NVIDIA A100-SXM4-40GB", Some("a100-40gb")),
            ("NVIDIA A100", None),
            ("A100", None),
            ("NVIDIA A10G", Some("a10g")),
            ("NVIDIA A10", None),
            ("NVIDIA L40S", Some("l40s")),
            ("NVIDIA L40", None),
            ("NVIDIA GeForce RTX 4090", Some("rtx-4090")),
            ("NVIDIA GeForce RTX 4090 D", Some("rtx-4090")),
            ("NVIDIA GeForce RTX 4090 Laptop GPU", None),
            (
                "NVIDIA RTX PRO 6000 Blackwell Server Edition",
                Some("rtx-pro-6000-blackwell"),
            ),
            (
                "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
                Some("rtx-pro-6000-blackwell"),
            ),
            ("NVIDIA RTX 6000 Ada Generation", None),
            ("NVIDIA B200", Some("b200")),
            ("NVIDIA GB200", Some("gb200")),
            ("NVIDIA GB10", Some("gb10")),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(gpu_id(name).as_deref(), want, "{name:?}");
        }
    }

    #[test]
    fn model_names_match_as_documented() {
        let cases = [
            ("meta-llama/Llama-3.1-70B-Instruct", Some("llama-3-70b")),
            ("meta-llama/Llama-3.3-70B-Instruct", Some("llama-3-70b")),
            ("meta-llama/Meta-Llama-3-8B", Some("llama-3-8b")),
            (
                "meta-llama/Llama-3.1-405B-Instruct-FP8",
                Some("llama-3-405b"),
            ),
            (
                "meta-llama/Llama-4-Scout-17B-16E-Instruct",
                Some("llama-4-scout"),
            ),
            (
                "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
                Some("llama-4-maverick"),
            ),
            ("meta-llama/Llama-2-70b-hf", None),
            ("meta-llama/Llama-3.2-1B", None),
            ("Llama-3.2-1B", None),
            ("Qwen/Qwen2.5-7B-Instruct", Some("qwen2.5-7b")),
            ("Qwen/Qwen2.5-72B-Instruct", Some("qwen2.5-72b")),
            ("Qwen/Qwen2-7B-Instruct", None),
            ("Qwen/Qwen3-30B-A3B", Some("qwen3-30b")),
            ("Qwen/Qwen3-235B-A22B", Some("qwen3-235b")),
            ("Qwen/Qwen3-32B", Some("qwen3-32b")),
            ("deepseek-ai/DeepSeek-R1", Some("deepseek-671b")),
            ("deepseek-ai/DeepSeek-V3", Some("deepseek-671b")),
            ("deepseek-ai/DeepSeek-V3-0324", Some("deepseek-671b")),
            (
                "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
                Some("deepseek-70b"),
            ),
            (
                "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                Some("deepseek-7b"),
            ),
            ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", None),
            ("deepseek-ai/DeepSeek-V2", None),
            ("mistralai/Mixtral-8x7B-Instruct-v0.1", Some("mixtral-8x7b")),
            (
                "mistralai/Mixtral-8x22B-Instruct-v0.1",
                Some("mixtral-8x22b"),
            ),
            ("mistralai/Mistral-7B-Instruct-v0.3", Some("mistral-7b")),
            (
                "mistralai/Mistral-Large-Instruct-2411",
                Some("mistral-large-123b"),
            ),
            (
                "mistralai/Mistral-Large-3-675B-Instruct-2512",
                Some("mistral-large-675b"),
            ),
            (
                "nvidia/Llama-3.1-Nemotron-70B-Instruct",
                Some("nemotron-70b"),
            ),
            ("nvidia/Llama-3.1-Nemotron-Nano-8B-v1", Some("nemotron-8b")),
            ("google/gemma-2-27b-it", Some("gemma-27b")),
            ("google/gemma-2-9b-it", Some("gemma-9b")),
            ("moonshotai/Kimi-K2-Instruct", Some("kimi-k2")),
            ("zai-org/GLM-5", Some("glm-744b")),
            ("zai-org/GLM-4.5-Air", None),
            ("THUDM/GLM-4-32B-0414", Some("glm-32b")),
            ("microsoft/phi-4", Some("phi-4-14b")),
            ("microsoft/Phi-4-mini-instruct", None),
            ("tiny-llama", None),
            ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(model_id(name).as_deref(), want, "{name:?}");
        }
    }

    /// The winner of every documented name must be unique: no second entry may reach the
    /// same score, or the answer would hang on file order alone.
    #[test]
    fn documented_names_have_no_ties() {
        let c = cat();
        let names = [
            "meta-llama/Llama-3.1-70B-Instruct",
            "nvidia/Llama-3.1-Nemotron-70B-Instruct",
            "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            "deepseek-ai/DeepSeek-R1",
            "mistralai/Mixtral-8x7B-Instruct-v0.1",
            "mistralai/Mistral-Large-3-675B-Instruct-2512",
            "microsoft/phi-4",
            "Qwen/Qwen3-30B-A3B",
        ];
        for name in names {
            let t = tokens(name);
            let mut scores: Vec<usize> = c
                .models()
                .iter()
                .filter_map(|m| match_score(&t, &m.match_sets, &m.exclude))
                .collect();
            scores.sort_unstable();
            let top = scores.pop().unwrap();
            assert!(scores.last() != Some(&top), "{name}: tie at {top}");
        }
        for name in [
            "NVIDIA H100 80GB HBM3",
            "NVIDIA A100-SXM4-80GB",
            "NVIDIA GB200",
        ] {
            let t = tokens(name);
            let n = c
                .gpus()
                .iter()
                .filter(|g| match_score(&t, &g.match_sets, &g.exclude).is_some())
                .count();
            assert_eq!(n, 1, "{name}");
        }
    }

    #[test]
    fn ties_go_to_the_first_entry_and_longer_sets_win() {
        let gpus = r#"
[[gpu]]
id = "first"
name = "First"
match = [["x"]]
source = "test"
[[gpu]]
id = "second"
name = "Second"
match = [["x"]]
source = "test"
[[gpu]]
id = "longer"
name = "Longer"
match = [["x", "y"]]
source = "test"
"#;
        let c = Catalog::from_toml_strs("t", gpus, "g", "", "m").unwrap();
        assert_eq!(c.match_gpu("X").unwrap().id, "first");
        assert_eq!(c.match_gpu("y-x").unwrap().id, "longer");
        assert!(c.models().is_empty());
        assert!(c.match_model("x").is_none());
    }

    #[test]
    fn entries_list_both_tables_in_file_order() {
        let c = cat();
        let e = c.entries();
        assert_eq!(e.origin, "embedded");
        assert_eq!(e.gpus.first().unwrap().id, "h100-pcie");
        assert_eq!(e.models.first().unwrap().id, "llama-4-maverick");
        assert_eq!(e.models.last().unwrap().id, "phi-4-14b");
        let a = serde_json::to_string(&c.entries()).unwrap();
        let b = serde_json::to_string(&Catalog::embedded().unwrap().entries()).unwrap();
        assert_eq!(a, b);
        assert!(a.contains("\"source\":\"spec catalog table (seed 000)"));
    }

    #[test]
    fn load_dir_reads_both_files_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = Catalog::load_dir(dir.path()).unwrap_err();
        assert!(matches!(&err, CatalogError::Read { path, .. } if path.ends_with(GPUS_FILE)));
        std::fs::write(dir.path().join(GPUS_FILE), EMBEDDED_GPUS).unwrap();
        let err = Catalog::load_dir(dir.path()).unwrap_err();
        assert!(matches!(&err, CatalogError::Read { path, .. } if path.ends_with(MODELS_FILE)));
        std::fs::write(dir.path().join(MODELS_FILE), EMBEDDED_MODELS).unwrap();
        let c = Catalog::load_dir(dir.path()).unwrap();
        assert_eq!(c.gpus(), cat().gpus());
        assert_eq!(c.models(), cat().models());
        assert_eq!(c.origin(), dir.path().display().to_string());
    }

    #[test]
    fn bad_toml_errors_name_the_file_and_position() {
        let err =
            Catalog::from_toml_strs("t", "[[gpu]\nid = 1", "dir/gpus.toml", "", "m").unwrap_err();
        assert!(matches!(&err, CatalogError::Parse { file, .. } if file == "dir/gpus.toml"));
        let msg = err.to_string();
        assert!(
            msg.contains("dir/gpus.toml") && msg.contains("line 1"),
            "{msg}"
        );

        let wrong_type = "[[gpu]]\nid = \"a\"\nname = \"A\"\nmem_bw_gbps = \"fast\"\n\
                          match = [[\"a\"]]\nsource = \"s\"\n";
        let msg = Catalog::from_toml_strs("t", wrong_type, "g.toml", "", "m")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("g.toml") && msg.contains("mem_bw_gbps"),
            "{msg}"
        );

        let unknown = "[[model]]\nid = \"a\"\nname = \"A\"\nmoe = false\nparams = 3\n\
                       match = [[\"a\"]]\nsource = \"s\"\n";
        let msg = Catalog::from_toml_strs("t", "", "g", unknown, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("m.toml") && msg.contains("params"), "{msg}");
    }

    #[test]
    fn bad_entries_are_refused_with_their_name() {
        let gpu = |body: &str| {
            format!("[[gpu]]\nid = \"ok\"\nname = \"Ok\"\nmatch = [[\"ok\"]]\nsource = \"s\"\n[[gpu]]\nname = \"B\"\nsource = \"s\"\n{body}")
        };
        let cases = [
            (
                gpu("id = \"bad\"\nmatch = [[\"b\"]]\nmem_bw_gbps = -1.0"),
                "mem_bw_gbps",
            ),
            (
                gpu("id = \"bad\"\nmatch = [[\"b\"]]\nspot_usd_per_hour = nan"),
                "spot_usd",
            ),
            (gpu("id = \"bad\"\nmatch = []"), "never match"),
            (gpu("id = \"bad\"\nmatch = [[]]"), "every name"),
            (gpu("id = \"bad\"\nmatch = [[\"H100\"]]"), "\"H100\""),
            (gpu("id = \"bad\"\nmatch = [[\"a100-80gb\"]]"), "a100-80gb"),
            (
                gpu("id = \"bad\"\nmatch = [[\"b\"]]\nexclude = [\"N V L\"]"),
                "N V L",
            ),
        ];
        for (text, needle) in cases {
            let err = Catalog::from_toml_strs("t", &text, "g.toml", "", "m").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, CatalogError::Entry { .. }), "{msg}");
            assert!(
                msg.contains("gpu[1] \"bad\"") && msg.contains(needle),
                "{msg}"
            );
        }
        let dup = gpu("id = \"ok\"\nmatch = [[\"b\"]]");
        let msg = Catalog::from_toml_strs("t", &dup, "g.toml", "", "m")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("duplicate id"), "{msg}");

        let model = |body: &str| {
            format!("[[model]]\nid = \"bad\"\nname = \"B\"\nmatch = [[\"b\"]]\nsource = \"s\"\nmoe = true\n{body}")
        };
        let cases = [
            (
                model("total_params_b = 7.0\nactive_params_b = 9.0"),
                "exceeds",
            ),
            (model("total_params_b = 0.0"), "total_params_b"),
            (model("default_dtype = \"auto\""), "default_dtype"),
        ];
        for (text, needle) in cases {
            let msg = Catalog::from_toml_strs("t", "", "g", &text, "m.toml")
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("model[0] \"bad\"") && msg.contains(needle),
                "{msg}"
            );
        }
    }

    #[test]
    fn model_spec_params_follow_the_moe_split() {
        let c = cat();
        let m = c
            .match_model("mistralai/Mixtral-8x7B-Instruct-v0.1")
            .unwrap();
        assert_eq!(m.roofline_params(), Some(13e9));
        assert_eq!(m.weight_params(), Some(47e9));
    }
}
