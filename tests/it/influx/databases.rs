//! Real databases from Debian's packages, started by the test on free loopback ports with
//! throw-away data directories, and killed when dropped: VictoriaMetrics (InfluxDB line protocol
//! on `/write` and `/api/v2/write`) and InfluxDB 1.6 (`/write`). A missing binary fails the test
//! with the package to install; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;
use tempfile::TempDir;

/// A free port on 127.0.0.1 (the listener closes right away, so the port is free to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The path of `name`, or a failure naming the Debian package that has it.
fn binary(name: &str, package: &str) -> PathBuf {
    let dirs = std::env::var("PATH").unwrap_or_default();
    let found = std::env::split_paths(&dirs)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed: `apt-get install {package}` (CI: .ci/deps.sh installs it)")
    })
}

/// An HTTP client for queries.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap()
}

/// `base` + `path` with `params` percent-encoded in the query.
fn url(base: &str, path: &str, params: &[(&str, &str)]) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url
}

/// A child process that is killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with its output in `log`.
fn spawn(program: &Path, args: &[String], log: &Path) -> Process {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    Process(child)
}

/// Waits until GET `url` answers 2xx, for at most 20 s; the log is shown on failure.
async fn ready(url: &str, log: &Path) {
    let client = client();
    for _ in 0..400 {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} not ready in 20 s; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// A VictoriaMetrics server on a fixed port and data directory, which may be stopped and
/// started again.
pub struct VictoriaMetrics {
    pub port: u16,
    dir: TempDir,
    process: Option<Process>,
}

impl VictoriaMetrics {
    /// Picks a port and a directory; nothing runs yet.
    pub fn new() -> Self {
        Self { port: free_port(), dir: tempfile::tempdir().unwrap(), process: None }
    }

    /// Starts (or restarts) the server and waits until it answers.
    pub async fn start(&mut self) {
        let program = binary("victoria-metrics", "victoria-metrics");
        let args = vec![
            format!("-httpListenAddr=127.0.0.1:{}", self.port),
            format!("-storageDataPath={}", self.dir.path().join("data").display()),
            "-loggerLevel=ERROR".to_string(),
        ];
        let log = self.dir.path().join("victoria-metrics.log");
        self.process = Some(spawn(&program, &args, &log));
        ready(&format!("{}/health", self.url()), &log).await;
    }

    /// Stops the server with SIGTERM and waits for it to exit. Not SIGKILL: VictoriaMetrics
    /// acknowledges writes from memory and flushes them a second later, so a SIGKILL loses
    /// points it already acknowledged, which is its durability, not ours to test.
    pub async fn stop(&mut self) {
        let Some(mut process) = self.process.take() else { return };
        let pid = process.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        for _ in 0..200 {
            if process.0.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("victoria-metrics did not stop on SIGTERM in 10 s");
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every sample of `metric` as (labels, timestamp in ms, value), after making new data
    /// searchable.
    pub async fn samples(&self, metric: &str) -> Vec<(Json, i64, f64)> {
        let client = client();
        client.get(format!("{}/internal/force_flush", self.url())).send().await.unwrap();
        let selector = format!("{{__name__=\"{metric}\"}}");
        let response =
            client.get(url(&self.url(), "/api/v1/export", &[("match[]", &selector)])).send().await.unwrap();
        let text = response.text().await.unwrap();
        let mut samples = Vec::new();
        for series in text.lines().map(|l| serde_json::from_str::<Json>(l).unwrap()) {
            let times = series["timestamps"].as_array().unwrap();
            let values = series["values"].as_array().unwrap();
            for (t, v) in times.iter().zip(values) {
                samples.push((series["metric"].clone(), t.as_i64().unwrap(), v.as_f64().unwrap()));
            }
        }
        samples.sort_by_key(|s| s.1);
        samples
    }

    /// Waits until `metric` has at least `count` samples (20 s at most), then returns them all.
    pub async fn wait_for(&self, metric: &str, count: usize) -> Vec<(Json, i64, f64)> {
        for _ in 0..200 {
            let samples = self.samples(metric).await;
            if samples.len() >= count {
                return samples;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let have = self.samples(metric).await.len();
        panic!("{metric}: {have} samples in VictoriaMetrics, expected {count}");
    }
}

/// An InfluxDB 1.6 server (Debian's `influxd`) with database `db`.
pub struct Influxd {
    pub port: u16,
    _dir: TempDir,
    _process: Process,
}

impl Influxd {
    /// Starts the server with a generated config and creates database `db`.
    pub async fn start() -> Self {
        let program = binary("influxd", "influxdb");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(&config, influxd_config(dir.path(), port, free_port())).unwrap();
        let log = dir.path().join("influxd.log");
        let process = spawn(&program, &["-config".into(), config.display().to_string()], &log);
        let server = Self { port, _dir: dir, _process: process };
        ready(&format!("{}/ping", server.url()), &log).await;
        server.query("CREATE DATABASE db", true).await;
        server
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs InfluxQL `q` (on `db`), times in ms; `post` for statements that change things.
    pub async fn query(&self, q: &str, post: bool) -> Json {
        let client = client();
        let url = url(&self.url(), "/query", &[("db", "db"), ("q", q), ("epoch", "ms")]);
        let request = if post { client.post(url) } else { client.get(url) };
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{q}: HTTP {}", response.status());
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    /// The rows of `q`'s first series (empty when there is none).
    pub async fn rows(&self, q: &str) -> Vec<Vec<Json>> {
        let result = self.query(q, false).await;
        let values = &result["results"][0]["series"][0]["values"];
        values
            .as_array()
            .map(|rows| rows.iter().map(|r| r.as_array().unwrap().clone()).collect())
            .unwrap_or_default()
    }
}

/// A config for `influxd` that keeps everything in `dir` and listens only on loopback.
fn influxd_config(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = dir.display();
    format!(
        "reporting-disabled = true\n\
         bind-address = \"127.0.0.1:{rpc_port}\"\n\
         [meta]\n  dir = \"{d}/meta\"\n\
         [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http_port}\"\n  log-enabled = false\n"
    )
}
