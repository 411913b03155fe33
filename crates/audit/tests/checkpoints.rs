//! Checkpoint signing, verification and the key file.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

use bulwark_audit::*;
use common::*;
use std::fs;

fn sample_checkpoint(signer: &CheckpointSigner) -> SignedCheckpoint {
    let t = tenant(100);
    let rows = build_chain(t, 3);
    signer.sign(
        t,
        &head_of(t, &rows),
        AuditTime::parse_canonical("2025-06-01T12:00:00.000001Z").unwrap(),
    )
}

#[test]
fn sign_and_verify() {
    let signer = CheckpointSigner::generate().unwrap();
    let cp = sample_checkpoint(&signer);
    assert_eq!(cp.checkpoint.seq, 3);
    assert_eq!(cp.checkpoint.key_id, signer.key_id());
    assert_eq!(cp.checkpoint.key_id, KeyId::of(&signer.verifying_key()));
    verify_checkpoint(&cp, &signer.verifying_key()).unwrap();
}

#[test]
fn signing_bytes_layout() {
    let signer = CheckpointSigner::generate().unwrap();
    let cp = sample_checkpoint(&signer);
    let b = cp.checkpoint.signing_bytes();
    assert_eq!(b.len(), CHECKPOINT_SIGNING_LEN);
    assert_eq!(&b[..27], b"bulwark-audit-checkpoint-v1");
    assert_eq!(&b[27..43], cp.checkpoint.tenant_id.as_bytes());
    assert_eq!(&b[43..51], &3u64.to_be_bytes());
    assert_eq!(&b[51..83], &cp.checkpoint.head_hash.0);
    assert_eq!(
        &b[83..91],
        &cp.checkpoint.signed_at.unix_micros().to_be_bytes()
    );
    assert_eq!(&b[91..99], &cp.checkpoint.key_id.0);
    // key id = first 8 bytes of SHA-256(public key)
    use sha2::Digest;
    let digest = sha2::Sha256::digest(signer.verifying_key().as_bytes());
    assert_eq!(&cp.checkpoint.key_id.0[..], &digest[..8]);
}

#[test]
fn wrong_key_and_forgeries_rejected() {
    let signer = CheckpointSigner::generate().unwrap();
    let other = CheckpointSigner::generate().unwrap();
    let cp = sample_checkpoint(&signer);

    assert!(matches!(
        verify_checkpoint(&cp, &other.verifying_key()),
        Err(KeyError::KeyIdMismatch { .. })
    ));

    // Signed by another key but claiming this key's id.
    let mut forged = sample_checkpoint(&other);
    forged.checkpoint.key_id = signer.key_id();
    assert!(matches!(
        verify_checkpoint(&forged, &signer.verifying_key()),
        Err(KeyError::BadSignature)
    ));

    // Any edited field invalidates the signature.
    type Edit = Box<dyn Fn(&mut SignedCheckpoint)>;
    let edits: Vec<Edit> = vec![
        Box::new(|c| c.checkpoint.seq += 1),
        Box::new(|c| c.checkpoint.head_hash.0[0] ^= 1),
        Box::new(|c| c.checkpoint.tenant_id = tenant(101)),
        Box::new(|c| {
            c.checkpoint.signed_at =
                AuditTime::from_unix_micros(c.checkpoint.signed_at.unix_micros() + 1).unwrap()
        }),
        Box::new(|c| {
            let mut s = c.signature.to_bytes();
            s[0] ^= 1;
            c.signature = Signature::from_bytes(&s);
        }),
        Box::new(|c| {
            let mut s = c.signature.to_bytes();
            s[63] ^= 0x40;
            c.signature = Signature::from_bytes(&s);
        }),
        Box::new(|c| c.signature = Signature::from_bytes(&[0u8; 64])),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut c = cp.clone();
        edit(&mut c);
        assert!(
            verify_checkpoint(&c, &signer.verifying_key()).is_err(),
            "edit {i}"
        );
    }
}

#[test]
fn checkpoint_json_round_trip_and_strictness() {
    let signer = CheckpointSigner::generate().unwrap();
    let cp = sample_checkpoint(&signer);
    let json = serde_json::to_value(&cp).unwrap();
    let obj = json.as_object().unwrap();
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    for k in [
        "tenant_id",
        "seq",
        "head_hash",
        "signed_at",
        "key_id",
        "signature",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert_eq!(obj.len(), 6);
    assert_eq!(obj["signature"].as_str().unwrap().len(), 128);
    let back: SignedCheckpoint = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, cp);
    verify_checkpoint(&back, &signer.verifying_key()).unwrap();

    let mut extra = json.clone();
    extra["note"] = "x".into();
    assert!(serde_json::from_value::<SignedCheckpoint>(extra).is_err());
    let mut upper = json.clone();
    upper["signature"] = obj["signature"].as_str().unwrap().to_uppercase().into();
    assert!(serde_json::from_value::<SignedCheckpoint>(upper).is_err());
    let mut short = json;
    short["key_id"] = "abcd".into();
    assert!(serde_json::from_value::<SignedCheckpoint>(short).is_err());
}

#[test]
fn public_key_hex() {
    let signer = CheckpointSigner::generate().unwrap();
    let hex = signer.public_key_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(public_key_from_hex(&hex).unwrap(), signer.verifying_key());
    assert_eq!(public_key_to_hex(&signer.verifying_key()), hex);
    assert!(public_key_from_hex(&hex.to_uppercase()).is_err());
    assert!(public_key_from_hex("00").is_err());
    // The identity point is a small-order ("weak") key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(
        public_key_from_hex(&hex::encode(identity)),
        Err(KeyError::WeakPublicKey)
    ));
}

#[test]
fn pem_round_trip_and_openssl_format() {
    let signer = CheckpointSigner::generate().unwrap();
    let pem = signer.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let again = CheckpointSigner::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(again.verifying_key(), signer.verifying_key());
    // A PKCS#8 v1 key as written by `openssl genpkey -algorithm ed25519`
    // (RFC 8410 section 10.3 example key).
    let openssl = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    let k = CheckpointSigner::from_pkcs8_pem(openssl).unwrap();
    assert_eq!(
        k.public_key_hex(),
        "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
    );
    assert!(matches!(
        CheckpointSigner::from_pkcs8_pem("garbage"),
        Err(KeyError::BadPrivateKey)
    ));
    let dbg = format!("{signer:?}");
    assert!(dbg.contains(&signer.key_id().to_hex()) && !dbg.contains("secret"));
}

#[cfg(unix)]
#[test]
fn key_file_create_load_and_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-checkpoint.pem");

    let (created, origin) = CheckpointSigner::load_or_create(&path).unwrap();
    assert_eq!(origin, KeyOrigin::Created);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let (loaded, origin) = CheckpointSigner::load_or_create(&path).unwrap();
    assert_eq!(origin, KeyOrigin::Loaded);
    assert_eq!(loaded.verifying_key(), created.verifying_key());
    assert_eq!(
        CheckpointSigner::load(&path).unwrap().key_id(),
        created.key_id()
    );

    // 0400 is fine too.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    CheckpointSigner::load(&path).unwrap();

    // Group- or world-accessible key files are refused.
    for mode in [0o640, 0o604, 0o660, 0o644, 0o610] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        assert!(
            matches!(
                CheckpointSigner::load(&path),
                Err(KeyError::InsecurePermissions { .. })
            ),
            "mode {mode:o}"
        );
        assert!(
            CheckpointSigner::load_or_create(&path).is_err(),
            "mode {mode:o}"
        );
    }
    // Refusing never replaced the key.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        CheckpointSigner::load(&path).unwrap().key_id(),
        created.key_id()
    );

    // A directory or a garbage file is an error, never a silent new key.
    assert!(matches!(
        CheckpointSigner::load(dir.path()),
        Err(KeyError::NotAFile(_)) | Err(KeyError::InsecurePermissions { .. })
    ));
    let junk = dir.path().join("junk.pem");
    fs::write(&junk, "not a key").unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        CheckpointSigner::load_or_create(&junk),
        Err(KeyError::BadPrivateKey)
    ));
    let big = dir.path().join("big.pem");
    fs::write(&big, vec![b'A'; 100_000]).unwrap();
    fs::set_permissions(&big, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        CheckpointSigner::load(&big),
        Err(KeyError::FileTooLarge(_))
    ));

    // A dangling symlink at the key path is not followed to create a file.
    let target = dir.path().join("elsewhere.pem");
    let link = dir.path().join("link.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(CheckpointSigner::load_or_create(&link).is_err());
    assert!(!target.exists());

    // Missing parent directory.
    assert!(CheckpointSigner::load_or_create(&dir.path().join("no/such/dir/key.pem")).is_err());
}
