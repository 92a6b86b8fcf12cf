//! A tiny HTTP/1.1 server on a std thread for the outbound tests of the PCD, GitLab and ServiceNow
//! clients: answers each request with what its handler says (always `Connection: close`) and keeps
//! what it saw. A plain module file, included by each crate's tests with
//! `#[path = "../../../tests/support/http_stub.rs"] mod stub;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// One request as the stub saw it; header names lower-cased.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn redirect(status: u16, location: String) -> Reply {
        Reply { status, headers: vec![("Location".into(), location)], body: String::new() }
    }

    pub fn json(status: u16, body: String) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), "application/json".into())], body }
    }
}

pub struct Stub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    /// Listens on `ip`, any free port.
    pub fn start(ip: &str, handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Stub {
        Self::on(TcpListener::bind((ip, 0)).expect("stub binds"), handler)
    }

    /// Another origin than 127.0.0.1: 127.0.0.2 where this machine routes it (Linux routes all of
    /// 127.0.0.0/8 to lo), else another port on 127.0.0.1.
    pub fn start_elsewhere(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.2:0").or_else(|_| TcpListener::bind("127.0.0.1:0")).unwrap();
        Self::on(listener, handler)
    }

    /// Serves on a listener bound by the caller (who needs its address first).
    pub fn on(listener: TcpListener, handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Stub {
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else { continue };
                let reply = handler(&request);
                log.lock().unwrap().push(request);
                let mut out = format!("HTTP/1.1 {} Stub\r\n", reply.status);
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                    reply.body.len(),
                    reply.body
                ));
                let _ = stream.write_all(out.as_bytes());
            }
        });
        Stub { addr, seen }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The request line and headers, and the body read off (so closing never resets the connection).
fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { method, path, headers })
}
