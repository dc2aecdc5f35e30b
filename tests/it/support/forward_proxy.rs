//! A forward proxy on 127.0.0.1:0 for the proxy tests: CONNECT tunnels (https) and
//! absolute-form requests (plain http), each recorded with its `Proxy-Authorization`.
//! Stopped when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy saw of one request (or tunnel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The request line: `CONNECT host:port HTTP/1.1` or `POST http://... HTTP/1.1`.
    pub(crate) line: String,
    pub(crate) authorization: Option<String>,
}

pub(crate) struct ForwardProxy {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl ForwardProxy {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, record.clone()));
            }
        });
        Self { addr, seen, task }
    }

    /// `http://{user_info}127.0.0.1:port`.
    pub(crate) fn url(&self, user_info: &str) -> String {
        format!("http://{user_info}{}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head; tunnels a CONNECT, or forwards an absolute-form request (and
/// the rest of the connection) to its origin in origin form.
async fn relay(client: TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    if client.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if client.read_line(&mut header).await.unwrap_or(0) == 0 {
            return;
        }
        if header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("proxy-authorization")
        {
            authorization = Some(value.trim().to_owned());
            continue;
        }
        headers.push(header);
    }
    let line = line.trim_end().to_owned();
    seen.lock().unwrap().push(Seen {
        line: line.clone(),
        authorization,
    });
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            let _ = client
                .get_mut()
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                .await;
            return;
        };
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        let _ = copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    let Some(rest) = target.strip_prefix("http://") else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await;
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            .await;
        return;
    };
    let path = if path.is_empty() { "/" } else { path };
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for header in headers {
        head.push_str(&header);
    }
    head.push_str("\r\n");
    if upstream.write_all(head.as_bytes()).await.is_ok() {
        // One request per connection: the client's next one would need its own line.
        let _ = copy_bidirectional(&mut client, &mut upstream).await;
    }
}
