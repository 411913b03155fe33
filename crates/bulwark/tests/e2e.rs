//! The real `bulwark` binary, started as a user would start it, on the backend the suite runs
//! on (a fresh PostgreSQL database when `BULWARK_TEST_DATABASE_URL` is a postgres URL).

use bulwark_store::testing::{TestDb, fresh};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

struct Env {
    dir: tempfile::TempDir,
    /// Set on PostgreSQL; SQLite uses the default file in the data directory.
    database_url: Option<String>,
    _db: Option<TestDb>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    match bulwark_store::testing::requested_backend() {
        bulwark_store::Backend::Sqlite => Env {
            dir,
            database_url: None,
            _db: None,
        },
        bulwark_store::Backend::Postgres => {
            let db = fresh().await;
            Env {
                dir,
                database_url: Some(db.url.clone()),
                _db: Some(db),
            }
        }
    }
}

impl Env {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("BULWARK_DATA_DIR", self.data_dir())
            .env("BULWARK_LISTEN", "127.0.0.1:0")
            .env("BULWARK_LOG_LEVEL", "info");
        if let Some(u) = &self.database_url {
            c.env("BULWARK_DATABASE_URL", u);
        }
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }
}

struct Server {
    child: Child,
    base: String,
    stdout_lines: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(env: &Env, extra: &[(&str, &str)]) -> Server {
        let mut c = env.command(&["serve"]);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn bulwark");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        let mut lines = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not print its address within 60 s: {lines:?}");
            };
            if let Some(addr) = line.strip_prefix("bulwark: listening on ") {
                let base = addr.to_string();
                lines.push(line);
                return Server {
                    child,
                    base,
                    stdout_lines: lines,
                    stderr: erx,
                };
            }
            lines.push(line);
        }
    }

    fn admin_password(&self) -> Option<String> {
        self.stdout_lines.iter().find_map(|l| {
            l.strip_prefix("bulwark: created user `admin` with password: ")
                .map(str::to_string)
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn terminate(mut self) -> (i32, Vec<String>) {
        #[cfg(unix)]
        {
            let pid = self.child.id().to_string();
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill");
        }
        let status = self.child.wait().expect("wait");
        let logs: Vec<String> = self.stderr.try_iter().collect();
        (status.code().unwrap_or(-1), logs)
    }
}

fn login(
    client: &reqwest::blocking::Client,
    s: &Server,
    user: &str,
    password: &str,
) -> reqwest::blocking::Response {
    client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .expect("login request")
}

/// Reads one HTTP/1.1 response (headers and a content-length body) from a raw connection.
fn read_response(conn: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return String::from_utf8_lossy(&buf).into(),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = conn.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("thread")
}

#[tokio::test]
async fn first_start_needs_no_configuration_and_restart_keeps_everything() {
    let env = env().await;
    let data_dir = env.data_dir();
    let sqlite = env.database_url.is_none();
    let (env, password) = blocking(move || {
        let s = Server::start(&env, &[]);
        let password = s
            .admin_password()
            .expect("admin password printed on first start");
        assert!(password.len() >= 16);
        let client = reqwest::blocking::Client::new();
        assert_eq!(
            client
                .get(s.url("/healthz"))
                .send()
                .expect("healthz")
                .status(),
            200
        );
        assert_eq!(
            client
                .get(s.url("/readyz"))
                .send()
                .expect("readyz")
                .status(),
            200
        );
        let r = login(&client, &s, "admin", &password);
        assert_eq!(r.status(), 200);
        let token = r.json::<Value>().expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        let r = client
            .post(s.url("/api/v1/tenants"))
            .bearer_auth(&token)
            .json(&json!({"slug": "acme", "name": "Acme"}))
            .send()
            .expect("create tenant");
        assert_eq!(r.status(), 201);
        let (code, _) = s.terminate();
        assert_eq!(code, 0, "clean exit on SIGTERM");
        (env, password)
    });

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = data_dir.join("jwt.key");
        let mode = std::fs::metadata(&key)
            .expect("jwt.key exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "signing key is private");
        let dmode = std::fs::metadata(&data_dir)
            .expect("data dir")
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700, "data dir is private");
    }
    if sqlite {
        assert!(
            data_dir.join("bulwark.db").exists(),
            "embedded database in the data directory"
        );
    }

    blocking(move || {
        let s = Server::start(&env, &[]);
        assert!(s.admin_password().is_none(), "no new admin on restart");
        let client = reqwest::blocking::Client::new();
        let r = login(&client, &s, "admin", &password);
        assert_eq!(r.status(), 200, "same password after restart");
        let token = r.json::<Value>().expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        let tenants: Value = client
            .get(s.url("/api/v1/tenants"))
            .bearer_auth(&token)
            .send()
            .expect("tenants")
            .json()
            .expect("json");
        let slugs: Vec<_> = tenants
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["slug"].clone())
            .collect();
        assert_eq!(slugs, vec![json!("acme"), json!("default")]);
        s.terminate();
    });
}

#[tokio::test]
async fn admin_password_from_env_json_logs_and_graceful_shutdown() {
    let env = env().await;
    blocking(move || {
        let s = Server::start(
            &env,
            &[
                ("BULWARK_ADMIN_PASSWORD", "from-the-environment-1"),
                ("BULWARK_LOG_FORMAT", "json"),
            ],
        );
        assert!(
            s.admin_password().is_none(),
            "a given password is never printed"
        );
        // A login (argon2 takes a while) in flight when SIGTERM arrives still completes. The
        // connection is accepted first (a keep-alive request on it), so the login is really
        // in flight, not waiting in the listen backlog.
        let addr = s.base.trim_start_matches("http://").to_string();
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let health =
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nx-request-id: req-e2e-42\r\n\r\n");
        conn.write_all(health.as_bytes()).expect("write");
        let first = read_response(&mut conn);
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(
            first
                .to_ascii_lowercase()
                .contains("x-request-id: req-e2e-42"),
            "{first}"
        );
        let body = r#"{"username":"admin","password":"from-the-environment-1"}"#;
        let login = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(login.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(5));
        let (code, logs) = s.terminate();
        let answer = read_response(&mut conn);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "in-flight login answered: {answer}"
        );
        assert_eq!(code, 0);
        let parsed: Vec<Value> = logs
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert!(!parsed.is_empty(), "JSON log lines: {logs:?}");
        assert!(
            parsed.iter().any(|v| v.to_string().contains("req-e2e-42")),
            "request id in the logs: {logs:?}"
        );
        assert!(
            !logs.iter().any(|l| l.contains("from-the-environment-1")),
            "secrets never logged"
        );
    });
}

#[tokio::test]
async fn cli_manages_tenants_users_and_keys() {
    let env = env().await;
    blocking(move || {
        let (code, out, err) = env.run(&["migrate"], None);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("migrations applied"));
        let (code, out, err) = env.run(&["tenant", "create", "acme", "--name", "Acme Corp"], None);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, _) = env.run(&["tenant", "list"], None);
        assert_eq!(code, 0);
        assert!(out.contains("acme") && out.contains("default"), "{out}");
        let (code, _, err) = env.run(&["tenant", "create", "Not A Slug"], None);
        assert_ne!(code, 0);
        assert!(err.contains("slug"), "{err}");

        let (code, out, err) = env.run(
            &[
                "user",
                "create",
                "--username",
                "eve",
                "--role",
                "viewer",
                "--tenant",
                "acme",
                "--password-stdin",
            ],
            Some("eve-password-123\n"),
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(!out.contains("eve-password-123"));
        let (code, _, err) = env.run(
            &["user", "create", "--username", "mallory", "--role", "root"],
            None,
        );
        assert_ne!(code, 0);
        assert!(err.contains("role"), "{err}");
        let (code, out, _) = env.run(&["user", "set-role", "eve", "analyst"], None);
        assert_eq!(code, 0, "{out}");
        let (code, out, _) = env.run(&["user", "list"], None);
        assert_eq!(code, 0);
        assert!(
            out.lines()
                .any(|l| l.starts_with("eve") && l.contains("analyst")),
            "{out}"
        );
        let (code, _, err) = env.run(&["user", "set-role", "admin", "viewer"], None);
        assert_ne!(
            code, 0,
            "the last admin cannot be demoted from the CLI either"
        );
        assert!(err.contains("last active platform admin"), "{err}");
        let (code, out, _) = env.run(&["user", "reset-password", "eve"], None);
        assert_eq!(code, 0);
        let new_pw = out
            .lines()
            .find_map(|l| l.strip_prefix("password: "))
            .expect("printed")
            .to_string();

        let (code, out, err) = env.run(
            &[
                "api-key",
                "create",
                "--name",
                "wazuh-prod",
                "--scope",
                "webhooks:ingest",
                "--scope",
                "read",
                "--tenant",
                "acme",
                "--source",
                "wazuh",
            ],
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
        let key = out
            .lines()
            .find_map(|l| l.strip_prefix("key (shown once): "))
            .expect("key printed")
            .to_string();
        let id = out.split_whitespace().nth(3).expect("id").to_string();
        let (code, _, err) = env.run(
            &["api-key", "create", "--name", "x", "--scope", "everything"],
            None,
        );
        assert_ne!(code, 0);
        assert!(err.contains("scope"), "{err}");

        let s = Server::start(&env, &[]);
        let client = reqwest::blocking::Client::new();
        assert_eq!(login(&client, &s, "eve", &new_pw).status(), 200);
        assert_eq!(login(&client, &s, "eve", "eve-password-123").status(), 401);
        let r = client
            .get(s.url("/api/v1/auth/me"))
            .header("x-api-key", &key)
            .send()
            .expect("me");
        assert_eq!(r.status(), 403, "authenticated as a key, not an analyst");

        let (code, out, err) = env.run(&["api-key", "revoke", &id], None);
        assert_eq!(code, 0, "{out}{err}");
        let r = client
            .get(s.url("/api/v1/auth/me"))
            .header("x-api-key", &key)
            .send()
            .expect("me");
        assert_eq!(
            r.status(),
            401,
            "revocation from the CLI is effective immediately"
        );
        let (code, out, _) = env.run(&["api-key", "list"], None);
        assert_eq!(code, 0);
        assert!(out.contains("revoked") && !out.contains(&key), "{out}");
        let (code, _, _) = env.run(&["user", "disable", "eve"], None);
        assert_eq!(code, 0);
        assert_eq!(login(&client, &s, "eve", &new_pw).status(), 401);
        s.terminate();
    });
}

#[tokio::test]
async fn audit_trail_verifies_exports_and_detects_a_tampered_export() {
    let env = env().await;
    blocking(move || {
        let (code, _, err) = env.run(&["tenant", "create", "acme"], None);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = env.run(
            &["user", "create", "--username", "zed", "--tenant", "acme"],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = env.run(&["audit", "checkpoint"], None);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("signed 2 checkpoints"), "{out}");
        let (code, _, _) = env.run(&["user", "disable", "zed"], None);
        assert_eq!(code, 0);
        let (code, out, err) = env.run(&["audit", "verify"], None);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("acme: ok, 3 records") && out.contains("1 checkpoints verified"),
            "{out}"
        );
        let (code, out, _) = env.run(&["audit", "verify", "--incremental"], None);
        assert_eq!(code, 0, "{out}");

        let file = env.dir.path().join("audit.jsonl");
        let f = file.to_str().expect("utf8");
        let (code, out, err) = env.run(&["audit", "export", "--file", f], None);
        assert_eq!(code, 0, "{out}{err}");
        let (_, key, _) = env.run(&["audit", "public-key"], None);
        let key = key.trim().to_string();
        // Offline: no database settings at all.
        let offline = |path: &str, key: &str| {
            Command::new(BIN)
                .args(["audit", "verify", "--file", path, "--public-key", key])
                .env_clear()
                .env("BULWARK_DATA_DIR", env.dir.path().join("nowhere"))
                .output()
                .expect("run")
        };
        let out = offline(f, &key);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        // Change one character inside one record and the offline check fails, naming the seq.
        let text = std::fs::read_to_string(&file).expect("read");
        let tampered = text.replacen("\"seq\":2,", "\"seq\":3,", 1);
        assert_ne!(tampered, text);
        let bad = env.dir.path().join("tampered.jsonl");
        std::fs::write(&bad, tampered).expect("write");
        let out = offline(bad.to_str().expect("utf8"), &key);
        assert_ne!(out.status.code(), Some(0));
        // A key the checkpoints were not signed with is refused.
        let other = "00".repeat(32);
        let out = offline(f, &other);
        assert_ne!(out.status.code(), Some(0));
    });
}

#[tokio::test]
async fn bad_configuration_is_refused_with_the_setting_named() {
    let env = env().await;
    blocking(move || {
        let mut c = env.command(&["config", "check"]);
        c.env("BULWARK_LISTEN", "localhost-ish");
        let out = c.output().expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("BULWARK_LISTEN"));

        let cfg = env.dir.path().join("bulwark.toml");
        std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\njwt_secret = \"0123456789abcdef0123456789abcdef!\"\nunknown_key = 1\n")
            .expect("write");
        let out = env
            .command(&["--config", cfg.to_str().expect("utf8"), "config", "check"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_key"));

        std::fs::write(&cfg, "jwt_secret = \"0123456789abcdef0123456789abcdef!\"\n")
            .expect("write");
        let out = env
            .command(&["--config", cfg.to_str().expect("utf8"), "config", "check"])
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("jwt_secret       = [set]"));
        assert!(
            !stdout.contains("0123456789abcdef"),
            "secrets are never printed"
        );

        // A signing key readable by others is refused.
        std::fs::create_dir_all(env.data_dir()).expect("dir");
        let key = env.data_dir().join("jwt.key");
        std::fs::write(&key, "00".repeat(64)).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let out = env.command(&["serve"]).output().expect("run");
            assert_ne!(out.status.code(), Some(0));
            assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
        }
        let _ = Path::new("");
    });
}

#[tokio::test]
async fn worker_process_starts_and_stops() {
    let env = env().await;
    blocking(move || {
        let (code, _, _) = env.run(&["migrate"], None);
        assert_eq!(code, 0);
        let mut c = env.command(&["worker"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn worker");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "bulwark: worker started");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert_eq!(child.wait().expect("wait").code(), Some(0));
    });
}

#[tokio::test]
async fn signed_webhooks_and_the_per_address_limit_through_the_real_server() {
    let env = env().await;
    blocking(move || {
        let (code, out, err) = env.run(
            &[
                "api-key",
                "create",
                "--name",
                "edr",
                "--scope",
                "webhooks:ingest",
                "--signed",
                "--rate-per-second",
                "50",
                "--burst",
                "50",
            ],
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
        let line = |prefix: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("{prefix} printed: {out}"))
                .to_string()
        };
        let key = line("key (shown once): ");
        let secret = line("signing secret (shown once): ");
        let (code, _, err) = env.run(
            &[
                "api-key", "create", "--name", "x", "--scope", "read", "--signed",
            ],
            None,
        );
        assert_ne!(code, 0);
        assert!(err.contains("webhooks:ingest"), "{err}");

        let s = Server::start(
            &env,
            &[
                ("BULWARK_AUTH_FAILURE_BURST", "2"),
                ("BULWARK_AUTH_FAILURES_PER_MINUTE", "1"),
            ],
        );
        let client = reqwest::blocking::Client::new();
        let body = r#"{"title":"signed from the EDR","source_id":"edr-1"}"#;
        let post = |sig: Option<String>, key: &str| {
            let mut r = client
                .post(s.url("/api/v1/webhooks/alerts"))
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .body(body);
            if let Some(sig) = sig {
                r = r.header("x-bulwark-signature", sig);
            }
            r.send().expect("post")
        };
        let now = chrono::Utc::now().timestamp();
        let sig = bulwark_core::signature::sign(secret.as_bytes(), now, body.as_bytes());
        assert_eq!(post(Some(sig), &key).status(), 201);
        // Unsigned: refused, and counted against this address (127.0.0.1).
        assert_eq!(post(None, &key).status(), 401);
        assert_eq!(post(None, "bwk_AAAAAAAA_made-up").status(), 401);
        let r = post(None, &key);
        assert_eq!(r.status(), 429, "the address spent its failure budget");
        assert!(r.headers().contains_key("retry-after"));
        s.terminate();
    });
}

#[tokio::test]
async fn an_alert_is_triaged_through_the_real_server_and_survives_a_restart() {
    let env = env().await;
    blocking(move || {
        let s = Server::start(&env, &[]);
        let password = s.admin_password().expect("admin password");
        let client = reqwest::blocking::Client::new();
        let token_for = |s: &Server| {
            login(&client, s, "admin", &password)
                .json::<Value>()
                .expect("json")["access_token"]
                .as_str()
                .expect("token")
                .to_string()
        };
        let token = token_for(&s);
        let r = client
            .post(s.url("/api/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "siem", "scopes": ["webhooks:ingest"]}))
            .send()
            .expect("key");
        assert_eq!(r.status(), 201);
        let key = r.json::<Value>().expect("json")["key"]
            .as_str()
            .expect("key")
            .to_string();
        let r = client
            .post(s.url("/api/v1/webhooks/alerts"))
            .header("x-api-key", &key)
            .json(&json!({"title": "Mimikatz on dc-1", "source_id": "e2e-1", "hostname": "dc-1"}))
            .send()
            .expect("ingest");
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().expect("json")["alert_id"]
            .as_str()
            .expect("alert_id")
            .to_string();
        let patch = |s: &Server, token: &str, body: Value| {
            client
                .patch(s.url(&format!("/api/v1/alerts/{id}")))
                .bearer_auth(token)
                .json(&body)
                .send()
                .expect("patch")
        };
        let r = patch(
            &s,
            &token,
            json!({"status": "resolved", "determination": "malicious", "resolve_reason": "true_positive"}),
        );
        assert_eq!(r.status(), 200);
        let r = patch(&s, &token, json!({"status": "triaged"}));
        assert_eq!(r.status(), 422);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let (code, _) = s.terminate();
        assert_eq!(code, 0);

        let s = Server::start(&env, &[]);
        let token = token_for(&s);
        let r = client
            .get(s.url(&format!("/api/v1/alerts/{id}/activities")))
            .bearer_auth(&token)
            .send()
            .expect("activities")
            .json::<Value>()
            .expect("json");
        let kinds: Vec<&str> = r["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            vec!["created", "status", "determination", "resolve_reason"]
        );
        s.terminate();
    });
}

/// `bulwark` with no configuration at all (and a broken one in the environment, which
/// `playbook validate` must not read).
fn offline(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("BULWARK_LISTEN", "not-an-address")
        .env("BULWARK_DATABASE_URL", "mysql://nowhere")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn playbook_validate_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "name: good\ntriggers:\n  - on: manual\nactions:\n  - ref: a\n    action: set\n    args:\n      values: {x: 1}\n",
    )
    .expect("write");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\n\
         triggers:\n  - on: manual\n\
         actions:\n\
         \x20 - ref: tag\n    action: alert.updte\n    args: {status: triaged}\n\
         \x20 - ref: one\n    action: set\n    depends_on: [two]\n    args: {values: {}}\n\
         \x20 - ref: two\n    action: set\n    depends_on: [one]\n    args: {values: {}}\n",
    )
    .expect("write");
    let json = dir.path().join("good.json");
    std::fs::write(
        &json,
        r#"{"name": "good-json", "triggers": [{"on": "manual"}], "actions": [{"ref": "a", "action": "set", "args": {"values": {}}}]}"#,
    )
    .expect("write");

    let (code, out, err) = offline(
        &["playbook", "validate", "good.yaml", "good.json"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "good.yaml: OK (good)\ngood.json: OK (good-json)\n");

    let (code, out, err) = offline(
        &[
            "playbook",
            "validate",
            "good.yaml",
            "bad.yaml",
            "missing.yaml",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("good.yaml: OK (good)"), "{out}");
    // The unknown action with its line and the suggestion, the cycle with its line.
    assert!(
        out.lines().any(|l| l.starts_with("bad.yaml:6: ")
            && l.contains("alert.updte")
            && l.contains("did you mean `alert.update`")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("bad.yaml:") && l.contains("cycle") && l.contains("one")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("missing.yaml: cannot read the file")),
        "{out}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_example_playbooks_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/examples");
    let mut files: Vec<String> = std::fs::read_dir(&root)
        .expect("examples")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["playbook", "validate"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = offline(&args, &root);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains(": OK (")).count(),
        files.len()
    );
}

#[tokio::test]
async fn the_server_loads_the_playbooks_directory() {
    let env = env().await;
    let pb_dir = env.dir.path().join("playbooks");
    std::fs::create_dir_all(&pb_dir).expect("dir");
    std::fs::write(
        pb_dir.join("nightly.yaml"),
        "name: dir-nightly\ntriggers:\n  - on: schedule\n    cron: \"0 2 * * *\"\nactions:\n  - ref: a\n    action: set\n    args:\n      values: {x: 1}\n",
    )
    .expect("write");
    let url = env
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", env.data_dir().join("bulwark.db").display()));
    let dir = pb_dir.display().to_string();
    let server = blocking(move || {
        let s = Server::start(&env, &[("BULWARK_PLAYBOOKS_DIR", dir.as_str())]);
        (s, env)
    });
    let store = bulwark_store::open(&url).await.expect("open");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let loaded = loop {
        if let Some(p) = store.playbook_by_name("dir-nightly").await.expect("read") {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the playbook was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((loaded.origin.as_str(), loaded.tenant_id), ("file", None));
    // Its schedule trigger gets a row from the scheduler.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.list_schedules().await.expect("rows").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no schedule row");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An invalid edit is logged with its file and line, and version 1 stays.
    std::fs::write(
        pb_dir.join("nightly.yaml"),
        "name: dir-nightly\ntriggers:\n  - on: schedule\n    cron: \"0 2 * * *\"\nactions:\n  - ref: a\n    action: sett\n",
    )
    .expect("write");
    let (s, env) = server;
    let (s, logged) = blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline {
            if let Ok(line) = s.stderr.recv_timeout(Duration::from_millis(200)) {
                if line.contains("nightly.yaml:7:") && line.contains("unknown action `sett`") {
                    return (s, Ok(line));
                }
                seen.push(line);
            }
        }
        (s, Err(seen))
    });
    assert!(logged.is_ok(), "the error was not logged: {logged:?}");
    let p = store
        .playbook_by_name("dir-nightly")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((p.version, p.enabled), (1, true));
    store.close().await;
    let (code, _) = blocking(move || s.terminate());
    assert_eq!(code, 0);
    drop(env);
}
