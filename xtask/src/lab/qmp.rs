//! A QMP client (QEMU Machine Protocol: one JSON object per line over a unix socket): the
//! greeting and `qmp_capabilities` handshake, `human-monitor-command` (AER injection has no
//! native QMP command) and `quit`. Asynchronous `{"event": ...}` messages are kept, not mixed
//! up with replies.
use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// How long one command may take to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events received while waiting for replies (`RESET`, `SHUTDOWN`, ...), in order.
    pub events: Vec<Value>,
}

impl Qmp {
    /// Connects to QEMU's `-qmp unix:PATH,server=on,wait=off` socket, retrying until `deadline`
    /// (QEMU creates it a moment after it starts), and does the capabilities handshake.
    pub(crate) fn connect(path: &Path, deadline: Instant) -> anyhow::Result<Self> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("connecting to QEMU's QMP socket {}", path.display())
                    });
                }
            }
        };
        Self::handshake(stream)
    }

    /// Reads the greeting, then negotiates capabilities (none).
    pub(crate) fn handshake(stream: UnixStream) -> anyhow::Result<Self> {
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let writer = stream.try_clone().context("cloning the QMP socket")?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message().context("reading the QMP greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("QEMU's QMP greeting is not a greeting: {greeting}");
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Runs `command`; returns its `return` value, or fails with QEMU's `error`.
    pub(crate) fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = json!({ "execute": command });
        if let Some(args) = arguments {
            request["arguments"] = args;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .with_context(|| format!("sending QMP {request}"))?;
        loop {
            let message = self
                .read_message()
                .with_context(|| format!("waiting for the reply to QMP {request}"))?;
            if message.get("event").is_some() {
                self.events.push(message);
                continue;
            }
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                bail!(
                    "QMP {request} failed: {} ({})",
                    error["desc"].as_str().unwrap_or("no description"),
                    error["class"].as_str().unwrap_or("?")
                );
            }
            bail!("unexpected QMP message in reply to {request}: {message}");
        }
    }

    /// Runs an HMP command line through `human-monitor-command`; returns its text output. HMP
    /// reports many errors only as text, so output starting with `Error` is an error here.
    pub(crate) fn hmp(&mut self, command_line: &str) -> anyhow::Result<String> {
        let out = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        let text = out.as_str().unwrap_or_default().trim().to_owned();
        if text.starts_with("Error") {
            bail!("HMP `{command_line}` failed: {text}");
        }
        Ok(text)
    }

    /// Asks QEMU to exit.
    pub(crate) fn quit(&mut self) -> anyhow::Result<()> {
        self.execute("quit", None).map(|_| ())
    }

    fn read_message(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("reading from the QMP socket")?;
        if n == 0 {
            bail!("QEMU closed the QMP socket");
        }
        serde_json::from_str(&line)
            .with_context(|| format!("QMP sent a line that is not JSON: {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    /// A fake QEMU on the other end of a socket pair: sends the greeting, then answers each
    /// request line with the scripted lines, recording what it received.
    fn fake_qemu(script: Vec<Vec<&'static str>>) -> (Qmp, thread::JoinHandle<Vec<Value>>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || {
            let mut out = theirs.try_clone().unwrap();
            let mut reader = BufReader::new(theirs);
            out.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 10, \"minor\": 0, \"micro\": 2}}, \"capabilities\": [\"oob\"]}}\r\n").unwrap();
            let mut received = Vec::new();
            for replies in script {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                received.push(serde_json::from_str::<Value>(&line).unwrap());
                for r in replies {
                    // The client may close first: after `quit` it stops reading once it has the
                    // reply, and a trailing event (`SHUTDOWN`) then meets a closed socket (EPIPE),
                    // as with a real QEMU. That is the end of the conversation, not a failure.
                    if out.write_all(format!("{r}\r\n").as_bytes()).is_err() {
                        return received;
                    }
                }
            }
            received
        });
        let qmp = Qmp::handshake(ours).unwrap();
        (qmp, handle)
    }

    #[test]
    fn handshake_hmp_events_and_quit() {
        let (mut qmp, fake) = fake_qemu(vec![
            vec![r#"{"return": {}}"#],
            vec![
                r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET"}"#,
                r#"{"return": "OK id: vnet1 root bus: 0000:00, bus: 2 devfn: 0.0\r\n"}"#,
            ],
            vec![r#"{"return": "Error: -c is only valid with numeric error status\r\n"}"#],
            vec![r#"{"error": {"class": "GenericError", "desc": "no such device"}}"#],
            vec![r#"{"return": {}}"#, r#"{"event": "SHUTDOWN"}"#],
        ]);
        let out = qmp.hmp("pcie_aer_inject_error vnet1 POISON_TLP").unwrap();
        assert!(out.starts_with("OK id: vnet1"), "{out}");
        assert_eq!(qmp.events.len(), 1);
        assert_eq!(qmp.events[0]["event"], "RESET");
        let err = qmp
            .hmp("pcie_aer_inject_error -c vnet1 BAD_TLP")
            .unwrap_err();
        assert!(err.to_string().contains("-c is only valid"), "{err}");
        let err = qmp.execute("device_del", None).unwrap_err();
        assert!(
            err.to_string().contains("no such device (GenericError)"),
            "{err}"
        );
        qmp.quit().unwrap();
        drop(qmp);
        let received = fake.join().unwrap();
        assert_eq!(received[0], json!({"execute": "qmp_capabilities"}));
        assert_eq!(
            received[1],
            json!({"execute": "human-monitor-command", "arguments": {"command-line": "pcie_aer_inject_error vnet1 POISON_TLP"}})
        );
        assert_eq!(received[4], json!({"execute": "quit"}));
    }

    #[test]
    fn a_closed_socket_is_an_error_not_a_hang() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let err = Qmp::handshake(ours).err().unwrap();
        assert!(
            format!("{err:#}").contains("closed the QMP socket"),
            "{err:#}"
        );
    }
}
