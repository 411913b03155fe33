//! The OpenAPI document is generated from the code; this keeps the committed copy
//! (`docs/openapi.json`) in step with it and proves every route in the table is documented.
//! Regenerate with `BULWARK_UPDATE_SNAPSHOTS=1 cargo test -p bulwark-api --test openapi`.

use bulwark_api::routes::route_table;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn document_matches_the_committed_snapshot() {
    let doc = bulwark_api::openapi::document();
    let json = serde_json::to_string_pretty(&doc).expect("serialize") + "\n";
    if std::env::var("BULWARK_UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(SNAPSHOT, &json).expect("write snapshot");
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == json,
        "docs/openapi.json is out of date: run BULWARK_UPDATE_SNAPSHOTS=1 cargo test -p bulwark-api --test openapi"
    );
    assert!(json.contains("\"openapi\": \"3.1"), "OpenAPI 3.1");
}

#[test]
fn every_route_is_documented() {
    let doc = serde_json::to_value(bulwark_api::openapi::document()).expect("serialize");
    for (method, path, _) in route_table() {
        let op = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
    }
}

#[test]
fn every_documented_operation_is_routed() {
    let doc = serde_json::to_value(bulwark_api::openapi::document()).expect("serialize");
    let table = route_table();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            assert!(
                table
                    .iter()
                    .any(|(m, p, _)| *p == path && m.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not in the route table"
            );
        }
    }
}
