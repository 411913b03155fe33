//! Prints the normalized form of a payload file: `cargo run --example dump -- <source> <file>`.
//! A file in the shared-fixture layout (`{"format", "payload"}`) may name its own source with
//! `-` as the source argument.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(path)) = (args.next(), args.next()) else {
        return Err("usage: dump <source|-> <file.json>".into());
    };
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let source = if source == "-" {
        match doc["format"].as_str().unwrap_or("generic") {
            "falco" | "thehive" | "stix" | "osquery" => "generic",
            other => other,
        }
        .to_string()
    } else {
        source
    };
    let payload = doc.get("payload").unwrap_or(&doc);
    let alert = bulwark_normalize::normalize(source.parse()?, payload)?;
    println!("{}", serde_json::to_string_pretty(&alert)?);
    Ok(())
}
