//! A minimal HTTP/1.1 GET against the operator's local endpoints (`/metrics`, `/readyz`), over a
//! plain TCP socket: the kit needs no HTTP client dependency for two plain-text endpoints.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago (the OS picks it; it is released at once, so a
/// process started right after can bind it).
///
/// # Panics
/// When no local port can be bound at all.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// `GET path` on `127.0.0.1:port`, blocking, with a 30 s read timeout: (status code, body, with
/// chunked transfer encoding undone). `None` when the connection or the response fails.
pub fn get_blocking(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    // One write: a request split over several segments may be answered (and the connection
    // closed) before its end arrives.
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse_response(&String::from_utf8_lossy(&raw))
}

/// [`get_blocking`] on tokio's blocking pool, for async callers.
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || get_blocking(port, &path))
        .await
        .ok()
        .flatten()
}

/// (status code, body) of a whole HTTP/1.1 response.
fn parse_response(text: &str) -> Option<(u16, String)> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, body))
}

/// The payload of a chunked body (stops at the last chunk or at the first malformed size line).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain), Some((200, "hello".into())));
        let chunked = "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nready\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((503, "not ready".into())));
        assert_eq!(parse_response("garbage"), None);
    }

    #[test]
    fn gets_from_a_local_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let n = conn.read(&mut request).unwrap();
            let line = String::from_utf8_lossy(&request[..n])
                .lines()
                .next()
                .unwrap()
                .to_string();
            write!(conn, "HTTP/1.1 200 OK\r\n\r\n{line}").unwrap();
        });
        assert_eq!(
            get_blocking(port, "/metrics"),
            Some((200, "GET /metrics HTTP/1.1".into()))
        );
        server.join().unwrap();
        assert_eq!(get_blocking(free_port(), "/metrics"), None, "nothing listens there");
    }
}
