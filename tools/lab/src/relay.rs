//! The UDP relay between providers. Every node's peer address for another provider points at
//! a relay port of its own (one per ordered pair of providers); the relay forwards datagrams
//! to the real node and back, and applies the link's faults on the way: partition, loss,
//! delay and jitter, duplication, reordering. Nothing leaves loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// The faults of one link (both directions).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct LinkFaults {
    /// Every datagram dropped.
    pub partitioned: bool,
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Added delay.
    pub delay_ms: u64,
    /// Uniformly random extra delay up to this.
    pub jitter_ms: u64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Probability a datagram is held back behind later ones.
    pub reorder: f64,
}

/// Counters of one link.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LinkStats {
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
}

/// A seeded random number generator (splitmix64): the same seed, the same faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

struct Link {
    faults: LinkFaults,
    stats: LinkStats,
    rng: Rng,
}

/// What to do with one datagram.
enum Fate {
    Drop,
    Send { delay: Duration, copies: u32 },
}

impl Link {
    fn fate(&mut self) -> Fate {
        let f = &self.faults;
        if f.partitioned || (f.loss > 0.0 && self.rng.unit() < f.loss) {
            self.stats.dropped += 1;
            return Fate::Drop;
        }
        let mut delay = f.delay_ms + self.rng.below(f.jitter_ms + 1);
        if f.reorder > 0.0 && self.rng.unit() < f.reorder {
            // Held back long enough for the next few datagrams to pass it.
            delay += 5 + 2 * f.jitter_ms;
        }
        let copies = if f.duplicate > 0.0 && self.rng.unit() < f.duplicate {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        if delay > 0 {
            self.stats.delayed += 1;
        }
        self.stats.forwarded += 1;
        Fate::Send {
            delay: Duration::from_millis(delay),
            copies,
        }
    }
}

type Links = Arc<Mutex<HashMap<(String, String), Link>>>;

/// Where a provider's first node listens now.
pub type Target = Arc<dyn Fn(&str) -> Option<SocketAddr> + Send + Sync>;

/// The relay: its ports and the faults of every link.
pub struct Relay {
    links: Links,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// (from, to) → the relay address `from` uses to reach `to`.
    pub ports: HashMap<(String, String), SocketAddr>,
}

fn key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl Relay {
    /// Binds one port per ordered pair of `domains`; `target(d)` says where provider `d`'s
    /// first node listens (looked up for every datagram, so a node may move).
    pub async fn start(domains: &[String], seed: u64, target: Target) -> std::io::Result<Self> {
        let links: Links = Arc::new(Mutex::new(HashMap::new()));
        let mut ports = HashMap::new();
        let mut tasks = Vec::new();
        let mut n = 0u64;
        for a in domains {
            for b in domains {
                if a == b {
                    continue;
                }
                n += 1;
                links
                    .lock()
                    .map_err(poisoned)?
                    .entry(key(a, b))
                    .or_insert(Link {
                        faults: LinkFaults::default(),
                        stats: LinkStats::default(),
                        rng: Rng::new(seed.wrapping_add(n)),
                    });
                let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
                ports.insert((a.clone(), b.clone()), sock.local_addr()?);
                tasks.push(tokio::spawn(forward(
                    sock,
                    key(a, b),
                    b.clone(),
                    links.clone(),
                    target.clone(),
                )));
            }
        }
        Ok(Self {
            links,
            tasks,
            ports,
        })
    }

    /// Sets the faults of the link between `a` and `b`.
    pub fn set(&self, a: &str, b: &str, f: LinkFaults) {
        if let Ok(mut l) = self.links.lock()
            && let Some(link) = l.get_mut(&key(a, b))
        {
            link.faults = f;
        }
    }

    /// The faults of the link between `a` and `b`.
    pub fn get(&self, a: &str, b: &str) -> LinkFaults {
        self.links
            .lock()
            .ok()
            .and_then(|l| l.get(&key(a, b)).map(|x| x.faults.clone()))
            .unwrap_or_default()
    }

    /// Ends every fault of every link.
    pub fn heal_all(&self) {
        if let Ok(mut l) = self.links.lock() {
            for link in l.values_mut() {
                link.faults = LinkFaults::default();
            }
        }
    }

    /// Every link's counters.
    pub fn stats(&self) -> Vec<((String, String), LinkStats)> {
        let mut v: Vec<_> = self
            .links
            .lock()
            .map(|l| {
                l.iter()
                    .map(|(k, x)| (k.clone(), x.stats.clone()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn poisoned<T>(_: T) -> std::io::Error {
    std::io::Error::other("relay state poisoned")
}

fn fate_of(links: &Links, link: &(String, String)) -> Fate {
    match links.lock() {
        Ok(mut l) => l.get_mut(link).map_or(
            Fate::Send {
                delay: Duration::ZERO,
                copies: 1,
            },
            Link::fate,
        ),
        Err(_) => Fate::Drop,
    }
}

async fn send_later(sock: Arc<UdpSocket>, data: Vec<u8>, to: SocketAddr, fate: Fate) {
    let Fate::Send { delay, copies } = fate else {
        return;
    };
    let go = async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for _ in 0..copies {
            let _ = sock.send_to(&data, to).await;
        }
    };
    if delay.is_zero() {
        go.await;
    } else {
        tokio::spawn(go);
    }
}

/// One relay port: datagrams from a node's QUIC endpoint go out through an upstream socket
/// of that endpoint's own (so that the target sees one peer per endpoint), answers come back
/// through the port.
async fn forward(
    port: Arc<UdpSocket>,
    link: (String, String),
    to: String,
    links: Links,
    target: Target,
) {
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    // The answer tasks end with this one (a JoinSet aborts its tasks when dropped).
    let mut answers = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = port.recv_from(&mut buf).await else {
            continue;
        };
        let Some(dest) = target(&to) else {
            continue;
        };
        let up = match upstream.get(&from) {
            Some(u) => u.clone(),
            None => {
                let Ok(u) = UdpSocket::bind("127.0.0.1:0").await else {
                    continue;
                };
                let u = Arc::new(u);
                upstream.insert(from, u.clone());
                // Answers from the target back to the node, through the port.
                let (port2, links2, link2, u2) =
                    (port.clone(), links.clone(), link.clone(), u.clone());
                answers.spawn(async move {
                    let mut b = vec![0u8; 65_536];
                    while let Ok((m, _)) = u2.recv_from(&mut b).await {
                        let fate = fate_of(&links2, &link2);
                        send_later(port2.clone(), b[..m].to_vec(), from, fate).await;
                    }
                });
                u
            }
        };
        let fate = fate_of(&links, &link);
        send_later(up, buf[..n].to_vec(), dest, fate).await;
    }
}
