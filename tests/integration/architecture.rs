//! The dependency rule as a compiler-checked fact: protocol crates never depend on the
//! database, the HSM, the core or each other (the dependency rule in the README's
//! architecture section).

use std::process::Command;

#[test]
fn protocol_crates_do_not_reach_the_core_the_database_or_the_hsm() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let protocols: Vec<&serde_json::Value> =
        packages.iter().filter(|p| p["manifest_path"].as_str().unwrap().contains("/protocols/")).collect();
    assert!(!protocols.is_empty(), "no protocol crate found");
    for p in protocols {
        let name = p["name"].as_str().unwrap();
        for dep in p["dependencies"].as_array().unwrap() {
            let dep = dep["name"].as_str().unwrap();
            let forbidden =
                matches!(dep, "sqlx" | "cryptoki" | "privca" | "tokio-postgres") || dep.starts_with("privca-");
            assert!(!forbidden, "{name} depends on {dep}");
        }
    }
}
