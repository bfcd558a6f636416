//! The dependency rules as compiler-checked facts: protocol crates never depend on the
//! database, the HSM, the core or each other (the dependency rule in the README's
//! architecture section), only on `privca-cms`, the CMS structures EST and SCEP share; and one
//! crypto stack: nothing the workspace builds on links OpenSSL or aws-lc.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

/// The shared CMS crate: under `protocols/`, a dependency of protocol crates, itself bound by
/// the same rule.
const SHARED: &str = "privca-cms";

/// Crates of the other crypto stacks (and the TLS wrappers over them).
const OTHER_STACKS: &[&str] =
    &["openssl", "openssl-sys", "native-tls", "aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys", "boring", "boring-sys"];

/// `cargo metadata`: the workspace's own packages, or (`no_deps` false) the resolved graph
/// for the host platform (the crates of other platforms need not be downloaded).
fn metadata(no_deps: bool) -> serde_json::Value {
    let mut args = vec!["metadata", "--format-version", "1", "--offline"];
    let host;
    if no_deps {
        args.push("--no-deps");
    } else {
        let rustc =
            Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().unwrap();
        host = String::from_utf8(rustc.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .unwrap();
        args.extend(["--filter-platform", &host]);
    }
    let out = Command::new(env!("CARGO")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn protocol_crates_do_not_reach_the_core_the_database_or_the_hsm() {
    let meta = metadata(true);
    let packages = meta["packages"].as_array().unwrap();
    let protocols: Vec<&serde_json::Value> =
        packages.iter().filter(|p| p["manifest_path"].as_str().unwrap().contains("/protocols/")).collect();
    assert!(!protocols.is_empty(), "no protocol crate found");
    assert!(protocols.iter().any(|p| p["name"] == SHARED), "{SHARED} is under protocols/");
    for p in protocols {
        let name = p["name"].as_str().unwrap();
        for dep in p["dependencies"].as_array().unwrap() {
            let dep = dep["name"].as_str().unwrap();
            let forbidden = matches!(dep, "sqlx" | "cryptoki" | "privca" | "tokio-postgres")
                || (dep.starts_with("privca-") && (dep != SHARED || name == SHARED));
            assert!(!forbidden, "{name} depends on {dep}");
        }
    }
}

/// `cargo tree -i openssl -e normal` stays empty: the packages the workspace's members reach
/// through normal dependencies (what ships) hold none of [`OTHER_STACKS`]; nor do the dev and
/// build dependencies, so building and testing needs no libssl-dev.
#[test]
fn one_crypto_stack_and_no_openssl() {
    let meta = metadata(false);
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let members: Vec<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();

    // Breadth-first over the edges whose kinds satisfy `follow`, keeping one path to each package.
    let reach = |follow: &dyn Fn(&serde_json::Value) -> bool| {
        let mut via: BTreeMap<&str, Option<&str>> = members.iter().map(|m| (*m, None)).collect();
        let mut queue: Vec<&str> = members.clone();
        while let Some(id) = queue.pop() {
            for dep in nodes[id]["deps"].as_array().unwrap() {
                let kinds = dep["dep_kinds"].as_array().unwrap();
                let target = dep["pkg"].as_str().unwrap();
                if kinds.iter().any(|k| follow(&k["kind"])) && !via.contains_key(target) {
                    via.insert(target, Some(id));
                    queue.push(target);
                }
            }
        }
        via
    };
    fn path<'a>(
        names: &BTreeMap<&'a str, &'a str>,
        via: &BTreeMap<&'a str, Option<&'a str>>,
        mut id: &'a str,
    ) -> String {
        let mut chain = vec![names[id]];
        while let Some(Some(parent)) = via.get(id) {
            chain.push(names[parent]);
            id = parent;
        }
        chain.join(" <- ")
    }

    let normal = reach(&|kind| kind.is_null());
    assert!(normal.keys().any(|id| names[id] == "ring"), "the walk reaches ring: it follows normal edges");
    for id in normal.keys() {
        assert!(!OTHER_STACKS.contains(&names[id]), "a normal dependency: {}", path(&names, &normal, id));
    }
    let all = reach(&|_| true);
    let stacks: BTreeSet<String> =
        all.keys().filter(|id| OTHER_STACKS.contains(&names[*id])).map(|id| path(&names, &all, id)).collect();
    assert!(stacks.is_empty(), "dev or build dependencies on another crypto stack: {stacks:?}");
}
