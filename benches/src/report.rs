//! The results: a table on the terminal and a JSON document.

use std::path::Path;

use serde_json::json;

use crate::calibrate::Floors;
use crate::{Plan, Size};

/// One benchmark result next to its floor.
pub(crate) struct Row {
    /// The benchmark's number in the performance suite (S1-S18).
    pub(crate) id: &'static str,
    pub(crate) name: String,
    pub(crate) measured: f64,
    pub(crate) unit: &'static str,
    pub(crate) floor: f64,
    pub(crate) floor_what: &'static str,
    /// For throughput: measured / floor (1.0 is the hardware's limit). For latency, time and
    /// memory: measured / floor (how many floors it costs).
    pub(crate) ratio: f64,
    /// What would be clearly better than SPIRE; may name a budget computed for this run.
    pub(crate) target: String,
    pub(crate) spire: &'static str,
}

/// Everything one run produced.
pub(crate) struct Report {
    size: &'static str,
    floors: Floors,
    rows: Vec<Row>,
    date: String,
    commit: String,
}

impl Report {
    pub(crate) fn new(plan: &Plan, floors: &Floors, rows: Vec<Row>) -> Self {
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            size: match plan.size {
                Size::Quick => "quick",
                Size::Full => "full",
            },
            floors: *floors,
            rows,
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            commit,
        }
    }

    /// The table, in the shape BENCHMARKS.md uses.
    pub(crate) fn print(&self) {
        let f = &self.floors;
        println!();
        println!(
            "Lanyard benchmarks, size {}, {} (commit {}), {} cores",
            self.size, self.date, self.commit, f.cores
        );
        println!(
            "Floors: ECDSA P-256 sign {:.0}/s, verify {:.0}/s (one core); socketpair round trip {:.1} us",
            f.sign_per_sec, f.verify_per_sec, f.socketpair_rtt_us
        );
        println!();
        println!("| # | benchmark | floor | measured | ratio | target | SPIRE anchor |");
        println!("|---|---|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} {} ({}) | {} {} | {:.2} | {} | {} |",
                r.id,
                r.name,
                fmt(r.floor),
                r.unit,
                r.floor_what,
                fmt(r.measured),
                r.unit,
                r.ratio,
                r.target,
                r.spire
            );
        }
    }

    /// Writes the results, with `versus` (the side-by-side rows) as its own section.
    pub(crate) fn write_json(&self, path: &Path, versus: serde_json::Value) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = &self.floors;
        let doc = json!({
            "size": self.size,
            "date": self.date,
            "commit": self.commit,
            "floors": {
                "cores": f.cores,
                "ecdsa_p256_sign_per_sec": f.sign_per_sec,
                "ecdsa_p256_verify_per_sec": f.verify_per_sec,
                "socketpair_rtt_us": f.socketpair_rtt_us,
            },
            "results": self.rows.iter().map(|r| json!({
                "id": r.id,
                "name": r.name,
                "measured": r.measured,
                "unit": r.unit,
                "floor": r.floor,
                "floor_what": r.floor_what,
                "ratio": r.ratio,
                "target": r.target,
                "spire": r.spire,
            })).collect::<Vec<_>>(),
            "versus": versus,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        Ok(())
    }
}

/// A figure with three significant-looking digits: 1234, 12.3, 0.123.
pub(crate) fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The `p`th percentile (0-100) of `samples`, sorting them in place.
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_ranked_samples() {
        let mut s = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut s, 0.0), 1.0);
        assert_eq!(percentile(&mut s, 50.0), 3.0);
        assert_eq!(percentile(&mut s, 100.0), 5.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }
}
