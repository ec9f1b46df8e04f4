//! The web assets embedded in the server (the debug page and the JavaScript SDK) and the dev app's token minting,
//! over real HTTP.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zego_protocol::error;
use zego_protocol::message::Credentials;
use zego_server::{ServerConfig, DEV_APP_ID};

/// An HTTP response: status, headers (names lowercase) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// One HTTP/1.1 request on its own connection, read to the end (`Connection: close`).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], "").await
}

async fn mint(addr: SocketAddr, body: &str) -> Response {
    request(addr, "POST", "/dev/token", &[], body).await
}

/// The value of every `attr="..."` in an HTML text.
fn attributes<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| html[at + needle.len()..].split('"').next())
        .collect()
}

/// The specifiers of a module's static imports and re-exports: `from '...'` and bare `import '...'`.
fn imports(js: &str) -> Vec<String> {
    let mut found = Vec::new();
    for keyword in ["from", "import"] {
        for (at, _) in js.match_indices(keyword) {
            let rest = js[at + keyword.len()..].trim_start();
            let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(spec) = rest[1..].split(quote).next() {
                found.push(spec.to_owned());
            }
        }
    }
    found
}

/// `spec` as a path, resolved against the URL path `base` (`./x.js`, `../x.js` or `/x.js`).
fn resolve(base: &str, spec: &str) -> String {
    if spec.starts_with('/') {
        return spec.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for segment in spec.split('/') {
        match segment {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_page_and_the_sdk_are_served_with_their_types() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();

    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(page.text().contains("<title>zego-server debug</title>"));
    assert_eq!(get(addr, "/debug/index.html").await.body, page.body);

    let sdk = get(addr, "/sdk/index.js").await;
    assert_eq!(sdk.status, 200);
    assert_eq!(
        sdk.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(sdk.text().contains("ZegoExpressEngine"));
    let css = get(addr, "/debug/debug.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let stamp = get(addr, "/debug/stamp.js").await;
    assert_eq!(
        stamp.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(stamp.text().contains("export function readStamp"));
    let head = request(addr, "HEAD", "/sdk/index.js", &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_the_page_loads_and_every_module_it_imports_is_served() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let html = get(addr, "/").await.text();
    let mut queue: VecDeque<String> = ["src", "href"]
        .iter()
        .flat_map(|attr| attributes(&html, attr))
        .filter(|url| !url.contains("://") && !url.starts_with('#'))
        .map(|url| resolve("/", url))
        .collect();
    assert!(queue.contains(&"/debug/debug.js".to_owned()), "{queue:?}");
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let response = get(addr, &path).await;
        assert_eq!(response.status, 200, "{path} is referenced but not served");
        if path.ends_with(".js") {
            assert_eq!(
                response.header("content-type"),
                Some("text/javascript; charset=utf-8"),
                "{path}"
            );
            for spec in imports(&response.text()) {
                queue.push_back(resolve(&path, &spec));
            }
        }
    }
    // The page pulls in the whole SDK through index.js.
    for module in ["/sdk/index.js", "/sdk/engine.js", "/debug/stamp.js"] {
        assert!(seen.contains(module), "{module} not reached: {seen:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_traversal_are_not_found() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    for path in [
        "/nope",
        "/debug/",
        "/debug/missing.js",
        "/sdk/",
        "/sdk/package.json",
        "/sdk/test/engine.test.js",
        "/sdk/../debug/index.html",
        "/sdk/..%2fdebug%2findex.html",
        "/debug/../../Cargo.toml",
        "/debug/test/stamp.test.js",
        "/debug//index.html",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_etag_is_answered_not_modified() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let first = get(addr, "/sdk/engine.js").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = request(
        addr,
        "GET",
        "/sdk/engine.js",
        &[("If-None-Match", &etag)],
        "",
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let weak = format!("\"other\", W/{etag}");
    let listed = request(
        addr,
        "GET",
        "/sdk/engine.js",
        &[("If-None-Match", &weak)],
        "",
    )
    .await;
    assert_eq!(listed.status, 304);
    let stale = request(
        addr,
        "GET",
        "/sdk/engine.js",
        &[("If-None-Match", "\"0\"")],
        "",
    )
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, first.body);
    let other = get(addr, "/sdk/index.js").await;
    assert_ne!(other.header("etag"), Some(etag.as_str()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_dev_token_logs_in() {
    let server = start(ServerConfig::default()).await;
    let addr = server.http_addr();
    let app = get(addr, "/dev/app").await;
    assert_eq!(app.status, 200);
    assert_eq!(app.json()["app_id"], DEV_APP_ID);

    let minted = mint(
        addr,
        &format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"web-1","ttl_seconds":600}}"#),
    )
    .await;
    assert_eq!(minted.status, 200, "{}", minted.text());
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    let answer = minted.json();
    assert_eq!(answer["user_id"], "web-1");
    let expire = answer["expire"].as_i64().unwrap();
    let now = (unix_ms() / 1000) as i64;
    assert!(
        (now + 599..=now + 601).contains(&expire),
        "{expire} vs {now}"
    );
    let token = answer["token"].as_str().unwrap().to_owned();

    let mut client = Client::connect(&server.ws_url()).await;
    let login = login_message(
        0,
        DEV_APP_ID,
        "room-1",
        "web-1",
        Credentials::Token {
            token: token.clone(),
        },
    );
    let reply = client.login(login).await;
    assert_eq!(reply.code, 0, "{reply:?}");
    // The token is the user's own: another user cannot log in with it.
    let mut other = Client::connect(&server.ws_url()).await;
    let reply = other
        .login(login_message(
            0,
            DEV_APP_ID,
            "room-1",
            "web-2",
            Credentials::Token { token },
        ))
        .await;
    assert_eq!(reply.code, error::ROOM_TOKEN_USER_ID_ERROR);

    // Without a lifetime the token lasts an hour.
    let default = mint(
        addr,
        &format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"web-1"}}"#),
    )
    .await;
    assert_eq!(default.status, 200);
    let expire = default.json()["expire"].as_i64().unwrap();
    assert!((now + 3599..=now + 3601).contains(&expire));
    client.close().await;
    other.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_refuses_other_apps_bad_users_and_bad_lifetimes() {
    let server = start(two_apps()).await;
    let addr = server.http_addr();
    let refused = mint(
        addr,
        &format!(r#"{{"app_id":{OTHER_APP_ID},"user_id":"web-1"}}"#),
    )
    .await;
    assert_eq!(refused.status, 403);
    let body = refused.json();
    assert_eq!(body["code"], error::ENGINE_APP_ID_INCORRECT);
    assert!(body.get("token").is_none());

    for (body, code) in [
        (
            format!(r#"{{"app_id":{DEV_APP_ID},"user_id":""}}"#),
            error::ROOM_USER_ID_NULL,
        ),
        (
            format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"a b"}}"#),
            error::ROOM_USER_ID_INVALID_CHARACTER,
        ),
        (
            format!(
                r#"{{"app_id":{DEV_APP_ID},"user_id":"{}"}}"#,
                "u".repeat(65)
            ),
            error::ROOM_USER_ID_TOO_LONG,
        ),
        (
            format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"u","ttl_seconds":0}}"#),
            error::COMMON_INVALID_PARAMETER,
        ),
        (
            format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"u","ttl_seconds":86401}}"#),
            error::COMMON_INVALID_PARAMETER,
        ),
        ("not json".to_owned(), error::COMMON_INVALID_PARAMETER),
        (
            r#"{"user_id":"u"}"#.to_owned(),
            error::COMMON_INVALID_PARAMETER,
        ),
    ] {
        let response = mint(addr, &body).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.json()["code"], code, "{body}");
    }
    let day = mint(
        addr,
        &format!(r#"{{"app_id":{DEV_APP_ID},"user_id":"u","ttl_seconds":86400}}"#),
    )
    .await;
    assert_eq!(day.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_dev_app_mints_nothing() {
    let mut config = two_apps();
    config.apps.retain(|app| app.app_id != DEV_APP_ID);
    let server = start(config).await;
    let addr = server.http_addr();
    let app = get(addr, "/dev/app").await;
    assert_eq!(app.status, 404);
    assert_eq!(app.json()["code"], error::ENGINE_APP_ID_INCORRECT);
    for app_id in [DEV_APP_ID, OTHER_APP_ID] {
        let refused = mint(addr, &format!(r#"{{"app_id":{app_id},"user_id":"web-1"}}"#)).await;
        assert_eq!(refused.status, 403, "app {app_id}");
        assert_eq!(refused.json()["code"], error::ENGINE_APP_ID_INCORRECT);
        assert!(!refused.text().contains("token\""));
    }
    // The page is still served: it says minting is off and takes a pasted token.
    assert_eq!(get(addr, "/").await.status, 200);
    server.shutdown().await;
}
