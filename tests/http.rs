//! A minimal blocking HTTP/1.0 client for the harness's probes (`/healthz`, status pages): one
//! request per connection, the body read to the end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {:.200}", self.body))
    }
}

/// Sends one request with an optional JSON body and an optional bearer token.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    bearer: Option<&str>,
) -> Result<Response> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))
        .context("setting read timeout")?;
    s.set_write_timeout(Some(timeout))
        .context("setting write timeout")?;
    let body = json.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    if json.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).context("sending request")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).context("reading response")?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("malformed HTTP response from {addr}{path}");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status code in {:.100}", head))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    request(addr, "GET", path, None, None)
}

/// `GET path` with a bearer token when one is given.
pub fn get_as(addr: SocketAddr, path: &str, bearer: Option<&str>) -> Result<Response> {
    request(addr, "GET", path, None, bearer)
}
