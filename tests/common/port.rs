//! Loopback ports chosen by a test before the server that binds them starts.

/// A loopback port free for both UDP and TCP at the time of asking.
///
/// It is chosen below the kernel's ephemeral range, so a port the kernel
/// hands out for `bind(0)` (the other listeners of every test server,
/// client sockets) cannot take it between this call and the server
/// binding it; `bind(0)` then `drop` made that race possible.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // A machine whose ephemeral range starts very low leaves no room below
    // it: pick anywhere above 1024 then.
    let range = if low > 11000 {
        10000..low
    } else {
        1025..u16::MAX
    };
    loop {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), range.clone());
        let Ok(_udp) = std::net::UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
