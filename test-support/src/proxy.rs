//! A TCP relay between two Lightning peers that a scenario can tell to hold what one side
//! sends: the bytes stay with the relay (not lost, not delivered) until released, and are
//! dropped with their connection if it closes first. So a test can let a node send its part
//! of a commitment dance and keep it from hearing the answer, then kill it: the state
//! channel-signer.md §1.5.3 reproduces.
//!
//! The relay sees only Noise ciphertext; it never reads a message, it only times bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a held side looks whether it was released, and a listener whether to stop.
const LOOK: Duration = Duration::from_millis(20);

/// The relay; it stops accepting when dropped, and its connections end with their peers.
pub struct Proxy {
    /// Where the side that dials connects.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Hold what the dialling side sends toward the target.
    hold_to_target: AtomicBool,
    /// Bytes held now, over every connection.
    held: AtomicUsize,
    stop: AtomicBool,
}

impl Proxy {
    /// Relays each connection made to [`Proxy::addr`] to `target`, on loopback.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, _)) => relay(inbound, target, s.clone()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(LOOK),
                    Err(_) => std::thread::sleep(LOOK),
                }
            }
        });
        Proxy { addr, shared }
    }

    /// Holds (`true`) or releases (`false`) what the dialling side sends to the target.
    pub fn hold_toward_target(&self, on: bool) {
        self.shared.hold_to_target.store(on, Ordering::SeqCst);
    }

    /// How many bytes are held now.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection: dial `target`, then pump both ways; either side closing closes both.
fn relay(inbound: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    let _ = inbound.set_nonblocking(false);
    let Ok(outbound) = TcpStream::connect(target) else {
        // The target is down (a node-host restarting): the dialler tries again later.
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) else {
        return;
    };
    std::thread::spawn(move || pump(inbound, outbound, Some(shared)));
    std::thread::spawn(move || pump(out2, in2, None));
}

/// Copies `from` to `to`; with `hold`, keeps what it reads while the relay holds.
fn pump(mut from: TcpStream, mut to: TcpStream, hold: Option<Arc<Shared>>) {
    let _ = from.set_read_timeout(Some(LOOK));
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let held = |s: &Option<Arc<Shared>>| {
        s.as_ref()
            .is_some_and(|s| s.hold_to_target.load(Ordering::SeqCst))
    };
    let forget = |kept: &mut Vec<u8>, s: &Option<Arc<Shared>>| {
        if let Some(s) = s {
            s.held.fetch_sub(kept.len(), Ordering::SeqCst);
        }
        kept.clear();
    };
    loop {
        if !kept.is_empty() && !held(&hold) {
            let ok = to.write_all(&kept).is_ok();
            forget(&mut kept, &hold);
            if !ok {
                break;
            }
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if held(&hold) => {
                kept.extend_from_slice(&buf[..n]);
                if let Some(s) = &hold {
                    s.held.fetch_add(n, Ordering::SeqCst);
                }
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    // What was held dies with its connection, as it would in a killed node's socket.
    forget(&mut kept, &hold);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
