//! One benchmarked server process: spawned with its output in a log file,
//! signalled directly (no `kill` subprocess, so the signal's time is the
//! syscall's), and killed when dropped so no run leaves a process behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

/// A child process and where its output goes.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Process> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Process {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the process's output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`).
    pub fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        let pid = self.pid().context("the process is not running")?;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is
        // our own child's, not yet reaped, so it cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGKILLs the process and reaps it (its sockets are closed once this
    /// returns).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL")?;
            child.wait().context("reaping a killed process")?;
        }
        Ok(())
    }

    /// Replaces a killed process with a new one from `command`.
    pub fn respawn(&mut self, command: Command) -> anyhow::Result<()> {
        self.kill()?;
        *self = Process::spawn(command, &self.log)?;
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
