//! The playbooks directory against a real database: files appear -> playbooks, an edit -> a
//! new version, an invalid edit -> the previous version stays and the error is reported, a
//! removed file -> the playbook is disabled; an unchanged directory writes nothing, on any node.

use bulwark_core::Scope;
use bulwark_engine::playbook_dir::Loader;
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant, Store};

const TRIAGE: &str = "name: dir-triage
triggers:
  - on: alert.created
actions:
  - ref: tag
    action: alert.update
    args:
      tags: [from-dir]
";

const NIGHTLY: &str = r#"{"name": "dir-nightly", "triggers": [{"on": "schedule", "cron": "0 2 * * *"}],
 "actions": [{"ref": "a", "action": "set", "args": {"values": {"x": 1}}}]}"#;

async fn setup() -> (bulwark_store::testing::TestDb, Store) {
    let db = fresh().await;
    let store = db.store.clone();
    store
        .create_tenant(
            &ChangeCtx::system("test"),
            NewTenant {
                slug: "default".into(),
                name: "Default".into(),
            },
        )
        .await
        .expect("tenant");
    (db, store)
}

async fn versions(store: &Store, name: &str) -> (bool, i32, Vec<String>) {
    let p = store
        .playbook_by_name(name)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("playbook {name} exists"));
    let v = store
        .playbook_versions(&Scope::AllTenants, p.id)
        .await
        .expect("versions");
    (
        p.enabled,
        p.version,
        v.into_iter().filter_map(|v| v.created_by).collect(),
    )
}

#[tokio::test]
async fn the_directory_is_loaded_reloaded_and_removals_disable() {
    let (_db, store) = setup().await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("triage.yaml"), TRIAGE).expect("write");
    std::fs::write(dir.path().join("nightly.json"), NIGHTLY).expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a playbook").expect("write");
    std::fs::write(dir.path().join(".triage.yaml"), "an editor's backup").expect("write");

    // Files appear: two global playbooks, written by their files.
    let mut loader = Loader::new(dir.path().to_path_buf(), None);
    let r = loader.sync(&store).await.expect("sync");
    assert_eq!(r.created, vec!["dir-nightly", "dir-triage"], "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    let p = store
        .playbook_by_name("dir-triage")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(p.tenant_id, None);
    assert_eq!(p.origin, "file");
    assert_eq!(p.file_path.as_deref(), Some("triage.yaml"));
    assert_eq!(
        versions(&store, "dir-triage").await,
        (true, 1, vec!["file:triage.yaml".into()])
    );

    // Another node (a fresh loader) with the same files changes nothing.
    let r = Loader::new(dir.path().to_path_buf(), None)
        .sync(&store)
        .await
        .expect("sync");
    assert_eq!(r, Default::default());

    // An edit: a new version.
    std::fs::write(
        dir.path().join("triage.yaml"),
        TRIAGE.replace("from-dir", "from-dir-v2"),
    )
    .expect("write");
    let r = loader.sync(&store).await.expect("sync");
    assert_eq!(r.updated, vec!["dir-triage"]);
    let (_, version, _) = versions(&store, "dir-triage").await;
    assert_eq!(version, 2);

    // An invalid edit (unknown action): reported with file and line, version 2 stays.
    std::fs::write(
        dir.path().join("triage.yaml"),
        TRIAGE.replace("alert.update", "alert.updte"),
    )
    .expect("write");
    let r = loader.sync(&store).await.expect("sync");
    assert!(r.updated.is_empty(), "{r:?}");
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("triage.yaml:6:") && e.contains("alert.update")),
        "{r:?}"
    );
    assert_eq!(versions(&store, "dir-triage").await.1, 2);
    let spec = store
        .playbook_by_name("dir-triage")
        .await
        .expect("read")
        .expect("exists")
        .spec;
    assert_eq!(spec["actions"][0]["args"]["tags"][0], "from-dir-v2");

    // Removed: disabled, kept.
    std::fs::remove_file(dir.path().join("nightly.json")).expect("remove");
    let r = loader.sync(&store).await.expect("sync");
    assert_eq!(r.disabled, vec!["dir-nightly"]);
    assert_eq!(
        versions(&store, "dir-nightly").await,
        (false, 1, vec!["file:nightly.json".into()])
    );

    // Back unchanged: enabled again, no new version.
    std::fs::write(dir.path().join("nightly.json"), NIGHTLY).expect("write");
    let r = loader.sync(&store).await.expect("sync");
    assert_eq!(r.enabled, vec!["dir-nightly"]);
    assert_eq!(versions(&store, "dir-nightly").await.1, 1);
}

#[tokio::test]
async fn a_name_used_through_the_api_is_not_overwritten() {
    let (_db, store) = setup().await;
    let t = store
        .tenant_by_slug("default")
        .await
        .expect("read")
        .expect("tenant")
        .id;
    let pb =
        bulwark_playbook::parse_yaml(TRIAGE, &bulwark_playbook::Catalog::builtin()).expect("valid");
    store
        .create_playbook(
            &ChangeCtx::system("test"),
            &Scope::AllTenants,
            t,
            bulwark_store::automation::PlaybookWrite {
                tenant_id: Some(t),
                name: "dir-triage".into(),
                description: None,
                enabled: true,
                priority: 100,
                spec: pb.to_json(),
                source: TRIAGE.into(),
                source_format: "yaml",
                origin: "api",
                file_path: None,
            },
        )
        .await
        .expect("api playbook");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("triage.yaml"),
        TRIAGE.replace("from-dir", "changed"),
    )
    .expect("write");
    let r = Loader::new(dir.path().to_path_buf(), None)
        .sync(&store)
        .await
        .expect("sync");
    assert!(r.updated.is_empty() && r.created.is_empty(), "{r:?}");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    let p = store
        .playbook_by_name("dir-triage")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((p.origin.as_str(), p.version), ("api", 1));
}
