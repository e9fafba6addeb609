//! A fault-injecting TCP proxy: tests put it between the hub and the broker
//! or the database, then cut and restore the path without touching the
//! shared services.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    /// Connections accepted while mute, held open until the proxy is dropped.
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: AbortHandle,
}

/// What the proxy does with a new connection.
const FORWARD: u8 = 0;
/// Closes it at once: the path is cut.
const REFUSE: u8 = 1;
/// Accepts it and says nothing, ever: a peer that hangs.
const MUTE: u8 = 2;

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (mode, links, held) = (mode.clone(), links.clone(), held.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    match mode.load(Ordering::SeqCst) {
                        REFUSE => {
                            drop(inbound);
                            continue;
                        }
                        MUTE => {
                            held.lock().unwrap().push(inbound);
                            continue;
                        }
                        _ => {}
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            })
            .abort_handle()
        };
        Proxy {
            addr,
            mode,
            links,
            held,
            accept,
        }
    }

    /// The broker's URL through this proxy (when it forwards to RabbitMQ).
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        self.drop_links();
    }

    /// Accepts new connections and never answers on them (nor closes them)
    /// until [`Proxy::restore`]; open connections stay as they are.
    pub fn mute(&self) {
        self.mode.store(MUTE, Ordering::SeqCst);
    }

    /// Drops every open connection but accepts new ones at once.
    pub fn drop_links(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Forwards new connections again. Those accepted while mute stay
    /// silent and open.
    pub fn restore(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_links();
        self.held.lock().unwrap().clear();
    }
}
