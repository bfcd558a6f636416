//! The machine-readable result lines every benchmark prints next to its human output,
//! `RESULT <benchmark> <series> <metric> <value> <unit>`, which `benches/run.sh` collects (the
//! format is `benches/result.sh`'s).

#![allow(dead_code, unreachable_pub)]

/// Prints one result line; `series` is `SERVER[/CONDITION...]`, no spaces.
pub fn result(benchmark: &str, series: &str, metric: &str, value: f64, unit: &str) {
    println!("RESULT {benchmark} {series} {metric} {value} {unit}");
}

/// `what` as one series segment: lower case, runs of anything but letters, digits and `-` as one `-`.
pub fn slug(what: &str) -> String {
    let mut out = String::new();
    for c in what.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
