// Live capture sources (AF_PACKET TPACKET_V3, libpcap, eBPF) and interface discovery (netlink)
// arrive with issue #3. This module is the only one that will link C libraries.
public import CaptureCore
