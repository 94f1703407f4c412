// Live capture sources (AF_PACKET TPACKET_V3, libpcap), interface discovery and conntrack over
// netlink (libnl-3). The only module that links C libraries, through the shims in Shims/.
internal import CPodTapPacket
internal import CPodTapPcap
internal import CPodTapNetlink
#if canImport(Glibc)
internal import Glibc
#endif

/// Versions of the C libraries linked in, for `--version` and bug reports.
public enum BackendLibraries {
    /// libpcap's own version string, e.g. "libpcap version 1.10.3 (with TPACKET_V3)".
    public static var libpcap: String { unsafe String(cString: pcap_lib_version()) }
}

extension Duration {
    /// Whole milliseconds, rounded up, for a poll(2) timeout that must not wake before the
    /// duration has passed; 0 for a duration that is not positive.
    var pollMilliseconds: Int64 {
        guard self > .zero else { return 0 }
        return components.seconds &* 1000 &+ components.attoseconds / 1_000_000_000_000_000 &+ 1
    }

    /// How long a capture keeps reading its ring after a stop or after its interface went
    /// away: the kernel hands over a partly filled TPACKET_V3 block when its timeout expires,
    /// within two timeouts of the block's first packet; 10 ms of slack, at most 1 s.
    static func ringDrainBound(blockTimeoutMilliseconds: Int) -> Duration {
        .milliseconds(min(2 * max(blockTimeoutMilliseconds, 0) + 10, 1000))
    }
}
