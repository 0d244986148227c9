//! systemd's readiness protocol (`sd_notify(3)`): one datagram to `$NOTIFY_SOCKET`. The
//! capture unit is `Type=notify`, so the dump starts only once the probes are attached.
use std::{
    ffi::OsStr,
    io,
    os::{
        linux::net::SocketAddrExt as _,
        unix::net::{SocketAddr, UnixDatagram},
    },
};

/// Sends `state` (e.g. `READY=1\nSTATUS=...`) to the service manager. `Ok(false)` when not
/// started by one (no `$NOTIFY_SOCKET`).
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    notify_socket(&path, state)?;
    Ok(true)
}

/// Sends `state` to the socket `$NOTIFY_SOCKET` names: a path, or `@name` for an abstract
/// socket.
pub fn notify_socket(socket_name: &OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = socket_name.as_encoded_bytes().strip_prefix(b"@") {
        let addr = SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), socket_name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        notify_socket(path.as_os_str(), "READY=1\nSTATUS=attached").unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=attached");
    }

    #[test]
    fn readiness_reaches_an_abstract_socket() {
        let name = format!("kdump-dma-observer-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        notify_socket(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_silence() {
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_socket(dir.path().join("absent").as_os_str(), "READY=1").is_err());
    }
}
