//! Ctrl-C and SIGTERM. The first one asks the run to end: the load stops, the nodes are
//! stopped, and what was measured is written. A second one exits at once (the nodes still get
//! SIGTERM from the kernel, see `launcher.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Set by the first signal; read between the runs of a sweep.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Exit code after an interruption (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Whether a signal asked the harness to stop.
#[derive(Clone)]
pub struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM on the current actix system.
    pub fn install() -> Interrupt {
        let (tx, rx) = watch::channel(SIGNALLED.load(Ordering::SeqCst));
        actix_rt::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::error!("cannot install signal handlers");
                return std::future::pending::<()>().await;
            };
            for count in 1.. {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if count > 1 {
                    eprintln!("interrupted twice; exiting now");
                    std::process::exit(EXIT_INTERRUPTED);
                }
                eprintln!("interrupted; stopping the load and the nodes (again to exit now)");
                SIGNALLED.store(true, Ordering::SeqCst);
                let _ = tx.send(true);
            }
        });
        Interrupt(rx)
    }

    /// True once a signal arrived, in this run or an earlier one of the same process.
    pub fn is_set(&self) -> bool {
        *self.0.borrow() || SIGNALLED.load(Ordering::SeqCst)
    }

    /// Resolves when a signal arrives (at once if one already did).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// True once any signal asked the harness to stop.
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}
