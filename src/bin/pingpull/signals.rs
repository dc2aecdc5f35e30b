//! The signals that stop a command gracefully: Ctrl-C (SIGINT) and SIGTERM, which is what
//! `docker stop`, Kubernetes and systemd send. Both are handled alike.

use std::future::Future;
use std::io;

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopSignal {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopSignal {
    /// The signal's name, as a log or a summary says it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// 128 plus the signal's number: the status a shell gives a process the signal
    /// ended, so a script tells "stopped" from "failed" (1).
    pub(crate) fn exit_status(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

/// Resolves with the first SIGINT or SIGTERM. The handlers are installed by this call,
/// not on first poll: call it before announcing anything (a base URL), so a signal sent
/// as soon as it is printed is not missed. Once installed they stay: a signal no longer
/// ends the process at once, the command decides.
///
/// # Errors
///
/// When the handlers cannot be installed.
pub(crate) fn stop_signal() -> io::Result<impl Future<Output = StopSignal> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => StopSignal::Interrupt,
                _ = terminate.recv() => StopSignal::Terminate,
            }
        })
    }
    #[cfg(not(unix))]
    {
        let mut interrupt = tokio::signal::windows::ctrl_c()?;
        Ok(async move {
            let _ = interrupt.recv().await;
            StopSignal::Interrupt
        })
    }
}
