//! `sd_notify::notify` reads `$NOTIFY_SOCKET`. Changing the environment races every other
//! thread of a test binary, so this test has a binary of its own, with this one test.
use std::os::unix::net::UnixDatagram;

#[test]
fn notify_follows_notify_socket_and_is_silent_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&path).unwrap();
    // SAFETY: the only test, and the only thread, of this binary.
    unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
    assert!(observer::sd_notify::notify("READY=1\nSTATUS=attached").unwrap());
    let mut buf = [0u8; 64];
    let n = manager.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=attached");
    // SAFETY: as above.
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    assert!(
        !observer::sd_notify::notify("READY=1").unwrap(),
        "no manager, nothing sent"
    );
}
