//! The HTTP side's fences over real TCP on loopback: the token (header, query and cookie), the
//! open paths, the peer list, and the server limits under 500 idle or slowly-sending
//! connections; and, with the real binary, the token kept out of the log and the warning of an
//! open port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inverter_monitor::config::{Config, HttpConfig, InverterConfig, Secret};
use inverter_monitor::service::{self, Console};
use inverter_monitor::sim::SimConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::process::{BIN, free_port, spawn_logged, stop, wait_for_port};

const TOKEN: &str = "test-token-0123456789abcdef";

struct App {
    _sim: SimHandle,
    http: SocketAddr,
    cancel: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The service against the simulator, its `[http]` on a free loopback port and then `tune`d.
async fn start(tune: impl FnOnce(&mut HttpConfig)) -> App {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut inverter = InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL);
    inverter.interval = Duration::from_millis(200);
    inverter.request_pause = Duration::from_millis(1);
    let mut config = Config::new(vec![inverter]);
    let mut http = HttpConfig::new("127.0.0.1:0".parse().unwrap());
    tune(&mut http);
    config.http = Some(http);
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let http = running.http.unwrap();
    tokio::spawn(running.wait());
    App { _sim: sim, http, cancel }
}

fn with_token(http: &mut HttpConfig) {
    http.token = Some(Secret::new(TOKEN.into()));
}

/// A client that shows redirects instead of following them, connecting from `from`.
fn client(from: IpAddr) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// GET `path` with `headers`: (status, response headers).
async fn get(app: &App, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap) {
    let mut request = client(localhost()).get(format!("http://{}{path}", app.http));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

async fn status(app: &App, path: &str, headers: &[(&str, &str)]) -> u16 {
    get(app, path, headers).await.0
}

#[tokio::test]
async fn the_token_guards_the_page_and_the_api_but_not_healthz() {
    let app = start(with_token).await;
    let bearer = format!("Bearer {TOKEN}");
    for path in ["/", "/api/snapshot", "/metrics"] {
        assert_eq!(status(&app, path, &[]).await, 401, "{path} without a token");
        assert_eq!(status(&app, path, &[("authorization", "Bearer wrong-token-0123456789")]).await, 401);
        assert_eq!(status(&app, path, &[("authorization", &bearer)]).await, 200, "{path} with the token");
    }
    let (code, headers) = get(&app, "/api/snapshot", &[]).await;
    assert_eq!(
        (code, headers["www-authenticate"].to_str().unwrap()),
        (401, "Bearer realm=\"inverter-monitor\"")
    );
    assert_ne!(status(&app, "/healthz", &[]).await, 401, "the image's HEALTHCHECK sends no token");
    assert_eq!(status(&app, "/nowhere", &[]).await, 401, "unknown paths tell nothing either");
}

#[tokio::test]
async fn a_token_in_the_query_becomes_a_cookie_and_leaves_the_address_bar() {
    let app = start(with_token).await;
    let (code, headers) = get(&app, "/api/snapshot?token=wrong-token-0123456789", &[]).await;
    assert_eq!(code, 401);
    assert!(headers.get("set-cookie").is_none(), "no cookie for a wrong token");

    let (code, headers) = get(&app, &format!("/api/snapshot?pretty=1&token={TOKEN}"), &[]).await;
    assert_eq!(code, 303);
    assert_eq!(headers["location"], "./snapshot?pretty=1", "relative, so it works behind ingress");
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains(TOKEN), "the cookie carries a digest, not the token: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    assert_eq!(status(&app, "/api/snapshot", &[("cookie", cookie)]).await, 200);
    assert_eq!(status(&app, "/", &[("cookie", &format!("a=b; {cookie}"))]).await, 200);
    let (name, _) = cookie.split_once('=').unwrap();
    assert_eq!(
        status(&app, "/", &[("cookie", &format!("{name}={TOKEN}"))]).await,
        401,
        "not the token itself"
    );
    assert_eq!(status(&app, "/", &[("cookie", &format!("{name}=0000"))]).await, 401);
}

#[tokio::test]
async fn a_trusted_peer_needs_no_token_and_others_still_do() {
    let app = start(|http| {
        with_token(http);
        http.trusted = vec!["127.0.0.2".to_string().try_into().unwrap()];
    })
    .await;
    let url = format!("http://{}/api/snapshot", app.http);
    let trusted = client(IpAddr::from([127, 0, 0, 2])).get(&url).send().await.unwrap();
    assert_eq!(trusted.status(), 200, "as Home Assistant's ingress proxy in the add-on");
    assert_eq!(status(&app, "/api/snapshot", &[]).await, 401, "127.0.0.1 is not trusted");
}

#[tokio::test]
async fn metrics_are_open_when_configured_and_the_rest_stays_closed() {
    let app = start(|http| {
        with_token(http);
        http.open = vec!["/healthz".into(), "/metrics".into()];
    })
    .await;
    assert_eq!(status(&app, "/metrics", &[]).await, 200);
    assert_eq!(status(&app, "/", &[]).await, 401);
    assert_eq!(status(&app, "/api/snapshot", &[]).await, 401);
}

#[tokio::test]
async fn without_a_token_everything_is_open_as_before() {
    let app = start(|_| {}).await;
    assert_eq!(status(&app, "/", &[]).await, 200);
    assert_eq!(status(&app, "/metrics", &[]).await, 200);
}

#[tokio::test]
async fn a_peer_outside_allow_is_closed_and_one_inside_is_served() {
    let app = start(|http| http.allow = vec!["127.0.0.2".to_string().try_into().unwrap()]).await;
    let url = format!("http://{}/", app.http);
    let refused = client(localhost()).get(&url).send().await;
    assert!(refused.is_err(), "127.0.0.1 is not allowed: {refused:?}");
    let admitted = client(IpAddr::from([127, 0, 0, 2])).get(&url).send().await.unwrap();
    assert_eq!(admitted.status(), 200);
}

/// Writes a raw request and reads until the server closes or 2 s pass: (what came back,
/// whether the server closed).
async fn raw(addr: SocketAddr, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A server that refuses a large head may reset before taking it all: that is a refusal too.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    (String::from_utf8_lossy(&answer).into_owned(), read.is_ok())
}

#[tokio::test]
async fn an_oversized_request_head_gets_431_and_the_server_goes_on() {
    let app = start(|_| {}).await;
    let head = |size: usize| {
        format!(
            "GET /api/snapshot HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(size)
        )
    };
    let (answer, closed) = raw(app.http, head(4 * 1024).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "a head under 8 KiB is fine: {answer:.80}");
    assert!(closed);
    let (answer, closed) = raw(app.http, head(64 * 1024).as_bytes()).await;
    assert!(closed, "the connection ends");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    assert_eq!(status(&app, "/api/snapshot", &[]).await, 200, "and the server goes on");
}

#[tokio::test]
async fn idle_and_silent_connections_end_after_the_header_timeout() {
    let app = start(|http| http.header_timeout = Duration::from_millis(500)).await;
    let mut kept = TcpStream::connect(app.http).await.unwrap();
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buffer = vec![0; 64 * 1024];
    assert!(kept.read(&mut buffer).await.unwrap() > 0, "answered, and kept alive");
    let mut silent = TcpStream::connect(app.http).await.unwrap();
    let started = Instant::now();
    for stream in [&mut kept, &mut silent] {
        let eof = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        eof.await.expect("the server closes the connection");
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(3), "{waited:?}");
}

/// One attacking connection: idle, or sending a header line every 200 ms and never finishing
/// its request. Counts itself in `counts`: opened, and alive until the server closes it.
async fn attacker(addr: SocketAddr, slow: bool, counts: Arc<[AtomicUsize; 2]>, stop: CancellationToken) {
    let [opened, alive] = &*counts;
    let Ok(mut stream) = TcpStream::connect(addr).await else { return };
    opened.fetch_add(1, Ordering::SeqCst);
    alive.fetch_add(1, Ordering::SeqCst);
    if slow {
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    }
    let mut buffer = [0; 1024];
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            read = stream.read(&mut buffer) => if matches!(read, Ok(0) | Err(_)) { break },
            () = tokio::time::sleep(Duration::from_millis(200)), if slow => {
                if stream.write_all(b"X-Slow: 1\r\n").await.is_err() { break }
            }
        }
    }
    alive.fetch_sub(1, Ordering::SeqCst);
}

#[tokio::test]
async fn five_hundred_idle_or_slow_connections_do_not_starve_the_page() {
    let app = start(|_| {}).await;
    let counts: Arc<[AtomicUsize; 2]> = Arc::default();
    let stop = CancellationToken::new();
    let mut attackers = tokio::task::JoinSet::new();
    for i in 0..500 {
        attackers.spawn(attacker(app.http, i % 2 == 0, counts.clone(), stop.clone()));
    }
    let [opened, alive] = &*counts;
    until("500 connections are open", || opened.load(Ordering::SeqCst) == 500).await;
    for _ in 0..5 {
        let started = Instant::now();
        let code = tokio::time::timeout(Duration::from_secs(1), status(&app, "/", &[])).await;
        assert_eq!(code.ok(), Some(200), "the page answers within a second");
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("the server holds at most max_connections", || alive.load(Ordering::SeqCst) <= 64).await;
    stop.cancel();
    while attackers.join_next().await.is_some() {}
}

#[tokio::test]
async fn check_config_names_a_token_file_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text =
        "[[inverter]]\nname = \"h\"\nhost = \"h\"\nserial = 1\n[http]\ntoken_file = \"/nonexistent/token\"\n";
    std::fs::write(&path, text).unwrap();
    let output =
        std::process::Command::new(BIN).args(["check-config", path.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("bad.toml: http.token_file: cannot be read"), "{stderr}");
}

/// The binary with `[http]` `extra`, listening on `listen`; returns its log after `exercise`.
async fn binary_log(listen: &str, extra: &str, exercise: impl AsyncFnOnce(&str)) -> String {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "data_dir = \"{data}\"\n[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         serial = {SERIAL}\ninterval = \"1s\"\n[http]\nlisten = \"{listen}\"\n{extra}\n",
        data = dir.path().display(),
        port = sim.addr.port(),
    );
    let path = dir.path().join("inverter-monitor.toml");
    std::fs::write(&path, config).unwrap();
    let child = spawn_logged(&dir, &["run", "--config", path.to_str().unwrap()], &[]);
    let local = listen.replace("0.0.0.0", "127.0.0.1");
    wait_for_port(&local);
    exercise(&local).await;
    stop(child, &dir).await
}

#[tokio::test]
async fn the_token_never_reaches_the_log_and_an_open_port_is_warned_about_once() {
    let listen = format!("127.0.0.1:{}", free_port());
    let log = binary_log(&listen, &format!("token = \"{TOKEN}\""), async |addr| {
        let c = client(localhost());
        for url in [
            format!("http://{addr}/?token={TOKEN}"),
            format!("http://{addr}/api/snapshot?token={TOKEN}x"),
            format!("http://{addr}/nowhere?token={TOKEN}"),
        ] {
            c.get(url).send().await.unwrap();
        }
        let answer = c.get(format!("http://{addr}/")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    })
    .await;
    assert!(log.contains("HTTP"), "{log}");
    assert!(!log.contains(TOKEN), "the log shows the token:\n{log}");
    assert!(!log.contains("open to anyone"), "a token is set and the port is on loopback: {log}");

    let listen = format!("0.0.0.0:{}", free_port());
    let log = binary_log(&listen, "", async |_| {}).await;
    assert_eq!(log.matches("open to anyone").count(), 1, "{log}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_still_sending_its_request() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let mut config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", sim.addr.port(), SERIAL)]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    let cancel = CancellationToken::new();
    let running = service::start(config, Console::Quiet, &cancel).unwrap();
    let mut slow = TcpStream::connect(running.http.unwrap()).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    cancel.cancel();
    running.wait().await.expect("a clean shutdown");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "the 10 s header timeout held the shutdown: {waited:?}");
}
