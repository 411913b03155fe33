//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against the real `bulwark` binary on port 0, on the backend the suite runs on.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them
//! the test fails and says so: it never skips. `BULWARK_CHROMIUM` / `BULWARK_CHROMEDRIVER`
//! point elsewhere. With `BULWARK_SCREENSHOTS_DIR` set, the main pages are saved there as PNG
//! (`docs/screenshots/` holds the committed ones).
//!
//! The WebDriver client is the few commands the story needs, over the blocking HTTP client the
//! other end-to-end tests already use (no second TLS stack, no browser-automation framework).

use bulwark_store::testing::{TestDb, fresh};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const PASSWORD: &str = "correct horse battery staple";
const TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The server

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(database_url: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Command::new(BIN);
        c.arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("BULWARK_DATA_DIR", dir.path().join("data"))
            .env("BULWARK_LISTEN", "127.0.0.1:0")
            .env("BULWARK_ADMIN_PASSWORD", PASSWORD)
            .env("BULWARK_WORKER_POLL_INTERVAL_MS", "50")
            .env("BULWARK_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(u) = database_url {
            c.env("BULWARK_DATABASE_URL", u);
        }
        let mut child = c.spawn().expect("spawn bulwark");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not print its address within 60 s");
            };
            if let Some(addr) = line.strip_prefix("bulwark: listening on ") {
                return Server {
                    child,
                    base: addr.to_string(),
                    _dir: dir,
                };
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API, for setting up what the story needs (keys, users, playbooks, alerts).
struct Api {
    http: reqwest::blocking::Client,
    base: String,
    token: String,
}

impl Api {
    fn login(base: &str, user: &str) -> Api {
        let http = reqwest::blocking::Client::new();
        let r: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .expect("login")
            .json()
            .expect("json");
        Api {
            http,
            base: base.to_string(),
            token: r["access_token"].as_str().expect("token").to_string(),
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .expect("request");
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    fn post_yaml(&self, path: &str, yaml: &str) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(yaml.to_string())
            .send()
            .expect("request");
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .expect("request")
            .json()
            .expect("json")
    }
}

fn webhook(base: &str, key: &str, title: &str, host: &str, ip: &str, level: u32) -> String {
    let r: Value = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/webhooks/alerts/wazuh"))
        .header("x-api-key", key)
        .json(&json!({
            "id": format!("{title}-{host}"),
            "rule": {"level": level, "description": title, "id": "5712"},
            "agent": {"name": host},
            "data": {"srcip": ip, "dstip": "10.0.0.5"}
        }))
        .send()
        .expect("webhook")
        .json()
        .expect("json");
    r["alert_id"]
        .as_str()
        .or_else(|| r["id"].as_str())
        .unwrap_or_else(|| panic!("webhook answer without an id: {r}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// A minimal WebDriver client

fn tool(var: &str, default: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()));
    assert!(
        path.exists(),
        "{} not found: the browser tests need Debian's `{package}` package \
         (apt-get install -y chromium chromium-driver; .ci/run installs it), or {var} set",
        path.display()
    );
    path
}

struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
    shots: Option<PathBuf>,
}

impl Browser {
    fn start() -> Browser {
        let chromium = tool("BULWARK_CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = tool(
            "BULWARK_CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "chromium-driver",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send()
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1500,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .expect("new session")
            .json()
            .expect("json");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {r}"))
            .to_string();
        Browser {
            driver,
            http,
            session,
            base,
            _profile: profile,
            shots: std::env::var_os("BULWARK_SCREENSHOTS_DIR").map(PathBuf::from),
        }
    }

    fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().expect("webdriver").json().expect("json");
        v["value"].clone()
    }

    fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let v = self.cmd(method, path, body);
        if let Some(e) = v.get("error") {
            panic!("webdriver {path}: {e} {}", v["message"]);
        }
        v
    }

    fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    fn current_url(&self) -> String {
        self.ok(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn find_opt(&self, css: &str) -> Option<String> {
        let v = self.cmd(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("element-"))
            .and_then(|(_, id)| id.as_str().map(str::to_string))
    }

    /// Waits for an element; panics with what was looked for.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(id) = self.find_opt(css) {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no element `{css}` on {} after {TIMEOUT:?}:\n{}",
                self.current_url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.ok(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.as_object()?
                    .iter()
                    .find(|(k, _)| k.starts_with("element-"))
                    .and_then(|(_, id)| id.as_str().map(str::to_string))
            })
            .collect()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    fn click_el(&self, id: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        );
    }

    fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.ok(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Presses keys on the page (WebDriver key codes for special keys).
    fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.ok(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]})),
        );
    }

    fn text(&self, css: &str) -> String {
        match self.find_opt(css) {
            Some(id) => self
                .cmd(reqwest::Method::GET, &format!("/element/{id}/text"), None)
                .as_str()
                .unwrap_or_default()
                .to_string(),
            None => String::new(),
        }
    }

    fn script(&self, js: &str) -> Value {
        self.ok(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
    }

    fn async_script(&self, js: &str) -> Value {
        self.ok(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": js, "args": []})),
        )
    }

    /// Waits until the page's text contains `needle`.
    fn wait_text(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let t = self.text(css);
            // Compared without case: headings are upper-cased by the stylesheet.
            if t.to_lowercase().contains(&needle.to_lowercase()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` did not appear in `{css}` on {}:\n{t}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        let png = self.ok(reqwest::Method::GET, "/screenshot", None);
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("png");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn log_in(b: &Browser, s: &Server, user: &str) {
    b.goto(&s.url("/login"));
    b.type_in("#username", user);
    b.type_in("#password", PASSWORD);
    b.click("#login-submit");
    b.find("#queue");
}

// ---------------------------------------------------------------------------------------------
// The story

const APPROVAL_PLAYBOOK: &str = "name: contain-with-approval
description: Ask before containing the host, then tag the alert.
triggers:
  - on: manual
actions:
  - ref: approve
    action: approval
    args:
      message: \"Contain {{ alert.hostname }}?\"
  - ref: tag
    action: alert.update
    depends_on: [approve]
    args:
      tags: [\"contained\"]
";

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() {
    // Checked first: a machine without the browser fails here, with the reason.
    tool("BULWARK_CHROMIUM", "/usr/bin/chromium", "chromium");
    tool(
        "BULWARK_CHROMEDRIVER",
        "/usr/bin/chromedriver",
        "chromium-driver",
    );
    let db: Option<TestDb> = match bulwark_store::testing::requested_backend() {
        bulwark_store::Backend::Postgres => Some(fresh().await),
        bulwark_store::Backend::Sqlite => None,
    };
    let url = db.as_ref().map(|d| d.url.clone());
    tokio::task::spawn_blocking(move || story(url.as_deref()))
        .await
        .expect("story");
    drop(db);
}

fn story(database_url: Option<&str>) {
    let s = Server::start(database_url);
    let admin = Api::login(&s.base, "admin");
    let key = admin.post(
        "/api/v1/api-keys",
        json!({"name": "wazuh", "scopes": ["webhooks:ingest"]}),
    )["key"]
        .as_str()
        .expect("key")
        .to_string();
    admin.post(
        "/api/v1/auth/analysts",
        json!({"username": "vera", "password": PASSWORD, "role": "viewer"}),
    );
    let playbook = admin.post_yaml("/api/v1/playbooks", APPROVAL_PLAYBOOK)["id"]
        .as_str()
        .expect("playbook id")
        .to_string();
    // Some history for the queue, the dashboard and the incident.
    let first = webhook(
        &s.base,
        &key,
        "sshd: brute force",
        "web-01",
        "203.0.113.7",
        10,
    );
    let second = webhook(
        &s.base,
        &key,
        "Port scan detected",
        "web-02",
        "203.0.113.7",
        7,
    );
    webhook(
        &s.base,
        &key,
        "Malware beacon to known C2",
        "db-01",
        "198.51.100.23",
        15,
    );
    webhook(
        &s.base,
        &key,
        "Suspicious PowerShell",
        "ws-117",
        "192.0.2.44",
        5,
    );

    let b = Browser::start();

    // 1. Log in.
    b.goto(&s.url("/alerts"));
    b.find("#login-submit");
    assert!(
        b.current_url().contains("/login?next="),
        "redirected to the login page"
    );
    b.screenshot("login");
    b.type_in("#username", "admin");
    b.type_in("#password", PASSWORD);
    b.click("#login-submit");
    b.find("#queue");
    b.wait_text("#queue", "Malware beacon to known C2");
    let cookies = b.ok(reqwest::Method::GET, "/cookie", None);
    let session = cookies
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "bulwark_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], json!(true));
    assert_eq!(session["sameSite"], json!("Strict"));

    // 2. A new alert appears in the queue without a reload.
    b.script("window.__bulwarkNoReload = 'still here';");
    let fresh_id = webhook(
        &s.base,
        &key,
        "Ransomware note dropped",
        "fs-03",
        "203.0.113.99",
        15,
    );
    b.wait_text("#queue-body", "Ransomware note dropped");
    assert_eq!(
        b.script("return window.__bulwarkNoReload || null;"),
        json!("still here"),
        "the page was not reloaded"
    );
    b.find(&format!("tr[data-id=\"{fresh_id}\"].fresh"));
    b.wait_text("#new-count", "1 new");
    b.screenshot("queue");

    // Keyboard: j moves the focus to a row.
    b.keys("j");
    b.find("tr.alert-row.focused");

    // 3. Open it and resolve it with a determination.
    b.click(&format!("tr[data-id=\"{fresh_id}\"] a.open"));
    b.find("#resolve-form");
    b.screenshot("alert");
    b.select("#determination", "malicious");
    b.select("#resolve-reason", "true_positive");
    b.click("#resolve-submit");
    b.wait_text(".flash", "Closed as resolved (malicious)");
    b.wait_text(".head .meta", "resolved");
    let a = admin.get(&format!("/api/v1/alerts/{fresh_id}"));
    assert_eq!(a["status"], "resolved");
    assert_eq!(a["determination"], "malicious");
    assert_eq!(a["resolve_reason"], "true_positive");

    // 4. Create an incident from two alerts (bulk selection in the queue).
    b.goto(&s.url("/alerts"));
    b.find("#queue");
    for id in [&first, &second] {
        let boxes = b.find_all(&format!("tr[data-id=\"{id}\"] input[name=\"id\"]"));
        b.click_el(boxes.first().expect("checkbox"));
    }
    b.wait_text("#bulk-count", "2 selected");
    b.click("#bulk-incident");
    b.wait_text(".flash", "created from 2 alerts");
    b.wait_text("#linked-alerts", "sshd: brute force");
    b.wait_text("#linked-alerts", "Port scan detected");
    b.screenshot("incident");
    let incidents = admin.get("/api/v1/incidents");
    assert_eq!(incidents["items"][0]["alert_count"], 2);

    // 5. Approve a pending approval.
    let run = admin.post(
        &format!("/api/v1/playbooks/{playbook}/run"),
        json!({"alert_id": first}),
    );
    let run_id = run["id"].as_str().expect("run id").to_string();
    let deadline = Instant::now() + TIMEOUT;
    while admin.get("/api/v1/approvals")["items"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the run never asked for approval"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.goto(&s.url("/approvals"));
    b.wait_text("main", "Contain web-01?");
    b.screenshot("approvals");
    b.click("button[data-approve]");
    b.wait_text(".flash", "Decision recorded: approved");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let r = admin.get(&format!("/api/v1/runs/{run_id}"));
        if r["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approved run did not finish: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.goto(&s.url(&format!("/runs/{run_id}")));
    b.wait_text("main", "succeeded");
    b.screenshot("run");

    // The other main pages render (and are kept as screenshots).
    for (path, marker, name) in [
        ("/dashboard", "Alerts over time by severity", "dashboard"),
        ("/incidents", "Incidents", "incidents"),
        (
            &format!("/playbooks/{playbook}") as &str,
            "contain-with-approval",
            "playbook",
        ),
        ("/observables", "203.0.113.7", "observables"),
        ("/admin/users", "vera", "admin-users"),
    ] {
        b.goto(&s.url(path));
        b.wait_text("main", marker);
        b.screenshot(name);
    }
    // The pivot: an IP leads to every alert and incident carrying it.
    b.goto(&s.url("/observables?q=203.0.113.7&match=exact"));
    b.click("td.title a.open");
    b.wait_text("#sighting-alerts", "sshd: brute force");
    b.wait_text("#sighting-incidents", "#1");
    b.screenshot("observable");

    // 6. A viewer sees no mutation controls and cannot resolve by crafting a request.
    b.click("header form[action=\"/logout\"] button");
    b.find("#login-submit");
    log_in(&b, &s, "vera");
    b.goto(&s.url(&format!("/alerts/{second}")));
    b.wait_text("h1", "Port scan detected");
    assert!(
        b.find_opt("#resolve-form").is_none(),
        "no resolve form for a viewer"
    );
    assert!(
        b.find_opt("#claim-form").is_none(),
        "no claim button for a viewer"
    );
    assert!(b.find_all("input[name=\"id\"]").is_empty());
    let status = b.async_script(&format!(
        "const done = arguments[arguments.length - 1];
         const csrf = document.querySelector('meta[name=\"csrf-token\"]').content;
         fetch('/alerts/{second}/update', {{method: 'POST', credentials: 'same-origin',
           headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
           body: 'action=resolve&determination=benign&resolve_reason=duplicate&_csrf=' + encodeURIComponent(csrf)}})
           .then(r => done(r.status), e => done(String(e)));"
    ));
    assert_eq!(status, json!(403), "a viewer's crafted resolve is refused");
    let a = admin.get(&format!("/api/v1/alerts/{second}"));
    assert_ne!(a["status"], "resolved", "the alert did not change");
    b.screenshot("viewer-alert");
}
