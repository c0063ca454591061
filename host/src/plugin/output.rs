//! A plugin's stdout and stderr: captured line by line into the node's log,
//! tagged with the plugin and the stream, and held to the same log limits
//! as `leader-api.log` ([`PluginUsage::admit_log_line`]). Never the node's
//! own file descriptors: a plugin cannot fill the node's terminal or
//! journal, and a write never blocks (a full line buffer is flushed as a
//! line of its own).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::quota::PluginUsage;

/// Bytes of an unfinished line kept before it is logged anyway.
const LINE_BUFFER: usize = 8 << 10;

/// Where one stream of one plugin instance goes.
#[derive(Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    stream: &'static str,
    node: String,
    plugin: String,
    usage: Arc<PluginUsage>,
    pending: Vec<u8>,
}

impl CapturedOutput {
    /// Captures `stream` ("stdout" or "stderr") of `plugin` on `node`.
    pub fn new(
        stream: &'static str,
        node: &str,
        plugin: &str,
        usage: Arc<PluginUsage>,
    ) -> CapturedOutput {
        CapturedOutput {
            inner: Arc::new(Mutex::new(Sink {
                stream,
                node: node.to_string(),
                plugin: plugin.to_string(),
                usage,
                pending: Vec::new(),
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut sink = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sink.write(bytes);
    }
}

impl Sink {
    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    self.push(&bytes[..end]);
                    self.emit();
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.push(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// Adds to the unfinished line, logging it whenever the buffer fills.
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = LINE_BUFFER - self.pending.len();
            let take = room.min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == LINE_BUFFER {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        PluginUsage::bump(&self.usage.output_lines);
        if let Some(line) = self.usage.admit_log_line(&self.node, &self.plugin, &line) {
            tracing::info!(node = %self.node, plugin = %self.plugin, stream = self.stream, "{line}");
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        CapturedOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(LINE_BUFFER)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        CapturedOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn lines_are_split_joined_and_long_ones_flushed_in_pieces() {
        let usage = Arc::new(PluginUsage::default());
        let out = CapturedOutput::new("stderr", "n1", "p", usage.clone());
        out.write(b"one\ntw");
        out.write(b"o\nthree");
        assert_eq!(usage.output_lines.load(Ordering::Relaxed), 2);
        out.write(&vec![b'x'; 3 * LINE_BUFFER]);
        assert_eq!(
            usage.output_lines.load(Ordering::Relaxed),
            5,
            "a full buffer is a line"
        );
        drop(out);
        assert_eq!(
            usage.output_lines.load(Ordering::Relaxed),
            6,
            "the rest at the end"
        );
    }
}
