//! A throwaway certificate authority made with the `openssl` CLI, for the TLS tests and the
//! TLS bench case: a P-256 CA and leaf certificates it signs, valid for a few days, for
//! 127.0.0.1 and `localhost`, usable by servers and clients.

use std::path::Path;
use std::process::Command;

/// Whether the `openssl` CLI runs (`scripts/setup.sh` installs it).
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs `openssl ARGS` in `dir`.
///
/// # Panics
/// If openssl does not run or fails: the caller checked [`openssl_available`].
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The key-making options every certificate here shares: a new P-256 key, unencrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// Makes `ca.pem`/`ca.key` in `dir`, and for each name in `leaves` `<name>.pem`/`<name>.key`
/// signed by it (serials 1, 2, …).
pub fn make_pki(dir: &Path, leaves: &[&str]) {
    let mut ca = vec!["req", "-x509"];
    ca.extend(EC_KEY);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "3"]);
    ca.extend(["-subj", "/CN=gyges test CA"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write the extensions");
    for (index, name) in leaves.iter().enumerate() {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let subject = format!("/CN={name}");
        let mut request = vec!["req"];
        request.extend(EC_KEY);
        request.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        openssl(dir, &request);
        let serial = (index + 1).to_string();
        let mut sign = vec![
            "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
        ];
        sign.extend(["-set_serial", &serial, "-days", "3", "-extfile", "leaf.ext"]);
        sign.extend(["-out", &pem]);
        openssl(dir, &sign);
    }
}
