//! The real binary as a user runs it: started with arguments and environment variables, logging
//! to a file, stopped with SIGTERM; and the `healthcheck` command that Docker runs beside it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_inverter-monitor");

/// Runs the binary with `args` off the async runtime: (exit 0, stdout, stderr).
pub async fn output(args: &[&str]) -> (bool, String, String) {
    output_env(args, &[]).await
}

/// [`output`] with `env` set. A `--shard` in the environment the tests run in is not passed on:
/// it would make every run a shard's.
pub async fn output_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(BIN);
        command.args(&args).env_remove(inverter_monitor::config::SHARD_ENV).envs(env);
        command.output().unwrap()
    })
    .await
    .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the binary with `args` and `env` at debug level (unless `env` sets `RUST_LOG`), its
/// stdout and stderr going to `dir/log`: a pipe nobody reads while the test waits would fill up
/// and stall the service.
pub fn spawn_logged(dir: &tempfile::TempDir, args: &[&str], env: &[(&str, String)]) -> Child {
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Stops the service with SIGTERM, checks that it stopped cleanly, and returns its log.
pub async fn stop(mut child: Child, dir: &tempfile::TempDir) -> String {
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(status.success(), "the service stops cleanly on SIGTERM: {log}");
    log
}

/// Sends SIGTERM to a process we started.
pub fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Polls `addr` until it accepts, for a process we started; bounded, no blind sleep.
pub fn wait_for_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `inverter-monitor healthcheck --url <url>`: (exit 0, stdout, stderr).
pub async fn healthcheck(url: &str) -> (bool, String, String) {
    let url = url.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["healthcheck", "--url", &url, "--timeout", "2s"])
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

/// Runs `healthcheck` until its exit status is `healthy`; bounded by 20 s.
pub async fn healthcheck_until(url: &str, healthy: bool) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, stdout, stderr) = healthcheck(url).await;
        if ok == healthy {
            return (stdout, stderr);
        }
        assert!(Instant::now() < deadline, "healthcheck never said healthy = {healthy}: {stdout}{stderr}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
