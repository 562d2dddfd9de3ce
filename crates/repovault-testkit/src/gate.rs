//! A gate in front of a server: a TCP forwarder on loopback that accepts connections but holds
//! them until the test opens it. A client (a backup fetching from a git server) can so be held
//! at a known point while the test does something else, without timing guesses.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// No connection is held longer than this, and the gate stops accepting after it: a test that
/// forgets to open it still ends.
const LIMIT: Duration = Duration::from_secs(300);

pub struct Gate {
    port: u16,
    open: Arc<(Mutex<bool>, Condvar)>,
    arrived: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
}

impl Gate {
    /// Forwards 127.0.0.1:<new port> to 127.0.0.1:`target`, closed.
    pub fn start(target: u16) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, arrived) = mpsc::channel();
        let (open2, stop2) = (open.clone(), stop.clone());
        thread::spawn(move || {
            let started = std::time::Instant::now();
            while !stop2.load(Ordering::Relaxed) && started.elapsed() < LIMIT {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = tx.send(());
                        let open = open2.clone();
                        thread::spawn(move || forward(client, target, &open));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self {
            port,
            open,
            arrived,
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (at most `timeout`) until a client has connected and is being held.
    pub fn wait_for_client(&self, timeout: Duration) -> bool {
        self.arrived.recv_timeout(timeout).is_ok()
    }

    /// Lets every held and future connection through.
    pub fn open(&self) {
        let (lock, cv) = &*self.open;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.open();
    }
}

fn forward(client: TcpStream, target: u16, open: &(Mutex<bool>, Condvar)) {
    let (lock, cv) = open;
    let guard = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (guard, _) = cv
        .wait_timeout_while(guard, LIMIT, |is_open| !*is_open)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*guard {
        return;
    }
    drop(guard);
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        let mut client = client;
        let mut server = server;
        let _ = io::copy(&mut client, &mut server);
        let _ = server.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut s2, &mut c2);
    let _ = c2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
