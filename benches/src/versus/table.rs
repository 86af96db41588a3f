//! The side-by-side results: one line per measure with both systems' figures and their
//! ratio, as a Markdown table on the terminal and a section of the JSON document.

use serde_json::{Value, json};

use crate::report::fmt;

/// Which direction is better for a measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    Lower,
    Higher,
}

/// One measure taken on both systems in the same run.
pub(crate) struct VsRow {
    pub(crate) measure: String,
    pub(crate) unit: &'static str,
    pub(crate) lanyard: f64,
    pub(crate) spire: f64,
    pub(crate) better: Better,
    /// A figure of this machine measured in the same run that bounds the measure, with what
    /// it is (`None` where there is no meaningful lower bound, as for an idle process).
    pub(crate) floor: Option<(f64, &'static str)>,
}

impl VsRow {
    /// Lanyard / SPIRE.
    pub(crate) fn ratio(&self) -> f64 {
        self.lanyard / self.spire
    }

    /// How many times better Lanyard is (above 1) or worse (below 1), whichever way is
    /// better for this measure.
    pub(crate) fn advantage(&self) -> f64 {
        match self.better {
            Better::Lower => self.spire / self.lanyard,
            Better::Higher => self.lanyard / self.spire,
        }
    }
}

/// Prints the table under a heading naming the SPIRE version.
pub(crate) fn print(rows: &[VsRow], spire_version: &str) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("Lanyard beside SPIRE {spire_version}, same machine, same run");
    println!();
    println!("| measure | Lanyard | SPIRE | Lanyard/SPIRE | better | floor (same run) |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let floor = match r.floor {
            Some((v, what)) => format!("{} ({what})", fmt(v)),
            None => "-".into(),
        };
        let better = match r.better {
            Better::Lower => "lower",
            Better::Higher => "higher",
        };
        println!(
            "| {} | {} {} | {} {} | {:.2} ({}x {}) | {} | {} |",
            r.measure,
            fmt(r.lanyard),
            r.unit,
            fmt(r.spire),
            r.unit,
            r.ratio(),
            fmt(r.advantage()),
            if r.advantage() >= 1.0 {
                "better"
            } else {
                "worse"
            },
            better,
            floor
        );
    }
}

/// The rows as JSON.
pub(crate) fn json(rows: &[VsRow], spire_version: &str) -> Value {
    json!({
        "spire_version": spire_version,
        "rows": rows.iter().map(|r| json!({
            "measure": r.measure,
            "unit": r.unit,
            "lanyard": r.lanyard,
            "spire": r.spire,
            "ratio_lanyard_over_spire": r.ratio(),
            "better": match r.better { Better::Lower => "lower", Better::Higher => "higher" },
            "floor": r.floor.map(|(v, _)| v),
            "floor_what": r.floor.map(|(_, w)| w),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(lanyard: f64, spire: f64, better: Better) -> VsRow {
        VsRow {
            measure: "m".into(),
            unit: "ms",
            lanyard,
            spire,
            better,
            floor: None,
        }
    }

    #[test]
    fn the_advantage_follows_the_better_direction() {
        assert_eq!(row(1.0, 4.0, Better::Lower).ratio(), 0.25);
        assert_eq!(row(1.0, 4.0, Better::Lower).advantage(), 4.0);
        assert_eq!(row(1.0, 4.0, Better::Higher).advantage(), 0.25);
        assert_eq!(row(300.0, 100.0, Better::Higher).advantage(), 3.0);
    }
}
