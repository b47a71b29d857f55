//! A scripted stand-in for InfluxDB over real TCP: it records each request exactly as sent and
//! answers with the status the test picks. For what a real database will not show on demand
//! (a 400) and for the request shapes of APIs Debian has no server for (InfluxDB 1.8, 2.x).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query.
    pub target: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Request {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The server; it stops when dropped.
pub struct FakeInflux {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: CancellationToken,
}

impl Drop for FakeInflux {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeInflux {
    /// Answers the n-th request (from 0) with `status(n)`.
    pub async fn start(status: fn(usize) -> u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (seen, token) = (requests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let seen = seen.clone();
                tokio::spawn(async move { serve(stream, seen, status).await });
            }
        });
        Self { addr, requests, stop }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request, records it, answers, and closes the connection.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Request>>>, status: fn(usize) -> u16) {
    let Some(request) = read_request(&mut stream).await else { return };
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(request);
        seen.len() - 1
    };
    let code = status(n);
    let body = if code == 400 { r#"{"error":"partial write: field type conflict"}"# } else { "" };
    let answer = format!(
        "HTTP/1.1 {code} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok())?;
    while buf.len() < head_end + length {
        let mut chunk = [0; 65536];
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some(Request { target, headers, body })
}
