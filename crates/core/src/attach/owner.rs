//! Who owns a TCP socket on this computer, from the kernel's tables (`/proc/net/tcp` and
//! `/proc/net/tcp6`, as this process's network namespace shows them): the listener a plain
//! `ws://` connection to a loopback gateway would reach, and the socket that accepted it. Pure:
//! the tables are read at the edge ([`super::transport`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::net::canonical;

/// `st` of a listening socket.
pub const LISTEN: u8 = 0x0A;
/// `st` of a closed connection the kernel keeps a while; its line shows uid 0 whoever owned it,
/// so it never vouches for anything.
const TIME_WAIT: u8 = 0x06;

/// One line of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    /// The socket's owner (as this process's user namespace names it).
    pub uid: u32,
    /// The socket's inode: `/proc/<pid>/fd/*` of the process holding it link to
    /// `socket:[<inode>]`. 0 for sockets no process holds (TIME_WAIT, not yet accepted).
    pub inode: u64,
}

/// The entries of one table; the header and lines that do not parse are left out.
///
/// Columns: `sl local_address rem_address st tx:rx tr:when retrnsmt uid …`. Addresses are the
/// kernel's in-memory words printed as hex (so 127.0.0.1 is `0100007F` on a little-endian
/// machine), ports plain hex.
pub fn parse_table(text: &str) -> Vec<SocketEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(SocketEntry {
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                uid: f.get(7)?.parse().ok()?,
                inode: f.get(9).and_then(|i| i.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    if port.len() != 4 || !port.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(SocketAddr::new(ip, u16::from_str_radix(port, 16).ok()?))
}

/// The listeners a connection to `to` could reach: bound to its address, or to the wildcard
/// address. An IPv6 socket on `::` may take IPv4 connections too (unless it is IPv6-only, which
/// the table does not say), so it counts for both.
pub fn listeners_for(entries: &[SocketEntry], to: SocketAddr) -> Vec<SocketEntry> {
    let want = canonical(to.ip());
    entries
        .iter()
        .filter(|e| e.state == LISTEN && e.local.port() == to.port())
        .filter(|e| {
            let at = canonical(e.local.ip());
            at == want
                || match at {
                    IpAddr::V4(a) => a.is_unspecified() && want.is_ipv4(),
                    IpAddr::V6(a) => a.is_unspecified(),
                }
        })
        .copied()
        .collect()
}

/// The listeners that keep a gateway from binding `bind`: on its port, at its address or at
/// the wildcard, or anywhere on the port when `bind` is the wildcard itself.
pub fn holding(entries: &[SocketEntry], bind: SocketAddr) -> Vec<SocketEntry> {
    let want = canonical(bind.ip());
    entries
        .iter()
        .filter(|e| e.state == LISTEN && e.local.port() == bind.port())
        .filter(|e| {
            let at = canonical(e.local.ip());
            at == want || at.is_unspecified() || want.is_unspecified()
        })
        .copied()
        .collect()
}

/// The owner of the socket that accepted (or is accepting) the connection from `local` to
/// `peer`: the other end, whose local address is `peer` and remote address `local`. A
/// connection not yet accepted shows its listener's owner, as the kernel prints it.
pub fn accepting_uid(entries: &[SocketEntry], local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let same = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
    };
    entries
        .iter()
        .find(|e| {
            e.state != LISTEN
                && e.state != TIME_WAIT
                && same(e.local, peer)
                && same(e.remote, local)
        })
        .map(|e| e.uid)
}

/// What the owner of a socket means for sending OpenClaw's token through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This user, or root (who can read this user's files anyway).
    Trusted,
    /// Another user: the token must not go there.
    Other(u32),
}

/// `uid` judged for a process running as `me`.
pub fn judge(uid: u32, me: u32) -> Owner {
    if uid == me || uid == 0 {
        Owner::Trusted
    } else {
        Owner::Other(uid)
    }
}

/// Where a loopback connection goes, given the listeners: the first of `candidates` something
/// listens for (as connecting would pick it), with the owners of everything that could take
/// that connection. `None` when nothing listens for any of them.
pub fn destination(
    entries: &[SocketEntry],
    candidates: &[SocketAddr],
) -> Option<(SocketAddr, Vec<u32>)> {
    candidates.iter().find_map(|&to| {
        let owners: Vec<u32> = listeners_for(entries, to).iter().map(|e| e.uid).collect();
        (!owners.is_empty()).then_some((to, owners))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // What a little-endian kernel prints (every machine ClawPair is built for): a gateway of
    // uid 1000 on 127.0.0.1:18789, one of uid 65534 on 0.0.0.0:8080, root's sshd on 0.0.0.0:22,
    // a connection to 18789 not yet accepted, and one in TIME_WAIT.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 53471 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 53472 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   3: 0100007F:4965 0100007F:929E 01 00000000:00000000 00:00000000 00000000  1000        0 0 1 0000000000000000 20 0 0 10 -1
   4: 0100007F:929E 0100007F:4965 01 00000000:00000000 00:00000000 00000000     0        0 53473 2 0000000000000000 20 0 0 10 -1
   5: 0100007F:1F90 0100007F:9000 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";

    // IPv6: a dual-stack listener of uid 65534 on [::]:34199 with a connection from 127.0.0.1
    // (IPv4-mapped) not yet accepted, and one of uid 1000 on [::1]:18790.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:8597 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000 65534        0 54369 2 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:8597 0000000000000000FFFF00000100007F:929F 01 00000000:00000000 00:00000000 00000000 65534        0 0 1 0000000000000000 20 0 0 10 -1
   2: 00000000000000000000000001000000:4966 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 54370 2 0000000000000000 100 0 0 10 0
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn all() -> Vec<SocketEntry> {
        let mut v = parse_table(TCP);
        v.extend(parse_table(TCP6));
        v
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn the_kernels_tables_parse_with_addresses_ports_states_and_owners() {
        let v4 = parse_table(TCP);
        assert_eq!(v4.len(), 6, "the header is not an entry");
        assert_eq!(
            v4[0],
            SocketEntry {
                local: sa("127.0.0.1:18789"),
                remote: sa("0.0.0.0:0"),
                state: LISTEN,
                uid: 1000,
                inode: 53471,
            }
        );
        assert_eq!(v4[1].local, sa("0.0.0.0:8080"));
        assert_eq!(v4[1].uid, 65534);
        let v6 = parse_table(TCP6);
        assert_eq!(v6.len(), 3);
        assert_eq!(v6[0].local, sa("[::]:34199"));
        assert_eq!(v6[1].local, sa("[::ffff:127.0.0.1]:34199"));
        assert_eq!(v6[2].local, sa("[::1]:18790"));
        assert_eq!(v6[2].uid, 1000);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn what_holds_a_port_is_found_at_the_address_or_the_wildcard() {
        let e = all();
        let inodes =
            |bind: &str| -> Vec<u64> { holding(&e, sa(bind)).iter().map(|h| h.inode).collect() };
        assert_eq!(inodes("127.0.0.1:18789"), vec![53471]);
        assert_eq!(
            inodes("0.0.0.0:18789"),
            vec![53471],
            "the wildcard meets every address"
        );
        assert_eq!(
            inodes("192.168.1.5:8080"),
            vec![53472],
            "a wildcard listener holds every address"
        );
        assert_eq!(inodes("[::1]:18790"), vec![54370]);
        assert_eq!(inodes("127.0.0.1:34199"), vec![54369], "dual-stack [::]");
        assert!(inodes("127.0.0.1:18800").is_empty());
    }

    #[test]
    fn lines_that_are_not_entries_are_left_out() {
        let junk = "garbage\n 0: 0100007F:4965\n 1: 0100007G:4965 00000000:0000 0A 0:0 0:0 0 1000\n 2: 0100007F:4965 00000000:0000 0A 0:0 0:0 0 -1\n 3: 01007F:4965 00000000:0000 0A 0:0 0:0 0 1000\n";
        assert_eq!(parse_table(junk), vec![]);
        assert_eq!(parse_table(""), vec![]);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_loopback_connection_reaches_the_listener_on_its_address_or_the_wildcard() {
        let e = all();
        // Bound to 127.0.0.1 itself.
        let l = listeners_for(&e, sa("127.0.0.1:18789"));
        assert_eq!(l.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![1000]);
        // 0.0.0.0 takes 127.0.0.1 and every other 127.x address.
        assert_eq!(listeners_for(&e, sa("127.0.0.1:8080"))[0].uid, 65534);
        assert_eq!(listeners_for(&e, sa("127.0.0.5:8080"))[0].uid, 65534);
        // 127.0.0.1 does not take 127.0.0.2.
        assert!(listeners_for(&e, sa("127.0.0.2:18789")).is_empty());
        // A dual-stack [::] takes IPv4 and IPv6 alike; [::1] only IPv6.
        assert_eq!(listeners_for(&e, sa("127.0.0.1:34199"))[0].uid, 65534);
        assert_eq!(listeners_for(&e, sa("[::1]:34199"))[0].uid, 65534);
        assert_eq!(listeners_for(&e, sa("[::1]:18790"))[0].uid, 1000);
        assert!(listeners_for(&e, sa("127.0.0.1:18790")).is_empty());
        // 0.0.0.0 does not take IPv6; connections and TIME_WAIT are no listeners.
        assert!(listeners_for(&e, sa("[::1]:8080")).is_empty());
        assert!(listeners_for(&e, sa("127.0.0.1:37022")).is_empty());
        assert!(listeners_for(&e, sa("127.0.0.1:1")).is_empty());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn the_destination_is_the_first_address_something_listens_for_with_every_owner() {
        let e = all();
        // `localhost`: 127.0.0.1 first, as connecting would try it.
        let (to, owners) = destination(&e, &[sa("127.0.0.1:18790"), sa("[::1]:18790")]).unwrap();
        assert_eq!((to, owners), (sa("[::1]:18790"), vec![1000]));
        let (to, owners) = destination(&e, &[sa("127.0.0.1:18789"), sa("[::1]:18789")]).unwrap();
        assert_eq!((to, owners), (sa("127.0.0.1:18789"), vec![1000]));
        assert_eq!(destination(&e, &[sa("127.0.0.1:9"), sa("[::1]:9")]), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn the_accepting_end_of_a_connection_shows_its_owner_in_either_table() {
        let e = all();
        // Our end is 127.0.0.1:37534 → 127.0.0.1:18789; the other end belongs to uid 1000.
        assert_eq!(
            accepting_uid(&e, sa("127.0.0.1:37534"), sa("127.0.0.1:18789")),
            Some(1000)
        );
        // Accepted by a dual-stack socket: listed in tcp6 with IPv4-mapped addresses.
        assert_eq!(
            accepting_uid(&e, sa("127.0.0.1:37535"), sa("127.0.0.1:34199")),
            Some(65534)
        );
        // A connection nobody accepted is not there, and TIME_WAIT (uid 0 always) vouches for
        // nothing.
        assert_eq!(
            accepting_uid(&e, sa("127.0.0.1:40000"), sa("127.0.0.1:18789")),
            None
        );
        assert_eq!(
            accepting_uid(&e, sa("127.0.0.1:36864"), sa("127.0.0.1:8080")),
            None
        );
    }

    #[test]
    fn this_user_and_root_are_trusted_and_nobody_else() {
        assert_eq!(judge(1000, 1000), Owner::Trusted);
        assert_eq!(judge(0, 1000), Owner::Trusted);
        assert_eq!(judge(0, 0), Owner::Trusted);
        assert_eq!(judge(65534, 1000), Owner::Other(65534));
        assert_eq!(judge(1000, 0), Owner::Other(1000));
    }
}
