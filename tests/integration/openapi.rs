//! The admin API's OpenAPI document and its rendered reference in `docs/api/` match the code:
//! both are generated from the routes, and this test fails when the checked-in copies are stale
//! (`PRIVCA_UPDATE_API_DOCS=1 cargo test --test integration openapi` rewrites them). The test
//! command also runs `openapi-spec-validator` on the checked-in document.

use std::{fmt::Write, path::Path};

use utoipa::openapi::{path::Operation, RefOr};

fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# privca admin API reference\n");
    let _ = writeln!(
        md,
        "Generated from the code (`src/admin/api/`); the machine-readable document is \
         [`openapi.json`](openapi.json) (OpenAPI 3.1), also served at `/api/v1/openapi.json`.\n\n\
         Every route except `/health` and `/openapi.json` needs `Authorization: Bearer pca_…` (a token \
         from `privca admin token new`) or a dashboard session. Errors are RFC 9457 problem documents \
         (`application/problem+json`) with a stable `type` (`urn:privca:problem:<name>`).\n"
    );
    let _ = writeln!(md, "| method | path | summary |\n|---|---|---|");
    let mut ops: Vec<(String, &str, &Operation)> = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if let Some(op) = op {
                ops.push((path.clone(), method, op));
            }
        }
    }
    for (path, method, op) in &ops {
        let summary = op.summary.clone().unwrap_or_default().replace('\n', " ");
        let anchor = format!("{method}-{path}").to_lowercase().replace(['/', '{', '}', '_'], "-");
        let _ = writeln!(md, "| {method} | [`/api/v1{path}`](#{anchor}) | {summary} |");
    }
    for (path, method, op) in &ops {
        let _ = writeln!(
            md,
            "\n<a id=\"{}\"></a>",
            format!("{method}-{path}").to_lowercase().replace(['/', '{', '}', '_'], "-")
        );
        let _ = writeln!(md, "## {method} /api/v1{path}\n");
        if let Some(d) = op.description.as_ref().or(op.summary.as_ref()) {
            let _ = writeln!(md, "{d}\n");
        }
        if let Some(params) = &op.parameters {
            let _ = writeln!(md, "| parameter | in | required | description |\n|---|---|---|---|");
            for p in params {
                let json = serde_json::to_value(p).unwrap();
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {} |",
                    p.name,
                    json["in"].as_str().unwrap_or(""),
                    if json["required"].as_bool().unwrap_or(false) { "yes" } else { "no" },
                    p.description.clone().unwrap_or_default().replace('\n', " ")
                );
            }
            md.push('\n');
        }
        if let Some(body) = &op.request_body {
            let json = serde_json::to_value(body).unwrap();
            let schema = json["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("");
            let _ = writeln!(md, "Request body: `{schema}` (JSON; unknown fields refused)\n");
        }
        let _ = writeln!(md, "| status | meaning |\n|---|---|");
        for (status, resp) in &op.responses.responses {
            let description = match resp {
                RefOr::T(r) => r.description.clone(),
                RefOr::Ref(r) => r.ref_location.clone(),
            };
            let _ = writeln!(md, "| {status} | {} |", description.replace('\n', " "));
        }
    }
    if let Some(components) = &doc.components {
        let _ = writeln!(md, "\n## Schemas\n");
        for (name, schema) in &components.schemas {
            let json = serde_json::to_value(schema).unwrap();
            let _ = writeln!(md, "### {name}\n");
            if let Some(props) = json["properties"].as_object() {
                let required: Vec<&str> = json["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                let _ = writeln!(md, "| field | required | description |\n|---|---|---|");
                for (field, p) in props {
                    let _ = writeln!(
                        md,
                        "| `{field}` | {} | {} |",
                        if required.contains(&field.as_str()) { "yes" } else { "no" },
                        p["description"].as_str().unwrap_or("").replace('\n', " ")
                    );
                }
                md.push('\n');
            }
        }
    }
    md
}

#[test]
fn the_checked_in_api_document_and_reference_match_the_routes() {
    let (_, doc) = privca::admin::api::parts();
    let json = doc.to_pretty_json().unwrap() + "\n";
    assert!(json.contains("\"openapi\": \"3.1"), "OpenAPI 3.1");
    let md = render(&doc);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api");
    if std::env::var("PRIVCA_UPDATE_API_DOCS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("openapi.json"), &json).unwrap();
        std::fs::write(dir.join("README.md"), &md).unwrap();
    }
    let stale = "stale: run `PRIVCA_UPDATE_API_DOCS=1 cargo test --test integration openapi`";
    assert_eq!(
        std::fs::read_to_string(dir.join("openapi.json")).unwrap_or_default(),
        json,
        "docs/api/openapi.json is {stale}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("README.md")).unwrap_or_default(), md, "docs/api/README.md is {stale}");
}
