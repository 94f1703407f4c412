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
}
