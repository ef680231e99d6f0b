//! Certificates for the TLS tests, made with the `openssl` command line: a CA, a server
//! certificate for `127.0.0.1` and `localhost` (also usable as a client certificate: cluster
//! nodes present it to each other), and a client certificate (mutual TLS).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM files of one test's certificates.
pub struct Certs {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate (for `127.0.0.1` and `localhost`), signed by the CA.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA (mutual TLS).
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Certs {
    /// The `redis-server` arguments of a server with these certificates that requires client
    /// certificates (mutual TLS).
    pub fn server_args(&self) -> String {
        format!(
            "--tls-cert-file '{}' --tls-key-file '{}' --tls-ca-cert-file '{}' --tls-auth-clients yes",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca.display()
        )
    }

    /// The CA and the client certificate, as redis-rs takes them.
    pub fn redis_certs(&self) -> redis::TlsCertificates {
        let read = |p: &PathBuf| std::fs::read(p).expect("a certificate file");
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read(&self.client_cert),
                client_key: read(&self.client_key),
            }),
            root_cert: Some(read(&self.ca)),
        }
    }
}

/// Makes a CA named `name` and certificates it signs, in a fresh directory under the system's
/// temporary directory.
pub fn make(name: &str) -> Result<Certs, String> {
    let dir =
        std::env::temp_dir().join(format!("cache-runtime-certs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    let days = "2";
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            days,
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth, clientAuth\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage = clientAuth\n")
        .map_err(|e| e.to_string())?;
    for who in ["server", "client"] {
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={name} {who}"),
            ],
        )?;
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.crt"),
                "-days",
                days,
                "-extfile",
                &format!("{who}.ext"),
            ],
        )?;
    }
    Ok(Certs {
        ca: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    })
}
