//! Rotating the key of integration secrets: a new current key with the old one retired, then
//! `secrets rotate` re-encrypts every row, after which the old key is no longer needed.

use bulwark_core::Scope;
use bulwark_integrations::SecretKey;
use bulwark_integrations::secret::Keyring;
use bulwark_store::integrations::IntegrationWrite;
use bulwark_store::testing::fresh;
use bulwark_store::{ChangeCtx, NewTenant};
use serde_json::json;

#[tokio::test]
async fn rotation_re_encrypts_every_secret_under_the_new_key() {
    let db = fresh().await;
    let store = db.store.clone();
    let tenant = store
        .create_tenant(
            &ChangeCtx::system("t"),
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id;
    let old = SecretKey::generate();
    let before = Keyring::new(old.clone(), vec![]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = uuid::Uuid::now_v7();
        let sealed = before.seal(
            format!("{{\"api_key\":\"k{i}\"}}").as_bytes(),
            id.as_bytes(),
        );
        store
            .create_integration(
                &ChangeCtx::system("t"),
                &Scope::AllTenants,
                IntegrationWrite {
                    id,
                    tenant_id: tenant,
                    type_name: "virustotal".into(),
                    name: format!("vt{i}"),
                    description: None,
                    config: json!({}),
                    secrets: Some(sealed),
                    secret_fields: vec!["api_key".into()],
                    enabled: true,
                    is_default: false,
                    enrichment: false,
                },
            )
            .await
            .expect("create");
        ids.push(id);
    }
    let new = SecretKey::generate();
    let rotating = Keyring::new(new.clone(), vec![old]);
    let (done, current, failed) = bulwark::cli::rotate_all(&store, &rotating)
        .await
        .expect("rotate");
    assert_eq!((done, current, failed.len()), (3, 0, 0));
    let (done, current, _) = bulwark::cli::rotate_all(&store, &rotating)
        .await
        .expect("again");
    assert_eq!((done, current), (0, 3), "a second run has nothing to do");
    // The old key can go: everything opens with the new key alone.
    let after = Keyring::new(new, vec![]);
    for (id, sealed) in store.integration_secrets().await.expect("secrets") {
        let plain = after
            .open(&sealed, id.as_bytes())
            .expect("opens with the new key");
        assert!(String::from_utf8_lossy(&plain).starts_with("{\"api_key\":\"k"));
    }
    // A key nobody listed is reported, not silently skipped.
    let stranger = Keyring::new(SecretKey::generate(), vec![]);
    let (_, _, failed) = bulwark::cli::rotate_all(&store, &stranger)
        .await
        .expect("runs");
    assert_eq!(failed.len(), 3);
}
