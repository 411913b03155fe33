//! The playbooks directory: `*.yaml`, `*.yml` and `*.json` files loaded as global playbooks
//! (no tenant) and reloaded when they change.
//!
//! - A valid file creates the playbook named by its `name`, or adds a version when its text
//!   differs from the stored current version (so an unchanged file never makes a version,
//!   on any node).
//! - An invalid file is never loaded: its errors are logged with file and line, and the
//!   version loaded before stays.
//! - A removed file (or one whose `name` changed) disables its playbook; the playbook, its
//!   versions and its runs stay.
//! - A name already used by a playbook not from the directory (made through the API, or a
//!   tenant's) is refused: the directory never overwrites it.
//!
//! Only the holder of the `playbook-loader` lease syncs; every decision compares the files
//! with the database, so a node that takes the lease over repeats nothing.
//!
//! [`parse_source`] and [`decide`] are pure; [`scan_dir`] reads the files, [`Loader`] writes.

use bulwark_core::{Scope, TenantId};
use bulwark_playbook::{Catalog, Playbook, PlaybookErrors};
use bulwark_store::automation::{PlaybookRecord, PlaybookWrite};
use bulwark_store::{ChangeCtx, Store, StoreError, StoreResult};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How often the directory is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// The lease that keeps syncing on one node.
pub const LEASE: &str = "playbook-loader";

/// `yaml` or `json` by the file's extension; `None` for files that are not playbooks.
pub fn format_of(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "yaml" | "yml" => Some("yaml"),
        "json" => Some("json"),
        _ => None,
    }
}

/// Parses and validates a playbook document of `format` against `catalog`. JSON syntax
/// errors carry their line.
pub fn parse_source(
    format: &str,
    text: &str,
    catalog: &Catalog,
) -> Result<Playbook, PlaybookErrors> {
    if format == "json" {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            PlaybookErrors(vec![
                bulwark_playbook::PlaybookError::new("", format!("not valid JSON: {e}"))
                    .at_line(Some(e.line())),
            ])
        })?;
        bulwark_playbook::parse_json(&value, catalog)
    } else {
        bulwark_playbook::parse_yaml(text, catalog)
    }
}

/// One file of the directory, read and parsed.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The file name inside the directory (what `file_path` records).
    pub name: String,
    pub format: &'static str,
    pub text: String,
    pub parsed: Result<Playbook, PlaybookErrors>,
}

/// Largest file read (the playbook limit is 1 MiB; a larger file is reported, not read).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Reads and parses every playbook file of `dir` (not its subdirectories or hidden files),
/// sorted by name.
/// A file that cannot be read is reported as invalid; only an unreadable directory fails.
pub fn scan_dir(dir: &Path, catalog: &Catalog) -> std::io::Result<Vec<Scanned>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(format) = format_of(&path) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        // Hidden files: editors' lock and backup files.
        if name.starts_with('.') {
            continue;
        }
        let (text, parsed) = match read_limited(&path) {
            Ok(text) => {
                let parsed = parse_source(format, &text, catalog);
                (text, parsed)
            }
            Err(e) => (String::new(), Err(PlaybookErrors::single("", e))),
        };
        out.push(Scanned {
            name,
            format,
            text,
            parsed,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_limited(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!("file is {len} bytes, too large for a playbook"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

/// A change to bring the database in step with the directory.
#[derive(Debug, Clone)]
pub enum Change {
    Create(PlaybookWrite),
    /// A new version of playbook `id`.
    Update {
        id: Uuid,
        write: PlaybookWrite,
    },
    /// Enable or disable without a new version (the file is back unchanged, or gone).
    SetEnabled {
        id: Uuid,
        name: String,
        file: String,
        enabled: bool,
    },
    /// A file that is not loaded, with every problem as `file:line: message` lines.
    Error {
        file: String,
        message: String,
    },
}

fn write_of(file: &Scanned, pb: &Playbook) -> PlaybookWrite {
    PlaybookWrite {
        tenant_id: None,
        name: pb.name().to_owned(),
        description: pb.spec().description.clone(),
        enabled: pb.enabled(),
        priority: pb.priority(),
        spec: pb.to_json(),
        source: file.text.clone(),
        source_format: file.format,
        origin: "file",
        file_path: Some(file.name.clone()),
    }
}

/// Decides the changes. `existing`: every stored playbook; `sources`: the current version's
/// text of the directory's stored playbooks (by id).
pub fn decide(
    files: &[Scanned],
    existing: &[PlaybookRecord],
    sources: &HashMap<Uuid, String>,
) -> Vec<Change> {
    let by_name: HashMap<&str, &PlaybookRecord> =
        existing.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut out = Vec::new();
    // file name -> playbook name it now defines (valid files only).
    let mut defines: HashMap<&str, &str> = HashMap::new();
    let mut claimed: HashMap<&str, &str> = HashMap::new();
    for f in files {
        let pb = match &f.parsed {
            Ok(pb) => pb,
            Err(errs) => {
                out.push(Change::Error {
                    file: f.name.clone(),
                    message: errs.render_for_file(&f.name),
                });
                continue;
            }
        };
        let name = pb.name();
        if let Some(first) = claimed.get(name) {
            out.push(Change::Error {
                file: f.name.clone(),
                message: format!("{}: name: `{name}` is already defined by {first}\n", f.name),
            });
            continue;
        }
        claimed.insert(name, &f.name);
        match by_name.get(name) {
            None => {
                defines.insert(&f.name, name);
                out.push(Change::Create(write_of(f, pb)));
            }
            Some(rec) if rec.origin != "file" || rec.tenant_id.is_some() => {
                out.push(Change::Error {
                    file: f.name.clone(),
                    message: format!(
                        "{}: name: `{name}` is taken by a playbook not loaded from the directory; rename one of them\n",
                        f.name
                    ),
                });
            }
            Some(rec) => {
                defines.insert(&f.name, name);
                let same_text = sources.get(&rec.id).is_some_and(|s| *s == f.text);
                if !same_text || rec.file_path.as_deref() != Some(f.name.as_str()) {
                    out.push(Change::Update {
                        id: rec.id,
                        write: write_of(f, pb),
                    });
                } else if rec.enabled != pb.enabled() {
                    out.push(Change::SetEnabled {
                        id: rec.id,
                        name: rec.name.clone(),
                        file: f.name.clone(),
                        enabled: pb.enabled(),
                    });
                }
            }
        }
    }
    let present: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for rec in existing
        .iter()
        .filter(|p| p.origin == "file" && p.tenant_id.is_none() && p.enabled)
    {
        let Some(path) = rec.file_path.as_deref() else {
            continue;
        };
        let gone = !present.contains(path);
        // The file now defines another playbook, and no file defines this one any more.
        let renamed = defines.get(path).is_some_and(|n| *n != rec.name)
            && !claimed.contains_key(rec.name.as_str());
        if gone && claimed.contains_key(rec.name.as_str()) {
            continue; // moved to another file: updated above
        }
        if gone || renamed {
            out.push(Change::SetEnabled {
                id: rec.id,
                name: rec.name.clone(),
                file: path.to_owned(),
                enabled: false,
            });
        }
    }
    out
}

/// What one sync did (names of playbooks; errors as `file:line: message` lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
    pub errors: Vec<String>,
}

/// Syncs a directory into the store.
pub struct Loader {
    dir: PathBuf,
    catalog: Catalog,
    platform_tenant: Option<TenantId>,
    /// Fingerprint of the last scan that was synced without a failure: an unchanged
    /// directory is not compared with the database again (or its errors logged again).
    last: Option<u64>,
}

impl Loader {
    /// `platform_tenant`: whose audit chain records the changes (default: the `default`
    /// tenant).
    pub fn new(dir: PathBuf, platform_tenant: Option<TenantId>) -> Self {
        Self::with_catalog(dir, platform_tenant, Catalog::builtin())
    }

    /// A loader that validates against `catalog` (the built-in actions and the integrations').
    pub fn with_catalog(dir: PathBuf, platform_tenant: Option<TenantId>, catalog: Catalog) -> Self {
        Self {
            dir,
            catalog,
            platform_tenant,
            last: None,
        }
    }

    /// Scans and applies the changes, unless the directory is unchanged since the last sync.
    /// Errors of invalid files are logged and reported; a store failure is returned (the next
    /// sync tries again).
    pub async fn sync(&mut self, store: &Store) -> StoreResult<SyncReport> {
        let dir = self.dir.clone();
        let catalog = self.catalog.clone();
        let scanned = tokio::task::spawn_blocking(move || scan_dir(&dir, &catalog))
            .await
            .map_err(|e| StoreError::Corrupt(format!("directory scan failed: {e}")))?;
        let files = match scanned {
            Ok(f) => f,
            Err(e) => {
                return Err(StoreError::Invalid {
                    field: "playbooks_dir",
                    message: format!("cannot read {}: {e}", self.dir.display()),
                });
            }
        };
        let print = fingerprint(&files);
        if self.last == Some(print) {
            return Ok(SyncReport::default());
        }
        let report = self.apply(store, &files).await?;
        self.last = Some(print);
        Ok(report)
    }

    /// Forget the last scan (after the lease was lost: another node may have changed things).
    pub fn reset(&mut self) {
        self.last = None;
    }

    async fn audit_tenant(&self, store: &Store) -> StoreResult<Option<TenantId>> {
        if let Some(t) = self.platform_tenant {
            return Ok(Some(t));
        }
        if let Some(t) = store
            .tenant_by_slug(bulwark_core::model::DEFAULT_TENANT_SLUG)
            .await?
        {
            return Ok(Some(t.id));
        }
        Ok(store
            .list_tenants(&Scope::AllTenants)
            .await?
            .first()
            .map(|t| t.id))
    }

    async fn apply(&self, store: &Store, files: &[Scanned]) -> StoreResult<SyncReport> {
        let Some(audit_tenant) = self.audit_tenant(store).await? else {
            return Err(StoreError::State(
                "no tenant yet to record playbook changes".into(),
            ));
        };
        let existing = store.list_playbooks(&Scope::AllTenants).await?;
        let mut sources = HashMap::new();
        let names: HashSet<&str> = files
            .iter()
            .filter_map(|f| f.parsed.as_ref().ok().map(|p| p.name()))
            .collect();
        for rec in existing
            .iter()
            .filter(|p| p.origin == "file" && names.contains(p.name.as_str()))
        {
            let versions = store.playbook_versions(&Scope::AllTenants, rec.id).await?;
            if let Some(v) = versions.into_iter().next() {
                sources.insert(rec.id, v.source);
            }
        }
        let mut report = SyncReport::default();
        for change in decide(files, &existing, &sources) {
            match change {
                Change::Create(w) => {
                    let ctx = actor(w.file_path.as_deref());
                    let name = w.name.clone();
                    match store
                        .create_playbook(&ctx, &Scope::AllTenants, audit_tenant, w)
                        .await
                    {
                        Ok(_) => {
                            tracing::info!(playbook = %name, "playbook loaded from the directory");
                            report.created.push(name);
                        }
                        // Another node created it meanwhile: the next sync compares again.
                        Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Change::Update { id, write } => {
                    let ctx = actor(write.file_path.as_deref());
                    let name = write.name.clone();
                    store
                        .update_playbook(&ctx, &Scope::AllTenants, audit_tenant, id, None, write)
                        .await?;
                    tracing::info!(playbook = %name, "playbook reloaded from the directory");
                    report.updated.push(name);
                }
                Change::SetEnabled {
                    id,
                    name,
                    file,
                    enabled,
                } => {
                    store
                        .set_playbook_enabled(
                            &actor(Some(&file)),
                            &Scope::AllTenants,
                            audit_tenant,
                            id,
                            enabled,
                        )
                        .await?;
                    if enabled {
                        tracing::info!(playbook = %name, %file, "playbook file is back: enabled");
                        report.enabled.push(name);
                    } else {
                        tracing::info!(playbook = %name, %file, "playbook file removed: disabled");
                        report.disabled.push(name);
                    }
                }
                Change::Error { file, message } => {
                    tracing::warn!(
                        %file,
                        errors = %message.trim_end(),
                        "playbook file not loaded; the previously loaded version (if any) stays"
                    );
                    report.errors.extend(message.lines().map(str::to_owned));
                }
            }
        }
        Ok(report)
    }
}

fn actor(file: Option<&str>) -> ChangeCtx {
    ChangeCtx::system(&format!("file:{}", file.unwrap_or("?")))
}

/// In-process change detection only (the database comparison is what counts).
fn fingerprint(files: &[Scanned]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.name.hash(&mut h);
        f.text.hash(&mut h);
    }
    h.finish()
}

/// Syncs `dir` every [`POLL_INTERVAL`] while this node holds the [`LEASE`], until `stop`.
pub async fn run_loader(
    store: Store,
    dir: PathBuf,
    node_id: String,
    platform_tenant: Option<TenantId>,
    stop: watch::Receiver<bool>,
) {
    let catalog = std::sync::Arc::new(Catalog::builtin());
    run_loader_with(store, dir, node_id, platform_tenant, catalog, stop).await
}

/// [`run_loader`] validating against `catalog`.
pub async fn run_loader_with(
    store: Store,
    dir: PathBuf,
    node_id: String,
    platform_tenant: Option<TenantId>,
    catalog: std::sync::Arc<Catalog>,
    mut stop: watch::Receiver<bool>,
) {
    let mut loader = Loader::with_catalog(dir, platform_tenant, (*catalog).clone());
    loop {
        if *stop.borrow() {
            return;
        }
        match store.try_lease(LEASE, &node_id, POLL_INTERVAL * 5).await {
            Ok(true) => {
                if let Err(e) = loader.sync(&store).await {
                    tracing::warn!(error = %e, "cannot sync the playbooks directory");
                }
            }
            Ok(false) => loader.reset(),
            Err(e) => tracing::warn!(error = %e, "playbook loader lease"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "name: nightly\ntriggers:\n  - on: manual\nactions:\n  - ref: a\n    action: set\n    args:\n      values: {x: 1}\n";

    fn scanned(name: &str, text: &str) -> Scanned {
        let format = format_of(Path::new(name)).unwrap_or("yaml");
        Scanned {
            name: name.into(),
            format,
            text: text.into(),
            parsed: parse_source(format, text, &Catalog::builtin()),
        }
    }

    fn stored(name: &str, file: &str, enabled: bool) -> PlaybookRecord {
        PlaybookRecord {
            id: Uuid::now_v7(),
            tenant_id: None,
            name: name.into(),
            description: None,
            version: 1,
            enabled,
            priority: 100,
            spec: serde_json::json!({}),
            origin: "file".into(),
            file_path: Some(file.into()),
            created_by: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(format_of(Path::new("a.yml")), Some("yaml"));
        assert_eq!(format_of(Path::new("a.YAML")), Some("yaml"));
        assert_eq!(format_of(Path::new("a.json")), Some("json"));
        assert_eq!(format_of(Path::new("a.txt")), None);
        assert_eq!(format_of(Path::new("README")), None);
    }

    #[test]
    fn json_syntax_errors_have_a_line() {
        let e = parse_source("json", "{\n\"name\": \n}", &Catalog::builtin()).err();
        let e = e.map(|e| e.render_for_file("x.json")).unwrap_or_default();
        assert!(e.starts_with("x.json:3: "), "{e}");
    }

    #[test]
    fn unchanged_files_change_nothing_and_new_ones_are_created() {
        let f = scanned("n.yaml", VALID);
        let rec = stored("nightly", "n.yaml", true);
        let sources = HashMap::from([(rec.id, VALID.to_owned())]);
        assert!(
            decide(
                std::slice::from_ref(&f),
                std::slice::from_ref(&rec),
                &sources
            )
            .is_empty()
        );
        let c = decide(&[f], &[], &HashMap::new());
        assert!(matches!(&c[..], [Change::Create(w)] if w.name == "nightly" && w.origin == "file"));
    }

    #[test]
    fn edits_update_invalid_files_keep_and_removed_files_disable() {
        let rec = stored("nightly", "n.yaml", true);
        let sources = HashMap::from([(rec.id, VALID.to_owned())]);
        let edited = scanned("n.yaml", &VALID.replace("x: 1", "x: 2"));
        let c = decide(&[edited], std::slice::from_ref(&rec), &sources);
        assert!(matches!(&c[..], [Change::Update { id, .. }] if *id == rec.id));

        let broken = scanned("n.yaml", &VALID.replace("action: set", "action: sett"));
        let c = decide(&[broken], std::slice::from_ref(&rec), &sources);
        assert!(
            matches!(&c[..], [Change::Error { message, .. }] if message.starts_with("n.yaml:6: ")),
            "{c:?}"
        );

        let c = decide(&[], std::slice::from_ref(&rec), &sources);
        assert!(matches!(
            &c[..],
            [Change::SetEnabled { enabled: false, .. }]
        ));
        // A file that comes back unchanged enables it again, without a new version.
        let off = PlaybookRecord {
            enabled: false,
            ..rec.clone()
        };
        let c = decide(&[scanned("n.yaml", VALID)], &[off], &sources);
        assert!(matches!(&c[..], [Change::SetEnabled { enabled: true, .. }]));
    }

    #[test]
    fn names_of_other_playbooks_and_duplicates_are_refused() {
        let mut api = stored("nightly", "n.yaml", true);
        api.origin = "api".into();
        api.file_path = None;
        let c = decide(&[scanned("n.yaml", VALID)], &[api], &HashMap::new());
        assert!(matches!(&c[..], [Change::Error { .. }]));
        let c = decide(
            &[scanned("a.yaml", VALID), scanned("b.yaml", VALID)],
            &[],
            &HashMap::new(),
        );
        assert!(
            matches!(&c[..], [Change::Create(_), Change::Error { file, .. }] if file == "b.yaml")
        );
    }

    #[test]
    fn a_file_that_renames_its_playbook_disables_the_old_one() {
        let rec = stored("nightly", "n.yaml", true);
        let sources = HashMap::from([(rec.id, VALID.to_owned())]);
        let renamed = scanned("n.yaml", &VALID.replace("name: nightly", "name: hourly"));
        let c = decide(&[renamed], std::slice::from_ref(&rec), &sources);
        assert!(
            matches!(&c[..], [Change::Create(w), Change::SetEnabled { id, enabled: false, .. }]
            if w.name == "hourly" && *id == rec.id)
        );
    }
}
