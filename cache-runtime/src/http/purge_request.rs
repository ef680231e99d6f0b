//! One `PURGE /` request over HTTP/1.1, on a connection of its own (`Connection: close`): the
//! purger's whole client. The response head is read with `httparse`.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A server to purge: `http://host:port`.
pub(super) struct Target {
    /// `host:port`, to resolve and for the `Host` header.
    authority: String,
}

impl Target {
    /// Reads `http://host[:port][/…]` (port 80 by default).
    pub(super) fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .trim()
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}`: a purge URL starts with http://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("`{url}`: no host"));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((_, "")) => (authority, None),
                Some((_, rest)) => match rest.strip_prefix(':') {
                    Some(port) => (&authority[..authority.len() - rest.len()], Some(port)),
                    None => return Err(format!("`{url}`: a bad IPv6 address")),
                },
                None => return Err(format!("`{url}`: a bad IPv6 address")),
            },
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("`{url}`: `{port}` is not a port"))?,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("`{url}`: no host"));
        }
        let authority = format!("{host}:{port}");
        Ok(Target { authority })
    }

    fn addresses(&self) -> Result<Vec<SocketAddr>, Failure> {
        self.authority
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| Failure::retry(format!("resolving {}: {e}", self.authority)))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

/// Why a purge failed, and whether to try again.
pub(super) struct Failure {
    pub(super) message: String,
    /// A connection error, a timeout or a `5xx`: worth another attempt. A `4xx` is not (the
    /// VCL refuses it).
    pub(super) retry: bool,
}

impl Failure {
    fn retry(message: String) -> Failure {
        Failure {
            message,
            retry: true,
        }
    }
}

/// Sends `PURGE /` with the header `(name, value)` to `target`, within `timeout`; `Ok` for a
/// `2xx` answer.
pub(super) fn send(
    target: &Target,
    header: &(&str, String),
    timeout: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(target, timeout)?;
    let request = format!(
        "PURGE / HTTP/1.1\r\nHost: {}\r\n{}: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        target.authority, header.0, header.1
    );
    let io = |e: std::io::Error| Failure::retry(format!("{target}: {e}"));
    stream.write_all(request.as_bytes()).map_err(io)?;
    let status = read_status(&mut stream, deadline).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::Bad(why) => Failure::retry(format!("{target}: {why}")),
    })?;
    match status {
        200..=299 => Ok(()),
        _ => Err(Failure {
            message: format!("{target} answered {status}"),
            retry: status >= 500,
        }),
    }
}

fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, Failure> {
    let mut last = None;
    for address in target.addresses()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                let set = stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)));
                return set
                    .map(|()| stream)
                    .map_err(|e| Failure::retry(format!("{target}: {e}")));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::retry(match last {
        Some(e) => format!("connecting to {target}: {e}"),
        None => format!("{target}: no address"),
    }))
}

enum ReadError {
    Io(std::io::Error),
    Bad(String),
}

/// Reads the response head (at most 16 KiB) and returns its status.
fn read_status(stream: &mut TcpStream, deadline: Instant) -> Result<u16, ReadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if Instant::now() > deadline {
            return Err(ReadError::Bad("timed out".to_owned()));
        }
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Bad("closed before answering".to_owned()));
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(_)) => {
                return response
                    .code
                    .ok_or_else(|| ReadError::Bad("no status".to_owned()));
            }
            Ok(httparse::Status::Partial) if buffer.len() < 16 * 1024 => {}
            Ok(httparse::Status::Partial) => {
                return Err(ReadError::Bad("a response head over 16 KiB".to_owned()));
            }
            Err(e) => return Err(ReadError::Bad(format!("a bad response: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("http://127.0.0.1:6081").unwrap().authority,
            "127.0.0.1:6081"
        );
        assert_eq!(
            Target::parse("http://varnish/").unwrap().authority,
            "varnish:80"
        );
        assert_eq!(
            Target::parse(" http://[::1]:6081/x ").unwrap().authority,
            "[::1]:6081"
        );
        assert_eq!(Target::parse("http://[::1]").unwrap().authority, "[::1]:80");
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("http://x:port").is_err());
        assert!(Target::parse("http://user@x").is_err());
    }
}
